"""Run the collector: Celery workers that take only collections, each a thread pool, as
docker-compose's `collector` service and `rundesk` run it.

One process runs its threads' Python work on one core at a time (the GIL): paramiko's packets,
storing evidence and matching for a whole fleet's sweep would queue on one core while the others
idle. So the collector is ``TRIAGE_COLLECT_PROCESSES`` worker processes (collector1, collector2, …)
that share ``TRIAGE_COLLECT_CONCURRENCY`` threads and ``TRIAGE_COLLECT_DB_CONNECTIONS`` database
connections between them. With one process it simply becomes that worker (same pid).

With several, this command supervises them the simple way: SIGTERM, SIGINT or SIGHUP is passed
on to every worker (Celery's warm shutdown: running collections finish) and it exits 0 once they
have stopped; a worker that exits on its own is logged at ERROR, the others are stopped, and it
exits 1, so whoever runs the collector (compose's restart policy, `rundesk`) restarts it whole.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import subprocess
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from triage import worker_commands
from triage.supervisor import die_with_parent

log = logging.getLogger("triage.collector")


class Command(BaseCommand):
    help = (
        "Run the collection workers: the collect queue on TRIAGE_COLLECT_PROCESSES processes sharing "
        "TRIAGE_COLLECT_CONCURRENCY threads."
    )

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, help="threads in all (default: TRIAGE_COLLECT_CONCURRENCY)")
        parser.add_argument("--processes", type=int, help="worker processes (default: TRIAGE_COLLECT_PROCESSES)")

    def handle(self, *args, concurrency, processes, **options):
        threads = concurrency or settings.TRIAGE_COLLECT_CONCURRENCY
        count = max(1, min(processes or settings.TRIAGE_COLLECT_PROCESSES, threads))
        if count == 1:
            argv = worker_commands.collector_argv(concurrency=threads)
            # Become the worker (same pid), so a supervisor's signals reach Celery itself.
            os.execv(argv[0], argv)  # noqa: S606 - argv is built from settings, no shell
        # Each worker's share: the threads split evenly, and the database connections too (each
        # process has its own pool), so the collector's total stays within the setting.
        env = {
            **os.environ,
            "TRIAGE_COLLECT_DB_CONNECTIONS": str(max(2, settings.TRIAGE_COLLECT_DB_CONNECTIONS // count)),
        }
        workers = [
            subprocess.Popen(  # noqa: S603 - argv is built from settings, no shell
                worker_commands.collector_argv(concurrency=math.ceil(threads / count), name=f"collector{n}"),
                env=env,
                preexec_fn=die_with_parent,  # if this command is SIGKILLed, they stop too
            )
            for n in range(1, count + 1)
        ]
        raise SystemExit(_supervise(workers))


def _supervise(workers: list[subprocess.Popen]) -> int:
    stopping: list[int] = []

    def stop(signum, _frame):
        stopping.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    status = 0
    while not stopping:
        ended = [w for w in workers if w.poll() is not None]
        if ended:
            worker = ended[0]
            log.error(
                "collector worker (pid %d) exited with status %s; stopping the others", worker.pid, worker.returncode
            )
            status = 1
            break
        time.sleep(0.2)
    for worker in workers:
        if worker.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait()
    return status
