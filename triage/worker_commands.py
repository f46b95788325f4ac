"""The Celery worker command lines the desk runs, in one place: `rundesk` starts them locally,
docker-compose.yml spells the same ones out, and the tests start exactly these.

Two workers, because their work differs in kind:
- the **general** worker (prefork) takes the default queue: diagnosis, beat's periodic tasks,
  mail, webhooks, reports; CPU-bound or short.
- the **collector** (a thread pool) takes only the ``collect`` queue (``CELERY_TASK_ROUTES``):
  collections spend their time waiting on networks, so a slot is a thread, and
  ``TRIAGE_COLLECT_CONCURRENCY`` of them cost little. Hosts that drop SYNs or never send a banner
  hold their slots only until their bounds, beside plenty of free ones.

Both are sized by settings: ``TRIAGE_WORKER_CONCURRENCY`` processes, ``TRIAGE_COLLECT_CONCURRENCY``
threads. ``manage.py run_worker`` and ``manage.py run_collector`` become these command lines
(docker-compose.yml's ``worker`` and ``collector`` services).

Thread safety of a collection: each task thread uses its own Django database connection, taken
only while it reads or stores and given back before it waits on a host, from one bounded pool per
collector process (``TRIAGE_COLLECT_DB_CONNECTIONS``, triage/worker_database.py); one heartbeat
thread per process beats every active run; paramiko transports are per run; hyperscan scratch
space is per thread (diagnostics/scanning.py).
"""

from __future__ import annotations

import sys

from django.conf import settings

CELERY = [sys.executable, "-m", "celery", "-A", "triage", "worker"]


def general_worker_argv(*, concurrency: int | None = None, loglevel: str = "INFO") -> list[str]:
    """The prefork worker for everything but collections (``TRIAGE_WORKER_CONCURRENCY`` processes by default)."""
    processes = concurrency or settings.TRIAGE_WORKER_CONCURRENCY
    return [
        *CELERY,
        "--pool=prefork",
        f"--concurrency={processes}",
        "--queues=celery",
        "--hostname=celery@%h",
        f"--loglevel={loglevel}",
    ]


def collector_argv(*, concurrency: int | None = None, loglevel: str = "INFO", name: str = "collector") -> list[str]:
    """A thread-pool worker for collections (``TRIAGE_COLLECT_CONCURRENCY`` threads by default);
    ``manage.py run_collector`` starts ``TRIAGE_COLLECT_PROCESSES`` of them, named collector1, collector2…"""
    slots = concurrency or settings.TRIAGE_COLLECT_CONCURRENCY
    return [
        *CELERY,
        "--pool=threads",
        f"--concurrency={slots}",
        f"--queues={settings.TRIAGE_COLLECT_QUEUE}",
        f"--hostname={name}@%h",
        f"--loglevel={loglevel}",
    ]
