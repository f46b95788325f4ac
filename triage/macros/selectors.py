"""Reads for macros: the admin's list, the ticket page's picker, and a ticket's placeholder values."""

from __future__ import annotations

from django.db.models import QuerySet

from diagnostics import selectors as diagnostics_selectors
from mailgate import selectors as mail_selectors
from triage.models import Macro, Ticket


def macro_list() -> QuerySet[Macro]:
    return Macro.objects.select_related("assign_to").order_by("-active", "name")


def active_macros() -> list[Macro]:
    """The macros a tech can apply, for the ticket page's picker."""
    return list(Macro.objects.filter(active=True).select_related("assign_to").order_by("name"))


def top_fix_title(*, ticket: Ticket) -> str | None:
    """The first fix of the ticket's "Suggested fixes" panel, as the page ranks it; a fix the tech
    rejected is not anybody's top fix (the panel moves those last)."""
    for fix in diagnostics_selectors.suggested_fixes(ticket=ticket):
        if not fix.rejected:
            return fix.title
    return None


def placeholder_values(*, ticket: Ticket, user) -> dict[str, str | None]:
    """The value of each known placeholder on ``ticket`` for ``user`` (None: this ticket has none)."""
    return {
        "customer": ticket.customer.name,
        "ticket": ticket.reference,
        "requester": mail_selectors.ticket_requester(ticket=ticket),
        "top_fix": top_fix_title(ticket=ticket),
        "me": user.get_full_name().strip() or user.get_username(),
    }
