"""Diagnostics' parts of the desk (registered in DiagnosticsConfig.ready; see triage.extensions):
on the ticket page the ticket's collections, the suggested-fixes panel, the collect form with the
proposed playbook, and "fixed by" on the status form; on the customer page its fleet sweeps and
their schedules; the macros' {top_fix}; and what a merge carries over to the survivor."""

from __future__ import annotations

from django.http import HttpRequest

from diagnostics import selectors
from diagnostics.forms import CollectForm, SweepForm, SweepScheduleForm
from diagnostics.knowledge import outcomes
from diagnostics.knowledge.proposal import playbook_proposal
from diagnostics.models import CollectionRun, RecipeOutcome, SweepFinding
from diagnostics.sweep_selectors import customer_sweeps
from triage.extensions import DeskExtension
from triage.models import Customer, Ticket


def ticket_page_context(*, request: HttpRequest, ticket: Ticket, can_work: bool) -> dict:
    runs = selectors.ticket_runs(ticket=ticket)
    context = {
        "runs": runs,
        "live": selectors.ticket_live_runs(runs=runs),
        **selectors.ticket_fixes_panel(ticket=ticket),
    }
    if can_work:
        proposal = playbook_proposal(ticket=ticket)
        context["proposal"] = proposal
        context["collect_form"] = CollectForm(
            ticket=ticket, initial={"playbook": proposal.playbook.pk} if proposal is not None else None
        )
    return context


def fix_choices(*, ticket: Ticket) -> list[tuple[int, str]]:
    return [(r.pk, r.title) for r in outcomes.ticket_suggested_recipes(ticket=ticket)]


def resolve_with_fix(*, ticket: Ticket, fix_id: int, by, note: str, expected_version: int | None) -> None:
    recipe = outcomes.ticket_suggested_recipes(ticket=ticket).get(pk=fix_id)
    outcomes.ticket_resolve_with_fix(ticket=ticket, recipe=recipe, by=by, note=note, expected_version=expected_version)


def customer_page_context(*, request: HttpRequest, customer: Customer) -> dict:
    return {
        "sweep_form": SweepForm(customer=customer),
        "schedule_form": SweepScheduleForm(customer=customer, prefix="schedule"),
        "sweeps": customer_sweeps(customer=customer),
        "schedules": customer.sweep_schedules.select_related("playbook", "role"),
    }


def top_fix_title(*, ticket: Ticket) -> str | None:
    """The first fix of the ticket's "Suggested fixes" panel, as the page ranks it; a fix the tech
    rejected is not anybody's top fix (the panel moves those last)."""
    for fix in selectors.suggested_fixes(ticket=ticket):
        if not fix.rejected:
            return fix.title
    return None


# The recipe records that follow the evidence onto the survivor; FIXED says how *that* ticket was resolved.
MOVED_OUTCOMES = (RecipeOutcome.SUGGESTED, RecipeOutcome.ACCEPTED, RecipeOutcome.REJECTED, RecipeOutcome.VERIFIED)


def ticket_merged(*, source: Ticket, survivor: Ticket) -> None:
    """The source's collections, sweep findings and fix verdicts become the survivor's."""
    CollectionRun.objects.filter(ticket=source).update(ticket=survivor)
    SweepFinding.objects.filter(ticket=source).update(ticket=survivor)
    have = set(RecipeOutcome.objects.filter(ticket=survivor).values_list("recipe_id", "kind"))
    movable = [
        pk
        for pk, recipe_id, kind in RecipeOutcome.objects.filter(ticket=source, kind__in=MOVED_OUTCOMES).values_list(
            "pk", "recipe_id", "kind"
        )
        if (recipe_id, kind) not in have
    ]
    # The ones the survivor has already stay on the source: nothing is deleted.
    RecipeOutcome.objects.filter(pk__in=movable).update(ticket=survivor)


EXTENSION = DeskExtension(
    ticket_page=ticket_page_context,
    fix_choices=fix_choices,
    resolve_with_fix=resolve_with_fix,
    customer_page=customer_page_context,
    placeholders=lambda *, ticket: {"top_fix": top_fix_title(ticket=ticket)},
    ticket_merged=ticket_merged,
)
