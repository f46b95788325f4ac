"""Webhook tasks: thin, ids in; the work is in webhooks.services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from webhooks import services
from webhooks.models import Delivery

# Retries further out than this are left to the beat sweeper instead of a broker countdown
# (Redis re-delivers unacked messages after its visibility timeout).
LONGEST_COUNTDOWN = 300


@shared_task(
    acks_late=True,
    ignore_result=True,
    # One attempt is bounded by the connect/read/total timeouts; these limits catch the rest.
    soft_time_limit=settings.TRIAGE_WEBHOOK_TOTAL_TIMEOUT + 20,
    time_limit=settings.TRIAGE_WEBHOOK_TOTAL_TIMEOUT + 30,
)
def deliver(delivery_id: int) -> None:
    if not Delivery.objects.filter(pk=delivery_id).exists():
        return
    attempt = services.delivery_attempt(delivery_id=delivery_id)
    if attempt is not None and attempt.retry_in is not None and attempt.retry_in <= LONGEST_COUNTDOWN:
        services.delivery_enqueue(delivery_id=delivery_id, countdown=attempt.retry_in)


@shared_task(ignore_result=True)
def requeue_due_deliveries() -> int:
    return services.deliveries_requeue_due()
