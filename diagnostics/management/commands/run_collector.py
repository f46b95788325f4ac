"""Run the collector: the Celery worker that takes only collections (a thread pool sized by
TRIAGE_COLLECT_CONCURRENCY), as docker-compose's `collector` service and `rundesk` run it."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand

from triage import worker_commands


class Command(BaseCommand):
    help = "Run the collection worker: the collect queue on a thread pool (TRIAGE_COLLECT_CONCURRENCY threads)."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, help="threads (default: TRIAGE_COLLECT_CONCURRENCY)")

    def handle(self, *args, concurrency, **options):
        argv = worker_commands.collector_argv(concurrency=concurrency)
        # Become the worker (same pid), so a supervisor's signals reach Celery itself.
        os.execv(argv[0], argv)  # noqa: S606 - argv is built from settings, no shell
