"""Subscribers to the desk's event bus (``triage.events``, registered in WebhooksConfig.ready):
turn desk writes into pending deliveries, in the writer's transaction.

They run inside ticket and collection writes, so a fault here is logged and contained in a
savepoint: a webhook bug must never stop a tech from filing a ticket or a run from finishing.
"""

from __future__ import annotations

import logging

from django.db import transaction

from triage.models import Ticket, TicketEvent
from webhooks import events, services
from webhooks.models import EventType

log = logging.getLogger(__name__)


def _customer_id(ticket_id: int, cached: Ticket | None) -> int:
    if cached is not None and cached.customer_id:
        return cached.customer_id
    return Ticket.objects.values_list("customer_id", flat=True).get(pk=ticket_id)


def ticket_event(*, event: TicketEvent) -> None:
    """A timeline entry: ticket.created, ticket.updated or collection.finished, per events.event_type_for."""
    event_type = events.event_type_for(event)
    if event_type is None:
        return
    cached = event.ticket if TicketEvent.ticket.is_cached(event) else None
    endpoints = services.subscribed_endpoints(event_type=event_type, customer_id=_customer_id(event.ticket_id, cached))
    if not endpoints:
        return
    try:
        with transaction.atomic():
            if event_type == EventType.COLLECTION_FINISHED:
                data = events.collection_payload(event)
            else:
                data = events.ticket_payload(event, event_type)
            services.events_record(event_type=event_type, data=data, endpoints=endpoints)
    except Exception:  # contained: see the module docstring
        log.exception("webhook event %s for timeline entry %s not recorded", event_type, event.pk)


def fixes(*, run, recipe_ids: list[int]) -> None:
    """A run's diagnosis suggested new fixes on its ticket: fix.suggested."""
    event_type = EventType.FIX_SUGGESTED
    endpoints = services.subscribed_endpoints(event_type=event_type, customer_id=_customer_id(run.ticket_id, None))
    if not endpoints:
        return
    try:
        with transaction.atomic():
            services.events_record(
                event_type=event_type, data=events.fixes_payload(run, recipe_ids), endpoints=endpoints
            )
    except Exception:  # contained: see the module docstring
        log.exception("webhook event %s for run %s not recorded", event_type, run.pk)
