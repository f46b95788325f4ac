"""Celery tasks for notifications: ids in, re-fetch, the work is in mailgate.services."""

from __future__ import annotations

import logging

from celery import shared_task

from mailgate import services
from triage.models import TicketEvent

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    # OSError covers smtplib's errors, refused connections and socket timeouts; services.outbound_send
    # has already turned permanent failures (5xx refusals, a message that cannot be built) into a final state.
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=8,
    soft_time_limit=120,
    time_limit=150,
)
def notify_event(self, event_id: int) -> dict:
    """Plan the notifications of one timeline event and send those not yet sent."""
    event = TicketEvent.objects.select_related("ticket__customer", "ticket__assignee", "actor").filter(
        pk=event_id).first()
    if event is None:
        return {}
    states, transient = {}, None
    for message in services.outbound_plan(event=event):
        try:
            states[message.audience] = services.outbound_send(outbound_id=message.pk)
        except OSError as exc:  # send the others first; the retry skips what went out
            states[message.audience], transient = "retry", exc
    if transient is not None:
        raise transient
    return states


@shared_task(ignore_result=True)
def send_pending() -> int:
    """Beat: send notifications whose task gave up or was never delivered."""
    sent = 0
    for outbound_id in services.outbound_pending():
        try:
            sent += services.outbound_send(outbound_id=outbound_id) == "sent"
        except OSError:
            continue  # still down; the next sweep tries again
        except Exception:  # one broken row must not stop the others' delivery
            log.exception("sweeping notification %s failed", outbound_id)
    return sent
