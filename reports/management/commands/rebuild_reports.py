from __future__ import annotations

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from reports import rollups


class Command(BaseCommand):
    help = "Rebuild the dashboard's pre-aggregated data from the raw tables (all of it, or from --since on)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Rebuild from this UTC day (YYYY-MM-DD) on; default: everything")

    def handle(self, *args, since, **options):
        day = None
        if since:
            try:
                day = date.fromisoformat(since)
            except ValueError as exc:
                raise CommandError(f"--since must be YYYY-MM-DD, not {since!r}") from exc
        started = time.monotonic()
        counts = rollups.reports_rebuild(since=day)
        self.stdout.write(
            f"Rebuilt reports: {counts['ticket_days']} ticket days, {counts['run_days']} run days "
            f"in {time.monotonic() - started:.1f} s"
        )
