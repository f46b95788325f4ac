"""What other apps add to the desk: its extension points.

The ticket and customer pages, macros and merges are the desk's (triage), yet the ticket page
shows a ticket's collections and suggested fixes, its status form can name the fix that solved the
ticket, the customer page starts and lists fleet sweeps, a macro may name the top fix, and a merge
carries the collections and fix verdicts over. Those belong to diagnostics, which builds on triage;
triage must not import it back (tests/test_import_graph.py). So an app hands the desk a
DeskExtension in its AppConfig.ready, and the desk's views call what is there. Without one (an
app not installed) the pages simply have no such parts.

Mailgate fills the rest (mailgate/desk_extension.py): it keeps the files a tech attaches in the
browser (its Attachment rows, which mail attachments are too), names who opened a ticket by mail
for {{requester}}, and says when an address is another customer's by a mail route. Without it the
desk refuses files with a message saying so (uploads_check), and no address is claimed elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest

from triage.models import Customer, Ticket, TicketEvent


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
    # (email=, customer=) -> why ``email`` (clean, lower-case) may not be a contact of ``customer``
    # because the app gives it to another customer, or None (contact services refuse with that reason).
    address_claim: Callable[..., str | None] | None = None
    # The app that keeps the files a tech attaches in the browser sets both of these; one app at most,
    # and without one the desk refuses files (NO_UPLOADS). (files=): raise ValidationError naming
    # every limit the files exceed.
    uploads_check: Callable[..., None] | None = None
    # (event=, files=, by=) -> the stored files, kept on the timeline entry (and its ticket). Called
    # inside the transaction that wrote the entry; a ValidationError refuses the whole action.
    attachments_store: Callable[..., list] | None = None


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


def address_claim(*, email: str, customer: Customer) -> str | None:
    """Why ``email`` may not be a contact of ``customer`` (another customer owns it by an app's rule,
    such as a mail route), or None."""
    for extension in _extensions.values():
        if extension.address_claim:
            reason = extension.address_claim(email=email, customer=customer)
            if reason:
                return reason
    return None


NO_UPLOADS = "This desk has no app that keeps files, so none can be attached. Nothing was sent: your text is kept."


def _upload_keeper() -> DeskExtension | None:
    keepers = [e for e in _extensions.values() if e.attachments_store]
    if len(keepers) > 1:  # a programming error: which app's rows would the files be?
        raise RuntimeError(f"expected at most one app keeping uploaded files, found {len(keepers)}")
    return keepers[0] if keepers else None


def uploads_check(*, files: Sequence[UploadedFile]) -> None:
    """Raises ValidationError naming every limit ``files`` exceed (the form shows it on its files
    field). No files always pass; any file is refused with NO_UPLOADS when no app keeps uploads."""
    if not files:
        return
    keeper = _upload_keeper()
    if keeper is None:
        raise ValidationError(NO_UPLOADS, code="no_uploads")
    assert keeper.uploads_check is not None  # the app that keeps uploads sets both (DeskExtension)
    keeper.uploads_check(files=files)


def attachments_store(*, event: TicketEvent, files: Sequence[UploadedFile], by) -> list:
    """Keep ``files`` on ``event`` through the app that keeps uploads; [] for no files, and
    ValidationError (NO_UPLOADS) for any file when no app does."""
    if not files:
        return []
    keeper = _upload_keeper()
    if keeper is None:
        raise ValidationError(NO_UPLOADS, code="no_uploads")
    assert keeper.attachments_store is not None  # how _upload_keeper chose it
    return keeper.attachments_store(event=event, files=files, by=by)
