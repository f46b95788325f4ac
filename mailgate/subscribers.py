"""Subscriber to the desk's event bus (``triage.events``, registered in MailgateConfig.ready).
It only enqueues, after commit."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from triage.models import EventKind, TicketEvent

log = logging.getLogger(__name__)

NOTIFYING_KINDS = frozenset({EventKind.REPLY, EventKind.ASSIGNMENT})
# Back-dated events (seed_demo, imports) are history, not news: nobody is mailed about them.
RECENT = timedelta(minutes=10)


def ticket_event(*, event: TicketEvent) -> None:
    """A fresh reply or assignment: plan and send its notifications (``tasks.notify_event``) once committed."""
    if event.kind not in NOTIFYING_KINDS:
        return
    if event.created_at < timezone.now() - RECENT:
        return
    event_id = event.pk
    transaction.on_commit(lambda: _enqueue(event_id))


def _enqueue(event_id: int) -> None:
    from mailgate.tasks import notify_event

    try:
        notify_event.delay(event_id)
    except Exception:  # a broker outage must not fail the web request that wrote the event
        log.warning("could not enqueue notifications for event %s; the broker is unreachable", event_id, exc_info=True)
