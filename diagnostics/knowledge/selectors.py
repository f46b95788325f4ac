"""Reads over matches: the fixes to show on a ticket, ranked."""

from __future__ import annotations

from diagnostics.knowledge.matcher import distinct_citations
from diagnostics.models import TERMINAL_STATES, CollectionRun, Match, RecipeFit
from triage.models import Ticket


def latest_runs(*, ticket: Ticket) -> list[CollectionRun]:
    """The newest finished run per server of the ticket: older runs describe a past state."""
    newest: dict[int, CollectionRun] = {}
    for run in ticket.collection_runs.filter(state__in=TERMINAL_STATES).order_by("-finished_at", "-id"):
        newest.setdefault(run.server_id, run)
    return list(newest.values())


# How a recipe's applicability and a symptom's cause weigh on its rank. A recipe that says
# when it applies and does not fit this host (the exim fix on a tcpserver host) is still
# shown, below; a symptom explained by another one found on the same run (fds exhausted by a
# hung upstream) ranks its fixes below the cause's.
NOT_FITTING = 0.5
CONSEQUENCE = 0.5


def ranked_fixes(*, run: CollectionRun | None = None, ticket: Ticket | None = None) -> list[dict]:
    """Fix recipes for the matched symptoms, grouped by recipe, best first.

    A recipe's score is the best, over the symptoms it fixes, of match score x impact/5,
    halved when the recipe does not fit the host (its ``applies_when`` failed) and halved
    when the symptom's cause also matched. Each entry is {recipe, score, symptoms, matches,
    citations, fit, causes}: ``fit`` the RecipeFit of the best match's run (None for general
    advice), ``causes`` the matched symptoms that explain this one.
    """
    if (run is None) == (ticket is None):
        raise TypeError("ranked_fixes needs exactly one of run or ticket")
    runs = [run] if run is not None else latest_runs(ticket=ticket)
    matches = list(
        Match.objects.filter(run__in=runs, matched=True)
        .select_related("symptom")
        .prefetch_related("symptom__recipes", "symptom__caused_by")
        .order_by("-score", "symptom__key")
    )
    fits = {(f.run_id, f.recipe_id): f for f in RecipeFit.objects.filter(run__in=runs)}
    matched_by_run: dict[int, set[int]] = {}
    for match in matches:
        matched_by_run.setdefault(match.run_id, set()).add(match.symptom_id)
    fixes: dict[int, dict] = {}
    for match in matches:
        causes = [c for c in match.symptom.caused_by.all() if c.pk in matched_by_run[match.run_id]]
        weighted = match.score * match.symptom.impact / 5 * (CONSEQUENCE if causes else 1.0)
        for recipe in match.symptom.recipes.all():
            fit = fits.get((match.run_id, recipe.pk))
            score = round(weighted * (NOT_FITTING if fit is not None and not fit.applies else 1.0), 4)
            entry = fixes.setdefault(
                recipe.pk,
                {
                    "recipe": recipe,
                    "score": -1.0,
                    "symptoms": [],
                    "matches": [],
                    "citations": [],
                    "fit": None,
                    "causes": [],
                },
            )
            if score > entry["score"]:
                entry.update(score=score, fit=fit, causes=causes)
            if match.symptom not in entry["symptoms"]:
                entry["symptoms"].append(match.symptom)
            entry["matches"].append(match)
            entry["citations"].extend(match.citations)
    for entry in fixes.values():
        entry["citations"] = distinct_citations(entry["citations"])
    return sorted(fixes.values(), key=_rank)


def _rank(entry: dict) -> tuple:
    # On equal scores, a recipe shown to fit this host goes before general advice.
    fit = entry["fit"]
    return (-entry["score"], 0 if fit is not None and fit.applies else 1, entry["recipe"].key)


def near_misses(*, run: CollectionRun) -> list[Match]:
    """Symptoms whose conditions partly held: for admins tuning signatures."""
    return list(Match.objects.filter(run=run, near_miss=True).select_related("symptom").order_by("-score"))
