"""Periodic report tasks. Thin: they call the rollup services and own nothing else."""

from celery import shared_task

from reports import rollups


@shared_task(ignore_result=True)
def refresh_reports() -> dict[str, int]:
    return rollups.reports_refresh()


@shared_task(ignore_result=True)
def rebuild_run_reports() -> int:
    return rollups.run_reports_rebuild()
