"""The collection a possible symptom implies: exactly the probes that would confirm or rule it out."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from diagnostics import probes
from diagnostics.knowledge.diagnosis import ticket_findings
from diagnostics.models import CollectionRun, Playbook
from triage.models import Ticket


def _step_for(probe: str) -> dict | None:
    """The probe with the parameters a shipped playbook gives it (strace needs its target), or its defaults."""
    for playbook in Playbook.objects.filter(enabled=True).order_by("name"):
        for step in playbook.steps or []:
            if step.get("probe") == probe:
                return {"probe": probe, "params": step.get("params") or {}}
    try:
        probes.build(probe, {})
    except probes.ProbeError:
        return None
    return {"probe": probe, "params": {}}


def settle_request(*, ticket: Ticket, symptom_key: str, server_id: int, by) -> CollectionRun:
    """Queue the probes a possible symptom on ``server_id`` did not have (all of its probes when
    none is missing: the condition may come and go)."""
    from diagnostics.services.runs import run_request

    possible = next(
        (
            p
            for p in ticket_findings(ticket=ticket).possible
            if p.match.symptom.key == symptom_key and p.match.run.server_id == server_id
        ),
        None,
    )
    if possible is None:
        raise ValidationError("That symptom is no longer possible on this ticket: it was found or ruled out since.")
    wanted = possible.missing_probes or possible.signature_probes
    steps = [step for step in map(_step_for, wanted) if step is not None]
    if not steps:
        raise ValidationError("No probe can collect what this symptom needs.")
    return run_request(
        ticket=ticket,
        server=possible.match.run.server,
        by=by,
        steps=steps,
        name=f"Settle: {possible.match.symptom.title}"[:100],
    )
