"""Reads over matches: the fixes to show on a ticket or a run, ranked as a senior tech would.

A fix's rank starts from how well its symptom's conditions held (the match score), then:

- **fit**: a recipe that says when it applies and fits this host (tcpserver owns the socket)
  counts in full; general advice a little less; a recipe shown not to fit, half;
- **cause first**: a symptom explained by another one found on the same server (fds exhausted
  by a hung upstream) ranks at half, after its cause; a consequence whose cause was not found
  is labelled so, not demoted;
- **the complaint**: a symptom whose title and explanation share words with what the customer
  wrote ranks above an unrelated one of equal strength;
- impact breaks near-ties only: it says how bad a symptom is, not how sure we are.

Alternatives for the same symptom (the tcpserver, exim and sendmail ident fixes) are one entry:
the best-fitting recipe, with the others listed as alternatives and whether they fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diagnostics.knowledge import words
from diagnostics.knowledge.diagnosis import Finding, ticket_findings
from diagnostics.knowledge.matcher import distinct_citations
from diagnostics.models import CollectionRun, FixRecipe, Match, RecipeFit
from triage.models import Ticket

FITS = 1.0
GENERAL = 0.85
NOT_FITTING = 0.5
CONSEQUENCE = 0.5
COMPLAINT_STEP = 0.15  # per shared word (at most 3): up to x1.45 for a symptom that explains the complaint
IMPACT_STEP = 0.03  # per impact point away from 3: a tie-breaker
# Dividing by the largest factors keeps a score within 0..1 (it is shown as a percentage).
_TOP = (1 + 3 * COMPLAINT_STEP) * (1 + 2 * IMPACT_STEP)


@dataclass
class Alternative:
    recipe: FixRecipe
    fits: bool | None  # None: the run did not show whether it applies


@dataclass
class RankedFix:
    recipe: FixRecipe
    score: float
    finding: Finding
    fit: RecipeFit | None
    causes: list  # matched symptoms (same server) that explain this fix's symptom
    missing_causes: list  # known causes of the symptom that were not found
    alternatives: list[Alternative] = field(default_factory=list)
    explains_complaint: bool = False
    matches: list[Match] = field(default_factory=list)

    @property
    def symptoms(self) -> list:
        return list(dict.fromkeys(m.symptom for m in self.matches))

    @property
    def citations(self) -> list[dict]:
        return distinct_citations([c for m in self.matches for c in m.citations or []])

    # The dict-style access older callers (API, webhooks, demo) use.
    def __getitem__(self, key: str):
        return getattr(self, key)


def _fit_factor(fit: RecipeFit | None) -> float:
    if fit is None:
        return GENERAL
    return FITS if fit.applies else NOT_FITTING


def _fit_order(fit: RecipeFit | None) -> int:
    return 2 if fit is None else (0 if fit.applies else 3)


def rank_findings(findings: list[Finding], *, complaint: str = "") -> list[RankedFix]:
    """Rank the recipes of ``findings`` (see the module docstring); best first."""
    if not findings:
        return []
    complaint_words = words.words(complaint)
    runs = {f.match.run_id for f in findings}
    fits = {(f.run_id, f.recipe_id): f for f in RecipeFit.objects.filter(run_id__in=runs)}
    best: dict[int, RankedFix] = {}
    for finding in findings:
        symptom, match = finding.symptom, finding.match
        relevance = words.overlap(complaint_words, title=f"{symptom.title} {symptom.key}", body=symptom.explanation)
        strength = (
            match.score
            * (1 + COMPLAINT_STEP * relevance)
            * (1 + IMPACT_STEP * (symptom.impact - 3))
            * (CONSEQUENCE if finding.causes_found else 1.0)
            / _TOP
        )
        missing = [c for c in symptom.caused_by.all() if c not in finding.causes_found]
        recipes = list(symptom.recipes.all())
        conditional = [r for r in recipes if r.applies_when]
        entries: list[tuple[FixRecipe, list]] = [(r, []) for r in recipes if not r.applies_when]
        if conditional:
            # One entry for the alternatives: the best fitting, the others listed under it.
            conditional.sort(key=lambda r: (_fit_order(fits.get((match.run_id, r.pk))), r.key))
            lead, *others = conditional
            entries.append((lead, [Alternative(r, _fit_or_none(fits.get((match.run_id, r.pk)))) for r in others]))
        for recipe, alternatives in entries:
            fit = fits.get((match.run_id, recipe.pk))
            score = round(strength * _fit_factor(fit), 4)
            current = best.get(recipe.pk)
            if current is not None and current.score >= score:
                current.matches.append(match)
                continue
            entry = RankedFix(
                recipe=recipe,
                score=score,
                finding=finding,
                fit=fit,
                causes=list(finding.causes_found),
                missing_causes=missing,
                alternatives=alternatives,
                explains_complaint=relevance >= 1,
                matches=[match, *(current.matches if current else [])],
            )
            best[recipe.pk] = entry
    # Alternatives shown under another entry are not repeated as entries of their own.
    folded = {a.recipe.pk for entry in best.values() for a in entry.alternatives}
    ranked = [entry for pk, entry in best.items() if pk not in folded or _fits(entry)]
    return sorted(ranked, key=_rank)


def _fit_or_none(fit: RecipeFit | None) -> bool | None:
    return None if fit is None else fit.applies


def _fits(entry: RankedFix) -> bool:
    # A recipe listed as an alternative somewhere keeps its own entry only when it fits its host.
    return entry.fit is not None and entry.fit.applies


def _rank(entry: RankedFix) -> tuple:
    return (-entry.score, _fit_order(entry.fit), entry.recipe.key)


def ranked_fixes(*, run: CollectionRun | None = None, ticket: Ticket | None = None) -> list[RankedFix]:
    """The ranked fixes of one run's matches, or of a ticket's whole diagnosis."""
    if (run is None) == (ticket is None):
        raise TypeError("ranked_fixes needs exactly one of run or ticket")
    if ticket is not None:
        findings = ticket_findings(ticket=ticket).findings
        return rank_findings(findings, complaint=f"{ticket.subject}\n{ticket.description}")
    assert run is not None  # exactly one of the two, checked above
    complaint = f"{run.ticket.subject}\n{run.ticket.description}" if run.ticket is not None else ""
    return rank_findings(run_findings(run=run), complaint=complaint)


def run_findings(*, run: CollectionRun) -> list[Finding]:
    """One run's matched symptoms as findings, each cause taken from the same run."""
    matches = list(
        Match.objects.filter(run=run, matched=True)
        .select_related("symptom", "run__server")
        .prefetch_related("symptom__recipes", "symptom__caused_by")
    )
    found = {m.symptom_id for m in matches}
    findings = []
    for match in matches:
        causes = [c for c in match.symptom.caused_by.all() if c.pk in found]
        findings.append(Finding(match, [run], causes))
    return findings


def near_misses(*, run: CollectionRun) -> list[Match]:
    """Symptoms whose conditions partly held: for admins tuning signatures."""
    return list(Match.objects.filter(run=run, near_miss=True).select_related("symptom").order_by("-score"))
