"""Celery tasks for collection: thin, ids in, the work is in diagnostics.services.

``collect_run`` is routed to its own queue (``CELERY_TASK_ROUTES``), consumed by the collector
worker's thread pool; see triage/worker_commands.py.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from diagnostics import services
from diagnostics.services import run_batches

log = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # The run bounds itself at TRIAGE_COLLECT_TIME_LIMIT (services.run_collect), in any pool. On a
    # prefork worker Celery's limits back that up: the soft one is recorded as the run's time limit,
    # the hard one kills a child that ignored it. A thread pool has no Celery time limits at all.
    soft_time_limit=settings.TRIAGE_COLLECT_TIME_LIMIT,
    time_limit=settings.TRIAGE_COLLECT_TIME_LIMIT + 60,
)
def collect_run(run_id: int) -> None:
    # A run deleted meanwhile is not claimed (run_execute returns None): no query of its own here.
    try:
        with run_batches.run_slot():
            services.run_execute(run_id=run_id, worker=collect_run.request.hostname)
    except SoftTimeLimitExceeded:
        # Past the limit in the diagnosis step (the collection step records its own time limit):
        # the run is terminal, and the sweeper diagnoses runs left undiagnosed.
        log.warning("run %s: diagnosis stopped at the time limit; the sweeper will diagnose it again", run_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def collect_runs(run_ids: list[int]) -> None:
    """A batch of a sweep's runs, collected at once (see diagnostics.services.run_batches). Each run
    bounds itself at TRIAGE_COLLECT_TIME_LIMIT, so the batch ends within it too."""
    run_batches.runs_execute_together(run_ids, worker=collect_runs.request.hostname)


@shared_task(ignore_result=True)
def sweep_runs() -> dict:
    return services.runs_sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, soft_time_limit=120, time_limit=150)
def diagnose_run(run_id: int) -> None:
    """Diagnose a finished run whose diagnosis never happened (its worker died in between)."""
    from diagnostics.knowledge.diagnosis import run_diagnose

    run_diagnose(run_id=run_id)


@shared_task(ignore_result=True)
def rematch_open_tickets() -> int:
    """Match every finished run of every open ticket again: the knowledge base was edited."""
    from diagnostics.knowledge.matcher import rematch_open_tickets as rematch

    return rematch()


@shared_task(ignore_result=True)
def start_due_sweeps() -> int:
    """Start the sweeps whose schedule is due (each due time once, however many beats ask)."""
    from diagnostics.services.sweeps import sweeps_start_due

    return len(sweeps_start_due())
