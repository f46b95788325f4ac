"""Load symptoms and fix recipes from YAML: all validated first, then applied in one transaction."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from diagnostics.knowledge.matcher import rematch_open_tickets
from diagnostics.knowledge.services import KnowledgeError, kb_apply
from diagnostics.knowledge.yaml_io import parse_kb

SEED = Path(__file__).resolve().parents[2] / "knowledge" / "seed_kb.yaml"


class Command(BaseCommand):
    help = "Create or update symptoms and fix recipes by key from a YAML file (default: the shipped seed)."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", default=str(SEED), help="YAML file ('-' for stdin)")
        parser.add_argument("--note", default="", help="Recorded on every revision this load writes.")
        parser.add_argument(
            "--rematch", action="store_true", help="Match open tickets' runs again if anything changed."
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Load only into an empty knowledge base (first set-up), so local edits are never overwritten.",
        )

    def handle(self, *args, file, note, rematch, if_empty, **options):
        from diagnostics.models import Symptom

        if if_empty and Symptom.objects.exists():
            self.stdout.write("knowledge base already loaded; nothing changed (drop --if-empty to update it)")
            return
        if file == "-":
            import sys

            text = sys.stdin.read()
        else:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        document, errors = parse_kb(text)
        if not errors:
            try:
                report = kb_apply(document=document, by=None, note=note or f"load_kb {Path(file).name}")
            except KnowledgeError as exc:
                errors = exc.errors
        if errors:
            for error in errors:
                self.stderr.write(error)
            raise CommandError(f"{file}: {len(errors)} problem(s); nothing was changed")
        for change in report.changes:
            self.stdout.write(change)
        self.stdout.write(f"{len(report.changes)} changed, {report.unchanged} unchanged")
        if rematch and report.changed:
            self.stdout.write(f"matched {rematch_open_tickets()} run(s) again")
