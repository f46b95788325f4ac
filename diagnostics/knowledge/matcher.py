"""Match a run's evidence against every enabled symptom and record why each one fits.

Signatures are compiled once and kept until the knowledge base changes; facts are
computed once per evidence per call and shared by every signature.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from diagnostics.knowledge.signature import (
    CITATIONS_PER_LEAF,
    NO_SCAN,
    Budget,
    BudgetExceeded,
    Document,
    Result,
    ScanPlan,
    Signature,
    SignatureError,
    compile_signature,
)
from diagnostics.models import (
    TERMINAL_STATES,
    CollectionRun,
    Confidence,
    Evidence,
    FixRecipe,
    KnowledgeRevision,
    Match,
    RecipeFit,
    Symptom,
)
from triage.models import OPEN_STATUSES

log = logging.getLogger(__name__)

STRONG = 0.85  # score at which a match reads "strong" rather than "likely"
WHY_REASONS = 4


@dataclass(frozen=True)
class CompiledFit:
    """A recipe's ``applies_when`` signature, compiled."""

    recipe_id: int
    key: str
    signature: Signature


@dataclass(frozen=True)
class CompiledSymptom:
    id: int
    key: str
    version: int
    threshold: float
    signature: Signature


@dataclass(frozen=True)
class CompiledKnowledge:
    """One compilation of the knowledge base: what a matching reads, all from the same stamp (a
    ``plan`` names patterns in its own scanner, never in another compilation's)."""

    stamp: tuple | None
    symptoms: list[CompiledSymptom]
    fits: list[CompiledFit]
    plan: ScanPlan
    skipped: dict


_cache_lock = threading.Lock()
# Held while compiling: threads that find the cache stale at once (a collector's runs finishing
# together) wait for one compilation instead of each compiling the whole knowledge base.
_compile_lock = threading.Lock()
_cache: dict = {"compiled": CompiledKnowledge(None, [], [], NO_SCAN, {})}


def _stamp() -> tuple:
    # Services write a revision on every change; updated_at and the count also catch
    # edits made straight through the ORM (admin, shell) and deletions.
    symptoms = Symptom.objects.aggregate(n=Count("id"), changed=Max("updated_at"))
    recipes = FixRecipe.objects.aggregate(n=Count("id"), changed=Max("updated_at"))
    return (
        KnowledgeRevision.objects.aggregate(top=Max("id"))["top"],
        symptoms["n"],
        symptoms["changed"],
        recipes["n"],
        recipes["changed"],
    )


def compiled_knowledge() -> CompiledKnowledge:
    """The knowledge base compiled, as of now; recompiled only when it changed (see ``_stamp``)."""
    stamp = _stamp()
    with _cache_lock:
        current = _cache["compiled"]
    if current.stamp == stamp:
        return current
    with _compile_lock:
        with _cache_lock:
            current = _cache["compiled"]
        if current.stamp == stamp:
            return current  # another thread compiled it while this one waited
        current = _compile(stamp)
        with _cache_lock:
            _cache["compiled"] = current
        return current


def _compile(stamp: tuple) -> CompiledKnowledge:
    compiled, skipped = [], {}
    for symptom in Symptom.objects.filter(enabled=True).order_by("key"):
        try:
            signature = compile_signature(symptom.signature)
        except SignatureError as exc:
            # Stored before validation refused it (an unbounded regex...): never run, said on its page.
            log.error("symptom %s has an invalid signature, skipped: %s", symptom.key, exc)
            skipped[symptom.pk] = exc.errors
            continue
        compiled.append(CompiledSymptom(symptom.pk, symptom.key, symptom.version, symptom.threshold, signature))
    plan = scan_plan([symptom.signature for symptom in compiled])
    return CompiledKnowledge(stamp, compiled, _compiled_fits(), plan, skipped)


def compiled_symptoms() -> list[CompiledSymptom]:
    """Every enabled symptom, compiled; recompiled only when the knowledge base changed."""
    return compiled_knowledge().symptoms


def skipped_symptoms() -> dict[int, list[str]]:
    """Enabled symptoms the matcher does not evaluate, by id, with why (their signature's errors)."""
    return dict(compiled_knowledge().skipped)


def _compiled_fits() -> list[CompiledFit]:
    fits = []
    for recipe in FixRecipe.objects.exclude(applies_when={}).order_by("key"):
        try:
            fits.append(CompiledFit(recipe.pk, recipe.key, compile_signature(recipe.applies_when)))
        except SignatureError as exc:
            log.error("recipe %s has an invalid applies_when, treated as general advice: %s", recipe.key, exc)
    return fits


# A facts leaf's line prefilter gives up (and its table is parsed whole) past this many lines.
PREFILTER_LINES = 10_000


def scan_plan(signatures: list[Signature]) -> ScanPlan:
    """One multi-pattern scan (hyperscan) for every regex leaf it can serve, and for the
    line prefilters of facts leaves, returned as a plan the documents carry (the leaves are
    not changed: a signature can be read under an old plan while a new one is built).

    Validation only lets through regexes the scan takes; should the shared database still
    fail to compile, each leaf scans with its own one-pattern database (bounded too), with the
    same answers: the lines matching. Identical regexes are scanned once. A facts leaf whose
    ``where`` tests a log message (``diagnostics.parsers.line_prefilter``) gets loose patterns matching every line its
    rows can come from, so only those lines are parsed (``Document.table``).
    """
    from diagnostics import scanning
    from diagnostics.parsers import line_prefilter

    patterns: list = []
    by_key: dict[tuple, int] = {}

    def pattern_id(regex: str, flags: str = "", *, loose: bool = False) -> int | None:
        key = (regex, flags, loose)
        if key not in by_key:
            candidate = scanning.Pattern(
                len(patterns), regex, flags, max_hits=PREFILTER_LINES if loose else None, loose=loose
            )
            try:
                scanning.translate(candidate)
            except scanning.PatternError:
                return None
            by_key[key] = candidate.id
            patterns.append(candidate)
        return by_key[key]

    scan_ids: dict = {}
    line_filters: dict = {}
    for signature in signatures:
        for leaf in signature.regex_leaves():
            scan_id = pattern_id(leaf.regex, leaf.flags)
            if scan_id is not None:
                scan_ids[leaf] = scan_id
        for leaf in signature.facts_leaves():
            for name, op, expected in leaf.where:
                regexes = line_prefilter(leaf.table, name, op, expected)
                ids = [pattern_id(regex, loose=True) for regex in regexes or ()]
                if ids and None not in ids:
                    line_filters[leaf] = tuple(ids)
                    break
    if not patterns:
        return NO_SCAN
    try:
        scanner = _scanner_compiled(tuple(patterns))
    except scanning.PatternError as exc:
        log.warning("multi-pattern scan unavailable, searching each regex on its own: %s", exc)
        return NO_SCAN
    cap = max([CITATIONS_PER_LEAF, *(leaf.min_matches for leaf in scan_ids)])
    return ScanPlan(scanner=scanner, cap=cap, scan_ids=scan_ids, line_filters=line_filters)


@functools.lru_cache(maxsize=4)
def _scanner_compiled(patterns: tuple):
    """The same patterns compile to the same scan: an edit that changes no regex (a title, a
    threshold, a recipe) does not compile hyperscan's database again. Scanners are immutable
    (scratch space is per thread), so one is safely shared by every compilation that has it."""
    from diagnostics import scanning

    return scanning.Scanner.compile(patterns)


def current_plan() -> ScanPlan:
    """The scan plan of the newest compilation (``compiled_knowledge`` gives it with its symptoms)."""
    with _cache_lock:
        current = _cache["compiled"]
    return current.plan


def _facts_loader(evidence: Evidence):
    """``facts_for`` bound to one evidence (see ``Document``): some tables, or some lines of one."""

    def load(*, tables=None, spans=None) -> dict[str, list[dict]]:
        from diagnostics.parsers import facts_for

        output = bytes(evidence.output)
        return facts_for(evidence.probe, output, recorded_at=evidence.recorded_at, tables=tables, spans=spans)

    return load


def documents_for(
    evidences: Iterable[Evidence], *, plan: ScanPlan = NO_SCAN, budget: Budget | None = None
) -> list[Document]:
    """The evaluator's view of evidence rows; each document parses its facts and runs
    the multi-pattern scan at most once. With ``budget``, evaluating any signature on them
    raises BudgetExceeded once it is spent (see ``match_budget``)."""
    from diagnostics.parsers import PROBE_TABLES

    documents = []
    for ev in evidences:
        doc = Document(
            probe=ev.probe,
            # Binary outputs (pcaps) have no lines to cite; only their facts count.
            text="" if ev.binary else ev.text,
            evidence_id=ev.pk,
            step=ev.step,
            facts_loader=_facts_loader(ev),
            # A table is parsed only for a probe that yields it, and only when a leaf reads it.
            tables=PROBE_TABLES.get(ev.probe, ()),
        )
        doc.plan, doc.budget = plan, budget
        documents.append(doc)
    return documents


def match_budget() -> Budget:
    """The time one run's matching may take (``TRIAGE_MATCH_BUDGET_SECONDS``), from now."""
    return Budget(seconds=settings.TRIAGE_MATCH_BUDGET_SECONDS)


def confidence_for(score: float, *, matched: bool) -> str:
    if matched and score >= STRONG:
        return Confidence.STRONG
    if matched:
        return Confidence.LIKELY
    return Confidence.POSSIBLE


def why_for(result: Result) -> str:
    reasons = list(dict.fromkeys(r for r in result.reasons if r))
    text = "; ".join(reasons[:WHY_REASONS])
    if len(reasons) > WHY_REASONS:
        text += f"; and {len(reasons) - WHY_REASONS} more"
    return text[:1000]


def distinct_citations(citations: list[dict]) -> list[dict]:
    """Each cited line once, in the order first cited (several conditions often cite the same line)."""
    seen, kept = set(), []
    for citation in citations:
        key = (citation.get("evidence_id"), citation.get("line_start"), citation.get("line_end"), citation.get("text"))
        if key not in seen:
            seen.add(key)
            kept.append(citation)
    return kept


# What a matching writes on a Match row (besides run, symptom and, on insert, created_at).
MATCH_VALUES = ("score", "confidence", "matched", "near_miss", "why", "citations", "symptom_version")


@dataclass
class MatchOutcome:
    """What one matching of a run produced: its matches (best first), and why it is incomplete."""

    matches: list[Match]
    note: str = ""


def match_run(*, run: CollectionRun, budget: float | None = None) -> list[Match]:
    """Evaluate every enabled symptom against ``run`` and store the matches and near-misses.

    Idempotent: one Match per (run, symptom), updated in place; symptoms that no
    longer fit at all (or were disabled) lose their row for this run.
    """
    return match_run_bounded(run=run, budget=budget).matches


def match_run_bounded(*, run: CollectionRun, budget: float | None = None) -> MatchOutcome:
    """``match_run`` within ``budget`` seconds of evaluation (``TRIAGE_MATCH_BUDGET_SECONDS``).

    Signatures are evaluated first, with no transaction open and no row locked, so a slow
    evaluation can never hold a lock; the results are then written in one short transaction.
    Past the budget, the symptoms not yet evaluated are skipped, and their rows from an
    earlier matching are kept (a partial diagnosis never erases a finding); the note says so.
    """
    if Evidence.objects.filter(run=run, output_pruned_at__isnull=False).exists():
        # Retention emptied outputs this run's matches were proved from; matching the empty
        # rows would erase those findings, so they stand as they were (triage/retention.py).
        kept = sorted(
            Match.objects.filter(run=run).select_related("symptom"),
            key=lambda m: (not m.matched, -m.score, m.symptom_id),
        )
        return MatchOutcome(kept, "Evidence pruned by retention: the findings from when it was matched are kept.")
    # Compiled (or found compiled) first: a compilation is the process's cost, once, not this run's; counted
    # in the budget it could leave a busy worker's first run with no diagnosis at all.
    knowledge = compiled_knowledge()
    limit = Budget(seconds=settings.TRIAGE_MATCH_BUDGET_SECONDS if budget is None else budget)
    symptoms = knowledge.symptoms
    documents = documents_for(Evidence.objects.filter(run=run).order_by("step"), plan=knowledge.plan, budget=limit)
    evaluated: list[tuple[CompiledSymptom, dict | None]] = []
    skipped, stopped = 0, ""
    for index, symptom in enumerate(symptoms):
        try:
            limit.check(f"symptom {symptom.key}")
            result = symptom.signature.evaluate(documents)
        except BudgetExceeded as exc:
            skipped, stopped = len(symptoms) - index, exc.reason
            break
        score = round(result.score, 4)
        matched = result.held and score >= symptom.threshold
        if not matched and result.weight_held <= 0:
            evaluated.append((symptom, None))
            continue
        evaluated.append(
            (
                symptom,
                {
                    "score": score,
                    "confidence": confidence_for(score, matched=matched),
                    "matched": matched,
                    "near_miss": not matched,
                    "why": why_for(result),
                    "citations": distinct_citations(result.citations),
                    "symptom_version": symptom.version,
                },
            )
        )
    note = ""
    if skipped:
        note = (
            f"Matching stopped: {stopped}; {skipped} of {len(symptoms)} symptoms were not evaluated, "
            "and findings from earlier matchings of them are kept."
        )
        log.warning("run %s: %s", run.pk, note)
    now = timezone.now()
    fitting = [
        Match(run=run, symptom_id=symptom.id, created_at=now, **values)
        for symptom, values in evaluated
        if values is not None
    ]
    with transaction.atomic():
        # A few statements whatever the size of the knowledge base: the rows of symptoms that no
        # longer fit at all go in one delete (all but the fitting ones when every symptom was
        # evaluated), and the fitting ones are inserted or updated in place in one upsert on
        # (run, symptom), which keeps an existing row's id and created_at as update_or_create did.
        stale = Match.objects.filter(run=run)
        if skipped:
            stale = stale.filter(symptom_id__in=[symptom.id for symptom, values in evaluated if values is None])
        stale.exclude(symptom_id__in=[match.symptom_id for match in fitting]).delete()
        if fitting:
            Match.objects.bulk_create(
                fitting, update_conflicts=True, unique_fields=["run", "symptom"], update_fields=list(MATCH_VALUES)
            )
        matched_ids = set(Match.objects.filter(run=run, matched=True).values_list("symptom_id", flat=True))
        _record_fits(run, documents, matched_ids=matched_ids, fits=knowledge.fits)
    kept = list(Match.objects.filter(run=run).select_related("symptom"))
    kept.sort(key=lambda m: (not m.matched, -m.score, m.symptom_id))
    return MatchOutcome(kept, note)


def _record_fits(
    run: CollectionRun, documents: list[Document], *, matched_ids: set[int], fits: list[CompiledFit]
) -> None:
    """Whether each recipe of a matched symptom fits this host, for recipes that say when they apply
    (``fits``: the recipes' compiled ``applies_when``, from the compilation the symptoms came from)."""
    wanted = set()
    if matched_ids:
        wanted = set(FixRecipe.objects.filter(symptoms__in=matched_ids).values_list("pk", flat=True))
    kept = []
    for fit in fits:
        if fit.recipe_id not in wanted:
            continue
        if not fit.signature.reads_any(documents):
            continue  # the run did not look at what would tell: no fit row, the recipe counts as general
        result = fit.signature.evaluate(documents)
        values = {
            "applies": result.held,
            "why": why_for(result) if result.held else "",
            "citations": distinct_citations(result.citations) if result.held else [],
        }
        row, _ = RecipeFit.objects.update_or_create(run=run, recipe_id=fit.recipe_id, defaults=values)
        kept.append(row.pk)
    RecipeFit.objects.filter(run=run).exclude(pk__in=kept).delete()


def rematch_open_tickets() -> int:
    """Diagnose again every finished run of every open ticket (the knowledge base was edited)."""
    from diagnostics.knowledge.diagnosis import run_diagnose

    # With the sweep runs that proved what a sweep filed on an open ticket.
    ids = (
        CollectionRun.objects.filter(
            Q(ticket__status__in=OPEN_STATUSES) | Q(sweep_findings__ticket__status__in=OPEN_STATUSES),
            state__in=TERMINAL_STATES,
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    done = 0
    for run_id in list(ids):
        done += run_diagnose(run_id=run_id) is not None
    return done
