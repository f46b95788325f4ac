"""Diagnostics' parts of the desk's ticket page (registered in DiagnosticsConfig.ready; see
triage.ticket_page): the ticket's collections, the suggested-fixes panel, the collect form with
the proposed playbook, and "fixed by" on the status form."""

from __future__ import annotations

from django.http import HttpRequest

from diagnostics import selectors
from diagnostics.forms import CollectForm
from diagnostics.knowledge import outcomes
from diagnostics.knowledge.proposal import playbook_proposal
from triage.models import Ticket
from triage.ticket_page import TicketPageExtension


def ticket_page_context(*, request: HttpRequest, ticket: Ticket, can_work: bool) -> dict:
    runs = selectors.ticket_runs(ticket=ticket)
    context = {"runs": runs, "live": selectors.ticket_live_runs(runs=runs),
               **selectors.ticket_fixes_panel(ticket=ticket)}
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


EXTENSION = TicketPageExtension(context=ticket_page_context, fix_choices=fix_choices, resolve_with_fix=resolve_with_fix)
