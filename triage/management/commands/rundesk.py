"""Run the whole desk on one machine for development: web server plus a Celery
worker (with the periodic scheduler embedded) and the inbound mail listener,
stopped together."""

from __future__ import annotations

import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the dashboard, a Celery worker with an embedded beat and the mail listener; stop all on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, addrport, concurrency, **options):
        worker_cmd = [
            sys.executable, "-m", "celery", "-A", "triage", "worker", "--beat",
            "--loglevel=INFO", f"--concurrency={concurrency}",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
        ]
        worker = subprocess.Popen(worker_cmd)
        # Collections on their own thread-pool worker (TRIAGE_COLLECT_CONCURRENCY slots): see triage/worker_commands.py.
        collector = subprocess.Popen([sys.executable, "manage.py", "run_collector"], cwd=settings.BASE_DIR)
        mailgate = subprocess.Popen([sys.executable, "manage.py", "run_mailgate"], cwd=settings.BASE_DIR)
        self.stdout.write(f"worker started (pid {worker.pid}); mail for {settings.TRIAGE_MAIL_ADDRESSES[0]} on "
                          f"{settings.TRIAGE_MAIL_HOST}:{settings.TRIAGE_MAIL_PORT} (pid {mailgate.pid}); "
                          f"dashboard at http://{addrport}/")
        # runserver exits on SIGTERM without unwinding; turn it into an exception so the worker stops too.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            call_command("runserver", addrport, use_reloader=False)
        except KeyboardInterrupt:
            pass
        finally:
            for child in (mailgate, collector, worker):
                child.terminate()
            for child in (mailgate, collector, worker):
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
