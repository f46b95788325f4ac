"""Periodic tasks that span every app. Thin: they call a service and own nothing else."""

import logging

from celery import shared_task
from django.utils import timezone

from composition import retention

log = logging.getLogger(__name__)


# The name it had in triage.tasks, kept: beat's schedule and any message already queued still find it.
@shared_task(name="triage.tasks.prune_retention", ignore_result=True)
def prune_retention() -> None:
    """Daily (beat): empty the evidence, pcaps, raw mail and attachments past their retention."""
    for report in retention.prune(now=timezone.now()):
        log.info("retention: %s", report.describe(dry_run=False))
