"""The inbound mail service: an SMTP listener for the desk's addresses."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from mailgate.smtp import MailListener
from triage.models import Heartbeat

HEARTBEAT_SECONDS = 30


class Command(BaseCommand):
    help = "Listen for mail to the desk over SMTP (TRIAGE_MAIL_HOST:TRIAGE_MAIL_PORT) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.TRIAGE_MAIL_HOST)
        parser.add_argument("--port", type=int, default=settings.TRIAGE_MAIL_PORT)

    def handle(self, *args, host, port, **options):
        listener = MailListener(
            host=host,
            port=port,
            addresses=settings.TRIAGE_MAIL_ADDRESSES,
            max_bytes=settings.TRIAGE_MAIL_MAX_BYTES,
            timeout=settings.TRIAGE_MAIL_TIMEOUT,
            hostname=settings.TRIAGE_MAIL_HOSTNAME,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        listener.start()
        self.stdout.write(
            f"mailgate listening on {host}:{port} for {', '.join(settings.TRIAGE_MAIL_ADDRESSES)} "
            f"(max {settings.TRIAGE_MAIL_MAX_BYTES} bytes)"
        )
        self.stdout.flush()
        try:
            while not stop.is_set():
                close_old_connections()
                try:
                    Heartbeat.objects.update_or_create(name="mailgate", defaults={"seen_at": timezone.now()})
                except Exception as exc:  # noqa: BLE001 - a database blip must not stop the listener
                    self.stderr.write(f"heartbeat not recorded: {exc}")
                stop.wait(HEARTBEAT_SECONDS)
        finally:
            listener.stop()
            self.stdout.write("mailgate stopped")
