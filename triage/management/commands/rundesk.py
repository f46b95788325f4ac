"""Run the whole desk on one machine: the web server, a Celery worker (with the periodic
scheduler embedded), the collector and the inbound mail listener, as supervised children.

A child that dies is logged and restarted with backoff; one that keeps dying stops the
desk with a non-zero exit (triage/supervisor.py). Ctrl-C or SIGTERM stops them all.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from triage import worker_commands
from triage.supervisor import ChildSpec, RestartPolicy, Supervisor


def desk_children(*, addrport: str, concurrency: int | None) -> list[ChildSpec]:
    """The desk's programs, in start order. Another program is one more (name, argv)."""
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    return [
        ChildSpec("web", [*manage, "runserver", "--noreload", addrport]),
        # The general worker (default queue) with beat embedded, and the collector for collections
        # (triage/worker_commands.py): unreachable hosts never hold up the rest.
        ChildSpec(
            "worker",
            [
                *worker_commands.general_worker_argv(concurrency=concurrency),
                "--beat",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--schedule",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        ),
        ChildSpec("collector", [*manage, "run_collector"]),
        ChildSpec("mailgate", [*manage, "run_mailgate"]),
    ]


class Command(BaseCommand):
    help = (
        "Start the dashboard, a Celery worker with an embedded beat and the mail listener; restart any "
        "that dies, exit non-zero if one cannot be kept up; stop all on Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument(
            "--concurrency", type=int, help="general worker processes (default: TRIAGE_WORKER_CONCURRENCY)"
        )

    def handle(self, *args, addrport, concurrency, **options):
        policy = RestartPolicy(
            max_restarts=settings.TRIAGE_DESK_MAX_RESTARTS,
            window=settings.TRIAGE_DESK_RESTART_WINDOW,
            backoff_initial=settings.TRIAGE_DESK_BACKOFF_MS / 1000,
            backoff_max=settings.TRIAGE_DESK_BACKOFF_MAX,
        )
        self.stdout.write(
            f"dashboard at http://{addrport}/; mail for {settings.TRIAGE_MAIL_ADDRESSES[0]} on "
            f"{settings.TRIAGE_MAIL_HOST}:{settings.TRIAGE_MAIL_PORT}"
        )
        self.stdout.flush()
        supervisor = Supervisor(
            desk_children(addrport=addrport, concurrency=concurrency), policy=policy, cwd=settings.BASE_DIR
        )
        if supervisor.run() != 0:
            raise CommandError("a child of the desk could not be kept running (see the errors above)", returncode=1)
