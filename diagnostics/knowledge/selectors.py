"""Reads over matches: the fixes to show on a ticket, ranked."""

from __future__ import annotations

from diagnostics.knowledge.matcher import distinct_citations
from diagnostics.models import TERMINAL_STATES, CollectionRun, Match
from triage.models import Ticket


def latest_runs(*, ticket: Ticket) -> list[CollectionRun]:
    """The newest finished run per server of the ticket: older runs describe a past state."""
    newest: dict[int, CollectionRun] = {}
    for run in ticket.collection_runs.filter(state__in=TERMINAL_STATES).order_by("-finished_at", "-id"):
        newest.setdefault(run.server_id, run)
    return list(newest.values())


def ranked_fixes(*, run: CollectionRun | None = None, ticket: Ticket | None = None) -> list[dict]:
    """Fix recipes for the matched symptoms, grouped by recipe, best first.

    A recipe's score is the best of match score x impact/5 over the symptoms it
    fixes; each entry is {recipe, score, symptoms, matches, citations}.
    """
    if (run is None) == (ticket is None):
        raise TypeError("ranked_fixes needs exactly one of run or ticket")
    runs = [run] if run is not None else latest_runs(ticket=ticket)
    matches = (
        Match.objects.filter(run__in=runs, matched=True)
        .select_related("symptom")
        .prefetch_related("symptom__recipes")
        .order_by("-score", "symptom__key")
    )
    fixes: dict[int, dict] = {}
    for match in matches:
        weighted = match.score * match.symptom.impact / 5
        for recipe in match.symptom.recipes.all():
            entry = fixes.setdefault(
                recipe.pk, {"recipe": recipe, "score": 0.0, "symptoms": [], "matches": [], "citations": []}
            )
            entry["score"] = max(entry["score"], round(weighted, 4))
            if match.symptom not in entry["symptoms"]:
                entry["symptoms"].append(match.symptom)
            entry["matches"].append(match)
            entry["citations"].extend(match.citations)
    for entry in fixes.values():
        entry["citations"] = distinct_citations(entry["citations"])
    return sorted(fixes.values(), key=lambda e: (-e["score"], e["recipe"].key))


def near_misses(*, run: CollectionRun) -> list[Match]:
    """Symptoms whose conditions partly held: for admins tuning signatures."""
    return list(Match.objects.filter(run=run, near_miss=True).select_related("symptom").order_by("-score"))
