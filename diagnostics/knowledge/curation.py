"""Reads for curating the knowledge base: the catalogue, a draft signature tried on stored
runs ("try it"), and each entry's version history with diffs.

The preview is bounded: it looks at the newest ``PREVIEW_RUNS`` finished runs and keeps at
most ``PREVIEW_CITED`` cited lines per run, so an admin's click costs the same whatever the
size of the evidence store. A draft whose regexes cannot be run in bounded time is refused by
validation before anything runs, and the whole preview stops cleanly when the matching budget
(``TRIAGE_MATCH_BUDGET_SECONDS``) runs out, saying so: it never holds a web worker longer.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from django.db.models import Count, Q

from diagnostics.knowledge.matcher import (
    distinct_citations,
    documents_for,
    match_budget,
    scan_plan,
    skipped_symptoms,
    why_for,
)
from diagnostics.knowledge.outcomes import recipe_outcome_counts
from diagnostics.knowledge.signature import Budget, BudgetExceeded, SignatureError, compile_signature
from diagnostics.knowledge.yaml_io import dump_yaml
from diagnostics.models import TERMINAL_STATES, CollectionRun, Evidence, FixRecipe, KnowledgeRevision, Symptom

PREVIEW_RUNS = 50
PREVIEW_CITED = 10


def yaml_text(value: Any) -> str:
    """``value`` as YAML for a text area or a diff: block style, keys in the given order."""
    if value in (None, {}, []):
        return ""
    return dump_yaml(value)


# --- the catalogue ---------------------------------------------------------------------------


@dataclass
class RecipeRow:
    recipe: FixRecipe
    suggested: int
    accepted: int
    fixed: int
    rejected: int = 0
    verified: int = 0


def kb_catalogue() -> dict:
    """Symptoms with how many runs each matched (and, for an enabled one the matcher skips, why:
    ``not_evaluated``), and recipes with their outcome counts."""
    symptoms = list(
        Symptom.objects.select_related("updated_by")
        .annotate(runs_matched=Count("matches", filter=Q(matches__matched=True)))
        .order_by("key")
    )
    skipped = skipped_symptoms()
    for symptom in symptoms:
        # For the catalogue's template; a per-page attribute, not a model field.
        symptom.not_evaluated = skipped.get(symptom.pk, [])  # type: ignore[attr-defined]
    recipes = list(FixRecipe.objects.select_related("updated_by").prefetch_related("symptoms").order_by("key"))
    counts = recipe_outcome_counts(FixRecipe.objects.filter(pk__in=[r.pk for r in recipes]))
    none = {"suggested": 0, "accepted": 0, "fixed": 0, "rejected": 0}
    rows = [RecipeRow(r, **counts.get(r.pk, none)) for r in recipes]
    return {"symptoms": symptoms, "recipes": rows}


# --- try it ----------------------------------------------------------------------------------


@dataclass
class PreviewCitation:
    step: int | None
    probe: str
    line_start: int | None
    line_end: int | None
    text: str

    @property
    def lines(self) -> str:
        if self.line_start is None:
            return ""
        if self.line_end in (None, self.line_start):
            return str(self.line_start)
        return f"{self.line_start}-{self.line_end}"


@dataclass
class PreviewRow:
    run: CollectionRun
    score: float
    held: bool
    reaches: bool  # held and, for a symptom, scored at least the threshold
    why: str
    citations: list[PreviewCitation]
    more_citations: int

    @property
    def score_percent(self) -> int:
        return round(100 * self.score)


@dataclass
class Preview:
    errors: list[str] = field(default_factory=list)
    runs_examined: int = 0
    rows: list[PreviewRow] = field(default_factory=list)
    stopped: str = ""  # why the preview stopped before examining every run (its budget ran out)
    runs_wanted: int = 0

    @property
    def hits(self) -> int:
        return sum(row.reaches for row in self.rows)


def _recent_runs(limit: int) -> list[CollectionRun]:
    return list(
        CollectionRun.objects.filter(state__in=TERMINAL_STATES)
        .select_related("ticket", "server")
        .order_by("-finished_at", "-id")[:limit]
    )


def signature_preview(
    *,
    spec: Any,
    threshold: float | None = None,
    runs: int = PREVIEW_RUNS,
    cited: int = PREVIEW_CITED,
    budget: Budget | None = None,
) -> Preview:
    """Evaluate an unsaved signature over the newest ``runs`` finished runs.

    Rows are the runs where any condition held, best first; ``reaches`` says whether the run
    would match (the signature holds and the score reaches ``threshold``; with no threshold, as
    for a recipe's ``applies_when``, holding is enough). Nothing is written. ``errors`` when the
    draft is refused (nothing runs then); ``stopped`` when ``budget`` (the matching budget by
    default) ran out, the rows being those of the runs examined until then.
    """
    try:
        signature = compile_signature(spec)
    except SignatureError as exc:
        return Preview(errors=exc.errors)
    budget = budget if budget is not None else match_budget()
    # The matcher's multi-pattern scan, as for saved symptoms: linear in the evidence whatever
    # the regex (validation let through only what hyperscan runs).
    plan = scan_plan([signature])
    recent = _recent_runs(runs)
    by_id = {run.pk: run for run in recent}
    preview = Preview(runs_wanted=len(recent))
    evidence = Evidence.objects.filter(run__in=recent).order_by("run_id", "step")
    examined: set[int] = set()
    for run_id, rows in groupby(evidence.iterator(chunk_size=200), key=lambda ev: ev.run_id):
        try:
            result = signature.evaluate(documents_for(list(rows), plan=plan, budget=budget))
        except BudgetExceeded as exc:
            preview.stopped = f"Stopped after {len(examined)} of {len(recent)} runs: {exc.reason}."
            break
        examined.add(run_id)
        if not result.held and result.weight_held <= 0:
            continue
        score = round(result.score, 4)
        citations = distinct_citations(result.citations)
        preview.rows.append(
            PreviewRow(
                run=by_id[run_id],
                score=score,
                held=result.held,
                reaches=result.held and (threshold is None or score >= threshold),
                why=why_for(result),
                citations=[
                    PreviewCitation(
                        c.get("step"),
                        str(c.get("probe", "")),
                        c.get("line_start"),
                        c.get("line_end"),
                        str(c.get("text", "")),
                    )
                    for c in citations[:cited]
                ],
                more_citations=max(0, len(citations) - cited),
            )
        )
    # Runs without evidence hold nothing: they count as examined unless the preview stopped early.
    preview.runs_examined = len(examined) if preview.stopped else len(recent)
    preview.rows.sort(key=lambda row: (not row.reaches, -row.score, -row.run.pk))
    return preview


# --- history ---------------------------------------------------------------------------------


@dataclass
class RevisionView:
    revision: KnowledgeRevision
    diff: str  # unified diff of the YAML against the version before; plain text, escaped when shown


def revision_history(*, kind: str, key: str) -> list[RevisionView]:
    """Every saved version of one entry, newest first, each with its diff against the one before."""
    revisions = list(KnowledgeRevision.objects.filter(kind=kind, key=key).select_related("by").order_by("version"))
    views, before, label = [], "", "(nothing)"
    for revision in revisions:
        after = yaml_text(revision.data)
        diff = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=label,
            tofile=f"{key} v{revision.version}",
        )
        views.append(RevisionView(revision, "".join(diff)))
        before, label = after, f"{key} v{revision.version}"
    views.reverse()
    return views
