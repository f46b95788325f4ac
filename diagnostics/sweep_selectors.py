"""Reads for fleet sweeps: one row per host, and the results grouped by symptom across the fleet."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count

from diagnostics.failure_kinds import failure_label
from diagnostics.models import CollectionRun, Evidence, Match, RunState, Sweep, SweepFinding, Symptom
from diagnostics.selectors import CitationView, _cited_lines
from triage import access
from triage.models import Server, Ticket


@dataclass
class HostRow:
    """One server of the sweep and its run, as the live table shows it."""

    run: CollectionRun
    server: Server
    progress: int  # percent of the playbook's steps with evidence
    symptoms: int = 0  # confident findings on this host, once diagnosed

    @property
    def settled(self) -> bool:
        return self.run.is_settled

    @property
    def failure(self) -> str:
        return failure_label(self.run.failure_kind) if self.run.failure_kind else ""


@dataclass
class HostEvidence:
    """A host on which a symptom was found, and the lines that prove it there."""

    server: Server
    run_id: int
    citations: list[CitationView]

    @property
    def server_name(self) -> str:
        return self.server.name


@dataclass
class SymptomGroup:
    """A symptom found on ``count`` of the sweep's ``total`` hosts."""

    symptom: Symptom
    total: int
    hosts: list[HostEvidence]
    tickets: list[Ticket] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.hosts)

    @property
    def ticket_ids(self) -> list[int]:
        return [ticket.pk for ticket in self.tickets]

    @property
    def headline(self) -> str:
        return f"{self.count} of {self.total} hosts: {self.symptom.title}"


@dataclass
class Unreached:
    """A host the sweep could not collect from, and why in words."""

    server: Server
    run_id: int
    kind: str
    reason: str


@dataclass
class SweepResults:
    sweep: Sweep
    hosts: list[HostRow]
    groups: list[SymptomGroup]  # most hosts first
    unreached: list[Unreached]
    settled: int  # hosts finished and diagnosed

    @property
    def total(self) -> int:
        return len(self.hosts)

    @property
    def finished(self) -> bool:
        return self.sweep.finished_at is not None


def _without_label(reason: str, label: str) -> str:
    """ "Unreachable: connect timed out" under the label "Unreachable" reads "Connect timed out"."""
    if reason.lower().startswith(label.lower() + ":"):
        rest = reason[len(label) + 1 :].strip()
        return rest[:1].upper() + rest[1:]
    return reason


def sweep_detail(*, user, sweep_id: int) -> Sweep:
    access.run_access(user=user, action="view")
    return Sweep.objects.select_related("customer", "requested_by", "role", "schedule").get(pk=sweep_id)


def sweep_results(*, sweep: Sweep) -> SweepResults:
    """Every host's run, and the confident matches grouped by symptom across them.

    Only matches that reached their symptom's threshold count ("possible" near misses stay on each
    run's page): a fleet headline, and a ticket filed from it, should name what was proved."""
    runs = list(sweep.runs.select_related("server").order_by("server__name", "pk"))
    done = dict(
        Evidence.objects.filter(run__sweep=sweep)
        .order_by()
        .values("run_id")
        .annotate(n=Count("pk"))
        .values_list("run_id", "n")
    )
    settled_ids = [run.pk for run in runs if run.is_settled]
    matches = list(
        Match.objects.filter(run_id__in=settled_ids, matched=True)
        .select_related("symptom")
        .order_by("symptom__key", "run_id")
    )
    by_run = {run.pk: run for run in runs}
    hosts_by_symptom: dict[int, list[HostEvidence]] = {}
    symptoms: dict[int, Symptom] = {}
    per_run: dict[int, int] = {}
    for match in matches:
        symptoms[match.symptom_id] = match.symptom
        run = by_run[match.run_id]
        hosts_by_symptom.setdefault(match.symptom_id, []).append(
            HostEvidence(run.server, run.pk, _cited_lines([(run.pk, match.citations)]))
        )
        per_run[run.pk] = per_run.get(run.pk, 0) + 1
    tickets: dict[int, list[Ticket]] = {}
    for finding in (
        SweepFinding.objects.filter(sweep=sweep).select_related("ticket").order_by("ticket__created_at", "ticket_id")
    ):
        listed = tickets.setdefault(finding.symptom_id, [])
        if finding.ticket not in listed:
            listed.append(finding.ticket)
    groups = [
        SymptomGroup(symptoms[pk], len(runs), hosts, tickets.get(pk, [])) for pk, hosts in hosts_by_symptom.items()
    ]
    groups.sort(key=lambda g: (-g.count, -g.symptom.impact, g.symptom.key))
    rows = []
    for run in runs:
        steps = len(run.steps) or 1
        progress = 100 if run.is_terminal else min(100, round(100 * done.get(run.pk, 0) / steps))
        rows.append(HostRow(run, run.server, progress, per_run.get(run.pk, 0)))
    unreached = [
        Unreached(
            run.server,
            run.pk,
            failure_label(run.failure_kind),
            _without_label(run.reason, failure_label(run.failure_kind)),
        )
        for run in runs
        if run.state == RunState.FAILED
    ]
    return SweepResults(sweep, rows, groups, unreached, len(settled_ids))


def customer_sweeps(*, customer, limit: int = 10) -> list[Sweep]:
    return list(customer.sweeps.select_related("requested_by", "role")[:limit])
