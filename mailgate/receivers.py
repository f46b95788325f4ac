"""Signal receivers, connected in MailgateConfig.ready. They only enqueue, after commit."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from triage.models import EventKind

log = logging.getLogger(__name__)

NOTIFYING_KINDS = frozenset({EventKind.REPLY, EventKind.ASSIGNMENT})
# Back-dated events (seed_demo, imports) are history, not news: nobody is mailed about them.
RECENT = timedelta(minutes=10)


def ticket_event_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if not created or raw or instance.kind not in NOTIFYING_KINDS:
        return
    if instance.created_at < timezone.now() - RECENT:
        return
    event_id = instance.pk
    transaction.on_commit(lambda: _enqueue(event_id))


def _enqueue(event_id: int) -> None:
    from mailgate.tasks import notify_event

    try:
        notify_event.delay(event_id)
    except Exception:  # a broker outage must not fail the web request that wrote the event
        log.warning("could not enqueue notifications for event %s; the broker is unreachable", event_id,
                    exc_info=True)
