"""Reads for collection views: a ticket's runs, one run with per-step progress, server setup."""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.models import AuditEntry, CollectionRun, Credential, Evidence, HostKey, Playbook, RunState
from triage import access
from triage.models import Server, Ticket


@dataclass
class StepView:
    index: int
    probe: str
    params: dict
    evidence: Evidence | None

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


def run_detail(*, user, run_id: int) -> tuple[CollectionRun, list[StepView]]:
    access.run_access(user=user, action="view")
    run = CollectionRun.objects.select_related("server", "ticket", "requested_by").get(pk=run_id)
    evidence = {e.step: e for e in run.evidence.all()}
    steps = [StepView(i, s.get("probe", "?"), s.get("params") or {}, evidence.get(i)) for i, s in enumerate(run.steps)]
    return run, steps


def run_progress(steps: list[StepView]) -> int:
    return round(100 * sum(s.evidence is not None for s in steps) / len(steps)) if steps else 100


def evidence_for_download(*, user, run_id: int, step: int) -> Evidence:
    access.run_access(user=user, action="view")
    return Evidence.objects.select_related("run").get(run_id=run_id, step=step)


def playbooks_enabled() -> list[Playbook]:
    return list(Playbook.objects.filter(enabled=True).order_by("name"))


def server_collection_setup(*, server: Server) -> dict:
    return {
        "credential": Credential.objects.filter(server=server).first(),
        "customer_credential": Credential.objects.filter(customer_id=server.customer_id, server__isnull=True).first(),
        "host_keys": list(HostKey.objects.filter(server=server).select_related("decided_by")),
        "recent_runs": list(CollectionRun.objects.filter(server=server).select_related("ticket")[:10]),
    }


def audit_log(*, user, server_id: int | None = None, limit: int = 200) -> list[AuditEntry]:
    access.collection_setup_access(user=user)
    qs = AuditEntry.objects.select_related("actor", "server")
    if server_id:
        qs = qs.filter(server_id=server_id)
    return list(qs[:limit])


ACTIVE = (RunState.QUEUED, RunState.CONNECTING, RunState.RUNNING)
