"""Verify a fix: re-collect exactly what proved its symptom, then compare before and after.

``verify_request`` queues a run of the proving run's own steps (same probes, same parameters)
for the probes the finding cites; when that run is diagnosed, ``verification_settle`` records
the outcome: every symptom gone makes the recipe "verified" on the ticket; one still present
says so on the timeline. Neither is guessed: a verify run that could not collect the proof
(unreachable host, probe failed) says it could not tell.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from diagnostics.knowledge.diagnosis import Finding, proof_probes, ticket_findings
from diagnostics.models import CollectionRun, Evidence, FixRecipe, Match, RecipeOutcome
from triage import services as desk
from triage.models import EventKind, Ticket


def _findings_for(*, ticket: Ticket, recipe: FixRecipe) -> list[Finding]:
    symptom_ids = set(recipe.symptoms.values_list("pk", flat=True))
    return [f for f in ticket_findings(ticket=ticket).findings if f.symptom.pk in symptom_ids]


def verify_request(*, ticket: Ticket, recipe: FixRecipe, by) -> CollectionRun:
    """Queue the re-collection that tells whether ``recipe`` made its symptom go away."""
    from diagnostics.services.runs import run_request

    findings = _findings_for(ticket=ticket, recipe=recipe)
    if not findings:
        raise ValidationError(f"Nothing to verify: no symptom that {recipe.title} fixes is found on this ticket now.")
    finding = max(findings, key=lambda f: f.match.score)
    before = finding.match.run
    wanted = proof_probes(finding.match)
    steps = [step for step in before.steps if step.get("probe") in wanted]
    if not steps:
        raise ValidationError("The evidence that proved this symptom cannot be collected again (its steps are gone).")
    return run_request(
        ticket=ticket,
        server=before.server,
        by=by,
        steps=steps,
        name=f"Verify: {recipe.title}"[:100],
        verifies=(recipe, before),
    )


@dataclass
class Comparison:
    """One symptom before (the proving run) and after (the verify run)."""

    title: str
    before: Match
    after: Match | None  # the verify run's match, None when it found nothing of it
    collected: bool  # the verify run collected every probe that proved it

    @property
    def verdict(self) -> str:
        if self.after is not None and self.after.matched:
            return "still present"
        return "gone" if self.collected else "could not tell"


def verification_compare(*, run: CollectionRun) -> list[Comparison]:
    """Before/after for every symptom of the verified recipe that the 'before' run proved."""
    if run.verifies_recipe_id is None or run.verifies_run_id is None:
        return []
    symptom_ids = set(FixRecipe.objects.get(pk=run.verifies_recipe_id).symptoms.values_list("pk", flat=True))
    before = Match.objects.filter(run_id=run.verifies_run_id, matched=True, symptom_id__in=symptom_ids).select_related(
        "symptom"
    )
    after = {m.symptom_id: m for m in Match.objects.filter(run=run, symptom_id__in=symptom_ids)}
    collected = set(Evidence.objects.filter(run=run, exit_status__isnull=False).values_list("probe", flat=True))
    return [
        Comparison(m.symptom.title, m, after.get(m.symptom_id), proof_probes(m) <= collected)
        for m in before.order_by("-score")
    ]


def verification_settle(*, run: CollectionRun) -> str:
    """Record what the verify run showed; returns "verified", "still present" or "could not tell"."""
    comparisons = verification_compare(run=run)
    recipe, ticket = run.verifies_recipe, run.ticket
    assert recipe is not None and ticket is not None  # only a Verify run is settled, and one is a ticket's
    if comparisons and all(c.verdict == "gone" for c in comparisons):
        verdict = "verified"
        RecipeOutcome.objects.get_or_create(
            ticket=ticket, recipe=recipe, kind=RecipeOutcome.VERIFIED, defaults={"by": run.requested_by}
        )
        body = (
            f"Verified: {recipe.title}. "
            + "; ".join(f"{c.title}: no longer seen" for c in comparisons)
            + f" (run #{run.pk}, before: run #{run.verifies_run_id})."
        )
    elif any(c.verdict == "still present" for c in comparisons):
        verdict = "still present"
        still = [c.title for c in comparisons if c.verdict == "still present"]
        body = f"Verify: {recipe.title} has not fixed it yet: {'; '.join(still)} still present (run #{run.pk})."
    else:
        verdict = "could not tell"
        body = (
            f"Verify of {recipe.title} could not tell: run #{run.pk} did not collect the evidence that proved "
            f"the symptom. {run.reason}"
        ).strip()
    desk.ticket_record_event(
        ticket=ticket,
        kind=EventKind.FIX,
        actor=None,
        body=body[:2000],
        data={"recipe": recipe.key, "run": run.pk, "verdict": verdict},
    )
    return verdict
