import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage.settings")

app = Celery("triage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _threads_share_a_bounded_database_pool(sender, **kwargs) -> None:
    """The collector (a thread pool) takes its database connections from one bounded pool, and runs at
    most as many collections at once as it has threads."""
    from django.conf import settings

    from triage import worker_database

    if worker_database.is_thread_pool(sender.pool_cls):
        worker_database.share_a_bounded_pool(max_size=settings.TRIAGE_COLLECT_DB_CONNECTIONS)
        # A sweep's batch runs its runs on threads of its own: they count against the worker's threads.
        from diagnostics.services import run_batches

        run_batches.bound_runs_per_process(sender.concurrency)
