"""Reads for the SLA settings pages: tiers with their clocks and targets, and the business calendars."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from triage.models import BusinessCalendar, SlaTarget, SlaTier


def sla_tiers() -> QuerySet[SlaTier]:
    return (
        SlaTier.objects.select_related("calendar")
        .prefetch_related(Prefetch("targets", queryset=SlaTarget.objects.order_by("priority")))
        .annotate(customer_count=Count("customers"))
    )


def business_calendars() -> QuerySet[BusinessCalendar]:
    return BusinessCalendar.objects.annotate(tier_count=Count("tiers"))
