"""Celery tasks for collection: thin, ids in, the work is in diagnostics.services."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from diagnostics import services
from diagnostics.models import CollectionRun


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # A playbook's probes run concurrently and each is bounded (<= 60 s captures plus grace);
    # these limits catch anything the per-command bounds somehow miss.
    soft_time_limit=240,
    time_limit=300,
)
def collect_run(run_id: int) -> None:
    if not CollectionRun.objects.filter(pk=run_id).exists():
        return
    try:
        services.run_execute(run_id=run_id, worker=collect_run.request.hostname)
    except SoftTimeLimitExceeded:
        services.run_fail_stuck(run_id=run_id, reason="The run exceeded the worker's time limit and was stopped.")


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
