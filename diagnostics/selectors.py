"""Reads for collection views: a ticket's runs, one run with per-step progress, server setup."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from django.db.models import Count, Q

from diagnostics.knowledge import outcomes
from diagnostics.knowledge import selectors as knowledge_selectors
from diagnostics.knowledge.diagnosis import ticket_findings
from diagnostics.knowledge.host_context import HostContext, host_context_for_runs
from diagnostics.knowledge.recipe_text import recipe_for_host
from diagnostics.models import (
    AuditEntry,
    CollectionRun,
    Credential,
    Evidence,
    HostKey,
    JumpHost,
    JumpLink,
    Match,
    RecipeOutcome,
)
from triage import access
from triage.models import Server, Ticket


@dataclass
class StepView:
    index: int
    probe: str
    params: dict
    evidence: Evidence | None
    # (line_no, text, cited) for the output preview, numbered as the matcher numbers them.
    lines: list[tuple[int, str, bool]] = field(default_factory=list)
    # Cited lines past the preview, so every link from a suggested fix lands somewhere.
    cited_beyond: list[tuple[int, str, bool]] = field(default_factory=list)
    has_citation: bool = False

    @property
    def anchor(self) -> str:
        return f"ev-{self.index}"

    @property
    def open(self) -> bool:
        """Expanded when it proves a match, or when something went wrong with it."""
        if self.evidence is None or self.evidence.binary:
            return False
        return self.has_citation or self.state != "done"

    @property
    def state(self) -> str:
        if self.evidence is None:
            return "pending"
        if self.evidence.timed_out:
            return "timed_out"
        if self.evidence.exit_status is None:
            return "failed"
        return "done" if self.evidence.exit_status == 0 else "nonzero"


def ticket_runs(*, ticket: Ticket, limit: int = 20) -> list[CollectionRun]:
    return list(ticket.collection_runs.select_related("server", "requested_by")[:limit])


@dataclass
class LiveRun:
    """A run still going, as the ticket page shows it: each probe's state and the progress."""

    run: CollectionRun
    steps: list[StepView]
    progress: int


def ticket_live_runs(*, runs: list[CollectionRun]) -> list[LiveRun]:
    """The unfinished runs among ``runs`` with their steps so far; outputs are not loaded."""
    # A run is followed until it is diagnosed, so the poll that stops brings its fixes.
    active = [run for run in runs if not run.is_settled]
    if not active:
        return []
    done: dict[int, dict[int, Evidence]] = {}
    fields = ("run_id", "step", "probe", "exit_status", "timed_out", "truncated", "duration", "output_bytes", "error")
    for evidence in Evidence.objects.filter(run__in=active).only(*fields):
        done.setdefault(evidence.run_id, {})[evidence.step] = evidence
    live = []
    for run in active:
        steps = [
            StepView(i, s.get("probe", "?"), s.get("params") or {}, done.get(run.pk, {}).get(i))
            for i, s in enumerate(run.steps)
        ]
        live.append(LiveRun(run, steps, run_progress(steps)))
    return live


def _run_for_page(run_id: int) -> CollectionRun:
    return CollectionRun.objects.select_related("server", "ticket", "sweep__customer", "requested_by").get(pk=run_id)


def _step_views(run: CollectionRun, evidence: dict[int, Evidence]) -> list[StepView]:
    steps = [StepView(i, s.get("probe", "?"), s.get("params") or {}, evidence.get(i)) for i, s in enumerate(run.steps)]
    # Evidence past the playbook's steps is measured by the product itself (ssh_session): shown last.
    steps += [StepView(e.step, e.probe, {}, e) for step, e in sorted(evidence.items()) if step >= len(run.steps)]
    return steps


def run_detail(*, user, run_id: int) -> tuple[CollectionRun, list[StepView]]:
    access.run_access(user=user, action="view")
    run = _run_for_page(run_id)
    steps = _step_views(run, {e.step: e for e in run.evidence.all()})
    cited = cited_lines(run=run) if run.is_settled else {}
    for step in steps:
        if step.evidence is not None and not step.evidence.binary:
            _number_lines(step, cited.get(step.index, {}))
    return run, steps


@dataclass
class RunPoll:
    """One poll of a run page: the run's state and progress, and only the steps the page must swap."""

    run: CollectionRun
    progress: int
    changed: list[StepView]  # the page shows these as unfinished, or (once settled) they hold cited lines
    new: list[StepView]  # steps the page does not show yet (the session's own evidence, appended last)
    query: str  # what the next poll asks for (``poll_query``)


# Enough of an evidence row to know its step is finished (progress, the next poll), without its output.
_STEP_STATE_FIELDS = ("run_id", "step", "probe")


def run_poll(*, user, run_id: int, pending: set[int], shown: int) -> RunPoll:
    """What the run page's poll needs. ``pending``: the steps the page shows unfinished; ``shown``: how many
    steps it shows. Finished steps the page already has are never sent again (their outputs are not even
    read), so a poll costs the same at the last step as at the first and a step a tech opened stays open.
    Once the run is settled, the steps holding cited lines are sent once more, with those lines marked."""
    access.run_access(user=user, action="view")
    run = _run_for_page(run_id)
    steps = _step_views(run, {e.step: e for e in run.evidence.only(*_STEP_STATE_FIELDS)})
    cited = cited_lines(run=run) if run.is_settled else {}
    wanted = {s.index for s in steps if s.index in pending or s.index >= shown or s.index in cited}
    full = {e.step: e for e in run.evidence.filter(step__in=wanted)} if wanted else {}
    changed: list[StepView] = []
    new: list[StepView] = []
    for step in steps:
        if step.index not in wanted:
            continue
        step.evidence = full.get(step.index)
        if step.evidence is not None and not step.evidence.binary:
            _number_lines(step, cited.get(step.index, {}))
        (new if step.index >= shown else changed).append(step)
    return RunPoll(run, run_progress(steps), changed, new, poll_query(steps))


def poll_query(steps: list[StepView]) -> str:
    """The run page's poll parameters for a page showing ``steps``: its unfinished steps and how many it shows."""
    pending = ",".join(str(s.index) for s in steps if s.evidence is None)
    shown = max((s.index for s in steps), default=-1) + 1
    return urlencode({"pending": pending, "shown": shown})


def parse_poll_query(params) -> tuple[set[int], int]:
    """``pending`` and ``shown`` from a poll's query string; ValueError saying what is wrong."""
    try:
        pending = {int(i) for i in params.get("pending", "").split(",") if i != ""}
        shown = int(params["shown"])
    except (KeyError, ValueError):
        raise ValueError("a run poll needs pending=<step numbers, comma-separated>&shown=<number>") from None
    if shown < 0 or any(i < 0 for i in pending):
        raise ValueError("step numbers cannot be negative")
    return pending, shown


def cited_lines(*, run: CollectionRun) -> dict[int, dict[int, str]]:
    """{step: {line_no: cited text}} over the run's matched symptoms, in one query."""
    cited: dict[int, dict[int, str]] = {}
    for citations in Match.objects.filter(run=run, matched=True).values_list("citations", flat=True):
        for c in citations or []:
            start, step = c.get("line_start"), c.get("step")
            if not isinstance(start, int) or not isinstance(step, int):
                continue  # a fact-based citation without a line: nothing to highlight
            end = c.get("line_end") if isinstance(c.get("line_end"), int) else start
            lines = cited.setdefault(step, {})
            for line_no in range(start, max(start, end) + 1):
                lines.setdefault(line_no, c.get("text", "") if line_no == start else "")
    return cited


def _number_lines(step: StepView, cited: dict[int, str]) -> None:
    # Split on "\n" only, exactly as the matcher counts lines (not str.splitlines).
    assert step.evidence is not None  # the caller numbers the lines of a step's stored text only
    text = step.evidence.preview
    raw = text.split("\n")
    if raw and raw[-1] == "":
        raw.pop()  # the final newline does not start another line
    step.lines = [(n, line.rstrip("\r"), n in cited) for n, line in enumerate(raw, start=1)]
    step.cited_beyond = [(n, cited[n], True) for n in sorted(cited) if n > len(raw)]
    step.has_citation = bool(cited)


@dataclass
class CitationView:
    run_id: int
    step: int
    probe: str
    line: int | None
    text: str

    @property
    def anchor(self) -> str:
        return f"ev-{self.step}-L{self.line}" if self.line is not None else f"ev-{self.step}"


@dataclass
class SymptomView:
    title: str
    why: str
    score_percent: int
    confidence: str
    citations: list[CitationView]


@dataclass
class ProofView:
    """A run that proved a finding, and how old its evidence is."""

    run_id: int
    server: str
    finished_at: object


@dataclass
class FixView:
    recipe_id: int
    title: str
    score_percent: int
    confidence: str
    risk: str
    risk_label: str
    needs: str
    needs_label: str
    steps: list[str]
    snippets: list[dict]  # {label, language, text, for, on_host}; on_host False: for software not on this host
    references: list[dict]
    symptoms: list[SymptomView]
    citations: list[CitationView]
    # Whether the recipe fits this host: None for general advice or when the run did not look.
    fits: bool | None = None
    fit_why: str = ""
    fit_citations: list[CitationView] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)  # titles of found symptoms that explain this fix's
    missing_causes: list[str] = field(default_factory=list)  # known causes of its symptom not found
    alternatives: list[dict] = field(default_factory=list)  # [{key, title, fits}] other recipes for the same symptom
    explains_complaint: bool = False  # its symptom shares words with what the customer wrote
    proved_by: list[ProofView] = field(default_factory=list)  # the runs that found its symptom, newest first
    server: str = ""
    accepted: bool = False  # a tech recorded applying it on this ticket
    fixed: bool = False  # the ticket was resolved with it
    rejected: bool = False  # a tech recorded that it does not apply here
    rejected_reason: str = ""
    verified: bool = False  # a Verify run found its symptom gone
    steps_not_on_host: list[dict] = field(default_factory=list)  # {text, for}: for software not running here
    # For API readers, who name recipes and symptoms by key (titles change, keys do not).
    key: str = ""
    score: float = 0.0  # the rank's score, 0..1; score_percent is it rounded for people
    symptom_keys: list[str] = field(default_factory=list)
    cause_keys: list[str] = field(default_factory=list)

    @property
    def last_seen(self):
        return self.proved_by[0].finished_at if self.proved_by else None


def _citations(matches: list[Match]) -> list[CitationView]:
    return _cited_lines((match.run_id, match.citations) for match in matches)


def _cited_lines(sources) -> list[CitationView]:
    """CitationViews from (run id, stored citations) pairs: each line once, in evidence order."""
    seen, views = set(), []
    for run_id, citations in sources:
        for c in citations or []:
            key = (run_id, c.get("evidence_id"), c.get("line_start"), c.get("line_end"), c.get("text"))
            if key in seen or not isinstance(c.get("step"), int):
                continue
            seen.add(key)
            line = c.get("line_start") if isinstance(c.get("line_start"), int) else None
            views.append(CitationView(run_id, c["step"], str(c.get("probe", "")), line, str(c.get("text", ""))))
    # In the order they appear in the evidence, so the cited lines read like the log they came from.
    return sorted(views, key=lambda v: (v.run_id, v.step, v.line or 0))


def _symptom_view(match: Match) -> SymptomView:
    return SymptomView(
        match.symptom.title, match.why, round(100 * match.score), match.get_confidence_display(), _citations([match])
    )


def _reference(value) -> dict:
    text = str(value)
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        parts = None
    linkable = parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)
    return {"url": text.strip() if linkable else None, "text": text}


def ticket_fixes_panel(*, ticket) -> dict:
    """Everything the ticket's "Suggested fixes" panel shows, from one reading of its diagnosis."""
    diagnosis = ticket_findings(ticket=ticket)
    return {
        "fixes": suggested_fixes(ticket=ticket, diagnosis=diagnosis),
        "possible": ticket_possible(ticket=ticket, diagnosis=diagnosis),
        "cleared": [
            ClearedView(
                c.before.symptom.title,
                c.before.run_id,
                c.after.pk,
                c.after.finished_at,
                c.after.verifies_recipe.title if c.after.verifies_recipe is not None else "",
            )
            for c in diagnosis.cleared
        ],
        "pending_diagnosis": len(diagnosis.pending_runs),
        "has_evidence": Evidence.objects.filter(Q(run__ticket=ticket) | Q(run__sweep_findings__ticket=ticket)).exists(),
    }


def suggested_fixes(*, ticket, diagnosis=None) -> list[FixView]:
    """The ticket's ranked fixes from its whole diagnosis, shaped for the page: every decision
    made here, not in the template. What techs recorded about each (accepted, rejected...) is shown too."""
    diagnosis = diagnosis or ticket_findings(ticket=ticket)
    ranked = knowledge_selectors.rank_findings(diagnosis.findings, complaint=f"{ticket.subject}\n{ticket.description}")
    ids = [entry.recipe.pk for entry in ranked]
    views = fix_views(
        ranked,
        progress=outcomes.ticket_recipe_progress(ticket=ticket, recipe_ids=ids),
        reasons=outcomes.ticket_rejection_reasons(ticket=ticket, recipe_ids=ids),
    )
    # A fix the tech rejected goes last; the others keep their rank.
    return sorted(views, key=lambda view: view.rejected)


def run_fixes(*, run: CollectionRun) -> list[FixView]:
    """One diagnosed run's ranked fixes, shaped as the ticket page shows them (the API's run matches)."""
    if not run.is_settled:
        return []
    return fix_views(knowledge_selectors.ranked_fixes(run=run))


def fix_views(
    ranked: list[knowledge_selectors.RankedFix], *, progress: dict | None = None, reasons: dict | None = None
) -> list[FixView]:
    """``ranked`` (best first) as FixViews, steps filled in for the host that showed each fix's symptom;
    ``progress`` and ``reasons`` are a ticket's recorded outcomes per recipe id (none for a bare run)."""
    progress, reasons = progress or {}, reasons or {}
    views = []
    contexts: dict[tuple, HostContext] = {}
    for entry in ranked:
        recipe, matches, fit = entry.recipe, entry.matches, entry.fit  # matches arrive best first
        # Steps and snippets filled from what the runs that proved the fix saw of its host (recipe_text).
        runs = sorted({run.pk for run in entry.finding.runs} | ({fit.run_id} if fit is not None else set()))
        key = (tuple(runs), tuple(m.pk for m in matches))
        if key not in contexts:
            contexts[key] = host_context_for_runs(runs=runs, matches=matches)
        rendered = recipe_for_host(recipe=recipe, context=contexts[key])
        best: dict[int, Match] = {}
        for match in matches:
            best.setdefault(match.symptom_id, match)
        done = progress.get(recipe.pk, set())
        proofs = sorted(entry.finding.runs, key=lambda r: (r.finished_at, r.pk), reverse=True)
        views.append(
            FixView(
                recipe_id=recipe.pk,
                key=recipe.key,
                title=recipe.title,
                score=entry.score,
                score_percent=max(0, min(100, round(100 * entry.score))),
                confidence=matches[0].get_confidence_display() if matches else "",
                risk=recipe.risk,
                risk_label=recipe.get_risk_display(),
                needs=recipe.needs,
                needs_label=recipe.get_needs_display(),
                steps=rendered.steps,
                snippets=rendered.snippets,
                steps_not_on_host=rendered.steps_not_on_host,
                references=[_reference(r) for r in recipe.references or []],
                symptoms=[_symptom_view(m) for m in best.values()],
                symptom_keys=[m.symptom.key for m in best.values()],
                citations=_citations(matches),
                fits=None if fit is None else fit.applies,
                fit_why=fit.why if fit is not None else "",
                fit_citations=_cited_lines([(fit.run_id, fit.citations)]) if fit is not None else [],
                causes=[cause.title for cause in entry.causes],
                cause_keys=[cause.key for cause in entry.causes],
                missing_causes=[cause.title for cause in entry.missing_causes],
                alternatives=[
                    {"key": a.recipe.key, "title": a.recipe.title, "fits": a.fits} for a in entry.alternatives
                ],
                explains_complaint=entry.explains_complaint,
                proved_by=[ProofView(r.pk, r.server.name, r.finished_at) for r in proofs],
                server=entry.finding.server.name,
                accepted=RecipeOutcome.ACCEPTED in done,
                fixed=RecipeOutcome.FIXED in done,
                rejected=RecipeOutcome.REJECTED in done,
                rejected_reason=reasons.get(recipe.pk, ""),
                verified=RecipeOutcome.VERIFIED in done,
            )
        )
    return views


@dataclass
class ClearedView:
    """A symptom found earlier and gone in a later run that collected its proof (before and after)."""

    title: str
    before_run_id: int
    after_run_id: int
    after_at: object
    verified_recipe: str  # the recipe a Verify run was checking, when the later run was one


@dataclass
class PossibleView:
    """A symptom that partly held: shown to techs as "possible", with the probes that would settle it."""

    key: str
    title: str
    why: str
    score_percent: int
    server_id: int
    server: str
    run_id: int
    missing_probes: list[str]
    probes: list[str]
    needs_root_probes: list[str]


def ticket_possible(*, ticket, diagnosis=None) -> list[PossibleView]:
    diagnosis = diagnosis or ticket_findings(ticket=ticket)
    return [
        PossibleView(
            p.match.symptom.key,
            p.match.symptom.title,
            p.match.why,
            round(100 * p.match.score),
            p.match.run.server_id,
            p.match.run.server.name,
            p.match.run_id,
            p.missing_probes,
            p.signature_probes,
            p.needs_root_probes,
        )
        for p in diagnosis.possible
    ]


def run_symptoms(*, run: CollectionRun) -> list[SymptomView]:
    """The symptoms a diagnosed run matched, best first, with their cited lines."""
    if not run.is_settled:
        return []
    return [
        _symptom_view(m)
        for m in Match.objects.filter(run=run, matched=True)
        .select_related("symptom")
        .order_by("-score", "symptom__key")
    ]


def run_near_misses(*, run: CollectionRun) -> list[SymptomView]:
    """Symptoms whose conditions partly held; the caller decides who may see them (admins)."""
    return [_symptom_view(m) for m in knowledge_selectors.near_misses(run=run)]


def run_progress(steps: list[StepView]) -> int:
    return round(100 * sum(s.evidence is not None for s in steps) / len(steps)) if steps else 100


def evidence_for_download(*, user, run_id: int, step: int) -> Evidence:
    access.run_access(user=user, action="view")
    return Evidence.objects.select_related("run").get(run_id=run_id, step=step)


def server_collection_setup(*, server: Server) -> dict:
    credential = Credential.objects.filter(server=server).first()
    customer_credential = Credential.objects.filter(customer_id=server.customer_id, server__isnull=True).first()
    return {
        "credential": credential,
        "customer_credential": customer_credential,
        **server_sudoers(server=server, credential=credential or customer_credential),
        "host_keys": list(HostKey.objects.filter(server=server).select_related("decided_by")),
        "recent_runs": list(CollectionRun.objects.filter(server=server).select_related("ticket")[:10]),
        **server_jump_setup(server=server),
    }


def server_jump_setup(*, server: Server) -> dict:
    """The server's own jump chain, its customer's default one, and the customer's jump hosts (with how many
    keys each has trusted and waiting), for the Access page."""

    def chain(**owner) -> list[JumpHost]:
        return [link.jump_host for link in JumpLink.objects.filter(**owner).select_related("jump_host")]

    jump_hosts = list(
        JumpHost.objects.filter(customer_id=server.customer_id).annotate(
            trusted_keys=Count("host_keys", filter=Q(host_keys__status=HostKey.TRUSTED)),
            pending_keys=Count("host_keys", filter=Q(host_keys__status=HostKey.PENDING)),
        )
    )
    own = chain(server=server)
    default = chain(customer_id=server.customer_id, server__isnull=True)
    path = own or default
    return {
        "jump_chain": own,
        "customer_jump_chain": default,
        "jump_hosts": jump_hosts,
        # Hop 1..3 of the chain form, preselected with the chain in force.
        "jump_chain_slots": [(n + 1, path[n].pk if n < len(path) else None) for n in range(3)],
    }


def server_sudoers(*, server: Server, credential: Credential | None) -> dict:
    """The login user and, unless it is root, the sudoers lines that let it run the probes' root commands."""
    from diagnostics.probes import privilege, root_tools

    user = credential.login_user(server) if credential is not None else server.ssh_user
    if user == "root":
        return {"login_user": user, "sudoers": ""}
    password = credential is not None and credential.sudo_password_token is not None
    lines = privilege.sudoers_lines(user=user, tools=root_tools(), password=password)
    return {"login_user": user, "sudoers": "\n".join(lines) + "\n"}


def audit_log(*, user, server_id: int | None = None, limit: int = 200) -> list[AuditEntry]:
    access.collection_setup_access(user=user)
    qs = AuditEntry.objects.select_related("actor", "server")
    if server_id:
        qs = qs.filter(server_id=server_id)
    return list(qs[:limit])
