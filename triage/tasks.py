"""Periodic desk tasks. Thin: they call a service and own nothing else."""

import logging

from celery import shared_task
from django.utils import timezone

from triage import services
from triage.models import Heartbeat

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def record_worker_heartbeat() -> None:
    Heartbeat.objects.update_or_create(name="worker", defaults={"seen_at": timezone.now()})


@shared_task(ignore_result=True)
def flag_sla_breaches() -> int:
    return services.flag_sla_breaches()
