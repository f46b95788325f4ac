"""Reads for the webhooks admin pages."""

from __future__ import annotations

from django.db.models import Count, Max, Q, QuerySet

from webhooks.models import Delivery, DeliveryState, Endpoint

LOG_LIMIT = 200


def endpoint_list() -> QuerySet[Endpoint]:
    return Endpoint.objects.select_related("customer").annotate(
        pending=Count("deliveries", filter=Q(deliveries__state=DeliveryState.PENDING)),
        failing=Count("deliveries", filter=Q(deliveries__state__in=(DeliveryState.FAILED, DeliveryState.GAVE_UP))),
        last_delivery_at=Max("deliveries__created_at"),
    )


def endpoint_deliveries(*, endpoint: Endpoint, limit: int = LOG_LIMIT) -> list[Delivery]:
    """The endpoint's delivery log, newest first."""
    return list(endpoint.deliveries.order_by("-created_at", "-id")[:limit])
