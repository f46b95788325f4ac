"""Reads for macros: the admin's list, the ticket page's picker, and a ticket's placeholder values."""

from __future__ import annotations

from django.db.models import QuerySet

from triage import extensions
from triage.models import Macro, Ticket


def macro_list() -> QuerySet[Macro]:
    return Macro.objects.select_related("assign_to").order_by("-active", "name")


def active_macros() -> list[Macro]:
    """The macros a tech can apply, for the ticket page's picker."""
    return list(Macro.objects.filter(active=True).select_related("assign_to").order_by("name"))


def placeholder_values(*, ticket: Ticket, user) -> dict[str, str | None]:
    """The value of each known placeholder on ``ticket`` for ``user`` (None: this ticket has none)."""
    return {
        "customer": ticket.customer.name,
        "ticket": ticket.reference,
        # Mailgate's (triage.extensions) adds who opened the ticket by mail, for a ticket without a requester.
        "requester": ticket.requester.display_name if ticket.requester is not None else None,
        "top_fix": None,  # diagnostics' (triage.extensions), when installed
        "me": user.get_full_name().strip() or user.get_username(),
        **extensions.placeholder_values(ticket=ticket),
    }
