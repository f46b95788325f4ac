"""Run the diagnosis step on a recorded run, as the worker does after a collection."""

from __future__ import annotations

from diagnostics.knowledge.diagnosis import run_diagnose
from diagnostics.models import CollectionRun, Match


def diagnosed(run: CollectionRun) -> list[Match]:
    """Diagnose ``run`` (match, record suggestions, mark it diagnosed); its matches, best first."""
    run_diagnose(run_id=run.pk)
    matches = list(Match.objects.filter(run=run).select_related("symptom"))
    return sorted(matches, key=lambda m: (not m.matched, -m.score, m.symptom_id))
