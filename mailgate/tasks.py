"""Celery tasks for notifications and mailbox polling: ids in, re-fetch, the work is in the services."""

from __future__ import annotations

import logging

from celery import shared_task

from mailgate import mailbox_services, selectors, services
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
    event = (
        TicketEvent.objects.select_related("ticket__customer", "ticket__assignee", "actor").filter(pk=event_id).first()
    )
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


@shared_task(ignore_result=True)
def poll_mailboxes() -> int:
    """Beat: one poll task per enabled IMAP mailbox, so a slow or failing mailbox never holds up another."""
    queued = 0
    for mailbox_id in selectors.mailboxes_to_poll():
        try:
            poll_mailbox.delay(mailbox_id)
            queued += 1
        except Exception:  # the broker is down: the next beat asks again
            log.warning("could not enqueue the poll of mailbox %s", mailbox_id, exc_info=True)
    return queued


@shared_task(
    ignore_result=True,
    # Each network step is bounded by TRIAGE_IMAP_TIMEOUT and a poll takes at most MAX_PER_POLL messages;
    # these catch the rest, well inside the mailbox's claim (mailbox_services.CLAIM).
    soft_time_limit=300,
    time_limit=330,
)
def poll_mailbox(mailbox_id: int) -> str:
    """Take in one mailbox's new mail; a mailbox already being polled, disabled or gone is left alone."""
    result = mailbox_services.mailbox_poll(mailbox_id=mailbox_id)
    if not result.claimed:
        return "not polled: disabled, gone or already being polled"
    return result.error or f"{result.taken} new, {result.known} already taken in, {len(result.failed)} failed"
