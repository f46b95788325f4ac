"""Run the general worker: the Celery worker for everything but collections (TRIAGE_WORKER_CONCURRENCY
prefork processes), as docker-compose's `worker` service runs it."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand

from triage import worker_commands


class Command(BaseCommand):
    help = "Run the general worker: the default queue on TRIAGE_WORKER_CONCURRENCY prefork processes."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, help="processes (default: TRIAGE_WORKER_CONCURRENCY)")

    def handle(self, *args, concurrency, **options):
        argv = worker_commands.general_worker_argv(concurrency=concurrency)
        # Become the worker (same pid), so a supervisor's signals reach Celery itself.
        os.execv(argv[0], argv)  # noqa: S606 - argv is built from settings, no shell
