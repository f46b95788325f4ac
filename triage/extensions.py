"""What other apps add to the desk: its extension points.

The ticket and customer pages, macros and merges are the desk's (triage), yet the ticket page
shows a ticket's collections and suggested fixes, its status form can name the fix that solved the
ticket, the customer page starts and lists fleet sweeps, a macro may name the top fix, and a merge
carries the collections and fix verdicts over. Those belong to diagnostics, which builds on triage;
triage must not import it back (tests/test_import_graph.py). So an app hands the desk a
DeskExtension in its AppConfig.ready, and the desk's views call what is there. Without one (an
app not installed) the pages simply have no such parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

from triage.models import Customer, Ticket


@dataclass(frozen=True)
class DeskExtension:
    # (request=, ticket=, can_work=) -> what the app's parts of the ticket page need (forms only if can_work).
    ticket_page: Callable[..., dict] | None = None
    # (ticket=) -> [(id, title)] of the fixes the status form may name as what solved the ticket.
    fix_choices: Callable[..., list[tuple[int, str]]] | None = None
    # (ticket=, fix_id=, by=, note=, expected_version=): resolve the ticket with that fix, as one change.
    resolve_with_fix: Callable[..., object] | None = None
    # (request=, customer=) -> what the app's parts of the customer page need.
    customer_page: Callable[..., dict] | None = None
    # (ticket=) -> {placeholder: value or None} for macros (triage.macros.placeholders names them all).
    placeholders: Callable[..., dict[str, str | None]] | None = None
    # (source=, survivor=): move what the app holds on a ticket merged away onto the survivor. Called
    # inside the merge's transaction, both tickets locked; it must delete nothing.
    ticket_merged: Callable[..., None] | None = None


# By app label, so registering again (a second ready() in a test) replaces rather than repeats.
_extensions: dict[str, DeskExtension] = {}


def register(*, app_label: str, extension: DeskExtension) -> None:
    _extensions[app_label] = extension


def ticket_page_context(*, request: HttpRequest, ticket: Ticket, can_work: bool) -> dict:
    context: dict = {}
    for extension in _extensions.values():
        if extension.ticket_page:
            context.update(extension.ticket_page(request=request, ticket=ticket, can_work=can_work))
    return context


def customer_page_context(*, request: HttpRequest, customer: Customer) -> dict:
    context: dict = {}
    for extension in _extensions.values():
        if extension.customer_page:
            context.update(extension.customer_page(request=request, customer=customer))
    return context


def placeholder_values(*, ticket: Ticket) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for extension in _extensions.values():
        if extension.placeholders:
            values.update(extension.placeholders(ticket=ticket))
    return values


def ticket_merged(*, source: Ticket, survivor: Ticket) -> None:
    for extension in _extensions.values():
        if extension.ticket_merged:
            extension.ticket_merged(source=source, survivor=survivor)


def fix_choices(*, ticket: Ticket) -> list[tuple[int, str]]:
    return [choice for e in _extensions.values() if e.fix_choices for choice in e.fix_choices(ticket=ticket)]


def resolve_with_fix(*, ticket: Ticket, fix_id: int, by, note: str, expected_version: int | None) -> None:
    """Resolve through the extension that offered the fix choices (StatusForm only offers them then)."""
    resolvers = [e.resolve_with_fix for e in _extensions.values() if e.resolve_with_fix]
    if len(resolvers) != 1:  # a programming error, not bad input: the form had no choices to offer
        raise RuntimeError(f"expected one app resolving tickets with a fix, found {len(resolvers)}")
    resolvers[0](ticket=ticket, fix_id=fix_id, by=by, note=note, expected_version=expected_version)
