"""A ticket's diagnosis: what all of its evidence, per server and across runs, says is wrong.

Two steps, each named and called explicitly:

- ``run_diagnose(run_id=...)`` is the step after a collection (``runs.run_execute`` calls it
  once the run's terminal state is committed; the sweeper calls it for a run whose worker died
  in between). It matches the run within the matching budget, with no transaction held while
  signatures are evaluated; then, in one transaction, records the recipes it suggested and
  announces them (``triage.events.fixes_suggested``: webhooks' fix.suggested rows), settles a
  Verify run, and marks the run diagnosed: pages follow a run until it is diagnosed, so nobody sees a
  finished run without its diagnosis.
- ``ticket_findings(ticket=...)`` reads the ticket's diagnosis from every diagnosed run. A
  symptom found on a server stays found until a later run on the same server collected every
  probe that proved it and did not find it again; so a later generic run ("Host health")
  never hides an earlier specific finding, and a failed run (no evidence) changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from diagnostics.knowledge.matcher import compiled_symptoms, match_run_bounded
from diagnostics.models import TERMINAL_STATES, CollectionRun, Evidence, Match
from diagnostics.probes.privilege import NEEDS_ROOT
from triage import events
from triage.models import Ticket

log = logging.getLogger(__name__)

# A near miss is shown to techs as "possible" from this score up (a third of its conditions' weight).
POSSIBLE_FROM = 0.34


def run_diagnose(*, run_id: int) -> CollectionRun | None:
    """Diagnose one finished run; returns it, or None if it is gone or not finished.

    Never raises for a matching failure: the run is marked diagnosed with a note saying what
    went wrong, so its page stops waiting, and its evidence can be diagnosed again later.
    """
    from diagnostics.knowledge import outcomes, verification

    run = CollectionRun.objects.select_related("ticket", "server").filter(pk=run_id).first()
    if run is None or not run.is_terminal:
        return None
    try:
        note = match_run_bounded(run=run).note
    except Exception as exc:
        log.exception("diagnosing run %s failed", run.pk)
        note = f"Diagnosis failed ({type(exc).__name__}); the evidence is kept and can be diagnosed again."
    # One transaction: the fixes suggested and their announcement, a Verify's verdict, and the mark
    # that the run is diagnosed commit together (or the sweeper diagnoses the run again).
    with transaction.atomic():
        suggested = outcomes.outcomes_record_suggested(run=run)
        if suggested:
            # Webhooks' fix.suggested rows, written here and sent on commit (see triage.events).
            events.fixes_suggested(run=run, recipe_ids=suggested)
        if run.verifies_recipe_id and run.diagnosed_at is None:
            # Once: a re-diagnosis after a knowledge-base edit must not repeat the verdict on the timeline.
            verification.verification_settle(run=run)
        CollectionRun.objects.filter(pk=run.pk).update(diagnosed_at=timezone.now(), diagnosis_note=note[:300])
    run.refresh_from_db()
    if run.sweep_id is not None:
        _settle_sweep(run, run.sweep_id)
    return run


def _settle_sweep(run: CollectionRun, sweep_id: int) -> None:
    """The run's sweep may have just finished (and file its tickets): after the run's diagnosis is
    committed, and never a reason for the run's own diagnosis to fail."""
    from diagnostics.services.sweeps import sweep_settle

    try:
        sweep_settle(sweep_id=sweep_id)
    except Exception:
        log.exception("settling sweep %s after run %s failed; the next run or a refiling settles it", sweep_id, run.pk)


def runs_undiagnosed(*, older_than: datetime) -> list[int]:
    """Finished runs still waiting for their diagnosis since before ``older_than``."""
    return list(
        CollectionRun.objects.filter(state__in=TERMINAL_STATES, diagnosed_at__isnull=True, finished_at__lt=older_than)
        .order_by("finished_at")
        .values_list("pk", flat=True)[:200]
    )


@dataclass
class Finding:
    """A symptom found on one server of the ticket: the newest match that proved it, and every
    run that did."""

    match: Match
    runs: list[CollectionRun]  # oldest first; match.run is the last
    causes_found: list = field(default_factory=list)  # matched symptoms (same server) that explain this one

    @property
    def symptom(self):
        return self.match.symptom

    @property
    def server(self):
        return self.match.run.server

    @property
    def last_seen(self) -> datetime | None:
        return self.match.run.finished_at


@dataclass
class Cleared:
    """A symptom found earlier that a later run, which collected everything that proved it, no longer found."""

    before: Match
    after: CollectionRun


@dataclass
class Possible:
    """A symptom whose conditions partly held on the server's newest run that looked, and the
    probes that run did not collect (what would confirm or rule it out)."""

    match: Match
    missing_probes: list[str]
    signature_probes: list[str]
    needs_root_probes: list[str] = field(default_factory=list)  # of missing_probes: ran, but sudo refused root


@dataclass
class TicketDiagnosis:
    findings: list[Finding]
    cleared: list[Cleared]
    possible: list[Possible]
    pending_runs: list[CollectionRun]  # finished but not yet diagnosed


def proof_probes(match: Match) -> set[str]:
    """The probes whose evidence the match cites: what a later run must collect to overrule it."""
    return {str(c.get("probe")) for c in match.citations or [] if c.get("probe")}


def signature_probes_by_symptom() -> dict[int, set[str]]:
    """For every enabled symptom, the probes its signature can read (explicit probes, and the
    probes whose parsed tables its facts leaves read)."""
    from diagnostics.parsers import PROBE_TABLES
    from diagnostics.probes import REGISTRY

    found: dict[int, set[str]] = {}
    for symptom in compiled_symptoms():
        names = set()
        for leaf in symptom.signature.leaves():
            for probe in REGISTRY:
                if not leaf.wants(probe):
                    continue
                table = getattr(leaf, "table", None)
                if table is None or table in PROBE_TABLES.get(probe, ()):
                    names.add(probe)
        found[symptom.id] = names
    return found


def _collected(run_ids: list[int]) -> dict[int, set[str]]:
    """{run id: probes that ran to an exit status} - a probe that never finished proves nothing, nor
    does one that needed root and could not get it (``diagnostics.probes.privilege.NEEDS_ROOT``)."""
    collected: dict[int, set[str]] = {}
    rows = (
        Evidence.objects.filter(run_id__in=run_ids, exit_status__isnull=False)
        .exclude(exit_status=NEEDS_ROOT)
        .values_list("run_id", "probe")
    )
    for run_id, probe in rows:
        collected.setdefault(run_id, set()).add(probe)
    return collected


def _denied_root(run_ids: list[int]) -> dict[int, set[str]]:
    """{run id: probes that ran but could not get root} - what a near miss says was missing, and why."""
    denied: dict[int, set[str]] = {}
    for run_id, probe in Evidence.objects.filter(run_id__in=run_ids, exit_status=NEEDS_ROOT).values_list(
        "run_id", "probe"
    ):
        denied.setdefault(run_id, set()).add(probe)
    return denied


def ticket_findings(*, ticket: Ticket) -> TicketDiagnosis:
    """The ticket's diagnosis from every diagnosed run, per server (see the module docstring)."""
    # A fleet sweep's runs count for the symptoms it filed on this ticket (SweepFinding), and only those.
    swept: dict[int, set[int]] = {}
    for run_id, symptom_id in ticket.sweep_findings.values_list("run_id", "symptom_id"):
        swept.setdefault(run_id, set()).add(symptom_id)
    runs = list(
        CollectionRun.objects.filter(Q(ticket=ticket) | Q(pk__in=list(swept)), state__in=TERMINAL_STATES)
        .select_related("server", "verifies_recipe")
        .order_by("finished_at", "id")
    )
    diagnosed = [run for run in runs if run.diagnosed_at is not None]
    pending = [run for run in runs if run.diagnosed_at is None]
    order = {run.pk: index for index, run in enumerate(diagnosed)}
    collected = _collected(list(order))
    by_run = {run.pk: run for run in diagnosed}
    matches = list(
        Match.objects.filter(run_id__in=list(order))
        .filter(Q(matched=True) | Q(near_miss=True))
        .select_related("symptom")
        .prefetch_related("symptom__recipes", "symptom__caused_by")
    )
    # What every run matched, before a swept run is narrowed to its filed symptoms: a swept run that
    # matched a symptom filed elsewhere must not be read as having cleared it here.
    matched_anywhere = {(m.run_id, m.symptom_id) for m in matches if m.matched}
    matches = [m for m in matches if by_run[m.run_id].ticket_id == ticket.pk or m.symptom_id in swept[m.run_id]]
    for match in matches:
        match.run = by_run[match.run_id]
    matches.sort(key=lambda m: order[m.run_id])

    # (server, symptom) -> the runs that matched it, oldest first
    proved: dict[tuple[int, int], list[Match]] = {}
    for match in matches:
        if match.matched:
            proved.setdefault((match.run.server_id, match.symptom_id), []).append(match)
    matched_ids = matched_anywhere

    findings: list[Finding] = []
    cleared: list[Cleared] = []
    for (server_id, symptom_id), proofs in proved.items():
        newest = proofs[-1]
        needed = proof_probes(newest)
        overruled = next(
            (
                later
                for later in diagnosed[order[newest.run_id] + 1 :]
                if later.server_id == server_id
                and (later.pk, symptom_id) not in matched_ids
                and needed
                and needed <= collected.get(later.pk, set())
            ),
            None,
        )
        if overruled is not None:
            cleared.append(Cleared(newest, overruled))
        else:
            findings.append(Finding(newest, [m.run for m in proofs]))

    found = {(f.match.run.server_id, f.symptom.pk) for f in findings}
    for finding in findings:
        finding.causes_found = [
            cause for cause in finding.symptom.caused_by.all() if (finding.match.run.server_id, cause.pk) in found
        ]
    return TicketDiagnosis(findings, cleared, _possible(matches, diagnosed, order, collected, found), pending)


def _possible(matches, diagnosed, order, collected, found) -> list[Possible]:
    """Near misses worth a tech's look: on the newest run of the server that evaluated the symptom,
    not found on that server, and strong enough to be more than noise."""
    reads = signature_probes_by_symptom()
    denied_root = _denied_root(list(order))
    newest: dict[tuple[int, int], Match] = {}
    for match in matches:
        if match.near_miss:
            newest[(match.run.server_id, match.symptom_id)] = match
    possible = []
    for (server_id, symptom_id), match in newest.items():
        if (server_id, symptom_id) in found or match.score < POSSIBLE_FROM:
            continue
        probes = reads.get(symptom_id, set())
        # A later run on the server that collected everything the symptom reads and saw nothing of it rules it out.
        ruled_out = any(
            later.server_id == server_id and probes and probes <= collected.get(later.pk, set())
            for later in diagnosed[order[match.run_id] + 1 :]
        )
        if ruled_out:
            continue
        missing = sorted(probes - collected.get(match.run_id, set()))
        denied = sorted(set(missing) & denied_root.get(match.run_id, set()))
        possible.append(Possible(match, missing, sorted(probes), denied))
    possible.sort(key=lambda p: (-p.match.score, p.match.symptom.key))
    return possible
