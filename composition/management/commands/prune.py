"""`manage.py prune`: retention by hand (beat runs the same daily); see composition/retention.py."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from composition import retention


class Command(BaseCommand):
    help = (
        "Empty evidence outputs, pcaps, raw inbound mail and attachments older than their retention "
        "(TRIAGE_RETAIN_*_DAYS, 0 = keep forever), keeping the rows, matches and timeline. Bounded: at most "
        "--batch-size x --max-batches rows per kind per invocation."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be pruned; change nothing.")
        parser.add_argument("--batch-size", type=int, default=200, help="Rows per UPDATE (default 200).")
        parser.add_argument("--max-batches", type=int, default=50, help="Batches per kind (default 50).")

    def handle(self, *args, dry_run, batch_size, max_batches, **options):
        if batch_size < 1 or max_batches < 1:
            raise CommandError("--batch-size and --max-batches must be at least 1")
        reports = retention.prune(now=timezone.now(), batch_size=batch_size, max_batches=max_batches, dry_run=dry_run)
        for report in reports:
            self.stdout.write(report.describe(dry_run=dry_run))
