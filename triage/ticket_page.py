"""What other apps add to the ticket page: the desk's extension points.

The ticket page is the desk's (triage), yet it shows a ticket's collections and suggested fixes,
and its status form can name the fix that solved the ticket. Those belong to diagnostics, which
builds on triage; triage must not import it back (tests/test_import_graph.py). So an app hands
the desk a TicketPageExtension in its AppConfig.ready, and the ticket views call what is there.
Without one (an app not installed) the page simply has no such parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

from triage.models import Ticket


@dataclass(frozen=True)
class TicketPageExtension:
    # (request=, ticket=, can_work=) -> what the app's parts of the page need (its forms only if can_work).
    context: Callable[..., dict]
    # (ticket=) -> [(id, title)] of the fixes the status form may name as what solved the ticket.
    fix_choices: Callable[..., list[tuple[int, str]]] | None = None
    # (ticket=, fix_id=, by=, note=, expected_version=): resolve the ticket with that fix, as one change.
    resolve_with_fix: Callable[..., object] | None = None


# By app label, so registering again (a second ready() in a test) replaces rather than repeats.
_extensions: dict[str, TicketPageExtension] = {}


def register(*, app_label: str, extension: TicketPageExtension) -> None:
    _extensions[app_label] = extension


def page_context(*, request: HttpRequest, ticket: Ticket, can_work: bool) -> dict:
    context: dict = {}
    for extension in _extensions.values():
        context.update(extension.context(request=request, ticket=ticket, can_work=can_work))
    return context


def fix_choices(*, ticket: Ticket) -> list[tuple[int, str]]:
    return [choice for e in _extensions.values() if e.fix_choices for choice in e.fix_choices(ticket=ticket)]


def resolve_with_fix(*, ticket: Ticket, fix_id: int, by, note: str, expected_version: int | None) -> None:
    """Resolve through the extension that offered the fix choices (StatusForm only offers them then)."""
    resolvers = [e.resolve_with_fix for e in _extensions.values() if e.resolve_with_fix]
    if len(resolvers) != 1:  # a programming error, not bad input: the form had no choices to offer
        raise RuntimeError(f"expected one app resolving tickets with a fix, found {len(resolvers)}")
    resolvers[0](ticket=ticket, fix_id=fix_id, by=by, note=note, expected_version=expected_version)
