"""Write the knowledge base as YAML, in a stable order that diffs cleanly in git."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from diagnostics.knowledge.yaml_io import dump_kb


class Command(BaseCommand):
    help = "Export every symptom and fix recipe as YAML to a file, or to stdout."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="Where to write (default: stdout)")

    def handle(self, *args, file=None, **options):
        text = dump_kb()
        if file:
            Path(file).write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {file}")
        else:
            self.stdout.write(text, ending="")
