"""Writes from the queue: one change applied to many tickets at once, and saved views.

A bulk change goes through the desk's own ticket services one ticket at a time, so
each ticket gets its timeline entries, its new version and its webhooks exactly as if
a tech had made the change on the ticket page. Each ticket is its own transaction:
a ticket the workflow refuses keeps all of its fields (no half-applied change) and is
reported with the reason, and the others are still applied.

The queue page posts the version each ticket was at when it was rendered. A ticket that has
moved on since (checked under its row lock) is left as it is and reported with who changed
it, as the ticket page refuses a sidebar form posted from a stale page: the tech chose it
for what the queue showed, which is no longer what it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from triage import access, merging, selectors, services, workflow
from triage.models import SavedView, Status, Ticket

# "Leave the assignee as it is"; None means "nobody".
UNCHANGED = object()
# Each saved view costs the queue page one COUNT query; this bounds what a page load may cost.
SAVED_VIEW_LIMIT = 20


@dataclass
class BulkOutcome:
    """What a bulk change did: the tickets changed, those it left as they were, and those refused."""

    changed: list[str] = field(default_factory=list)  # references
    unchanged: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (reference, reason)
    # "#12 was changed by ada since you loaded the queue; not changed": one sentence per stale ticket.
    stale: list[str] = field(default_factory=list)
    merged_into: str = ""  # a merge: the survivor's reference (``changed`` lists the tickets merged into it)


def tickets_bulk_change(
    *,
    tickets: Iterable[Ticket],
    by,
    assignee=UNCHANGED,
    status: str = "",
    priority: int | None = None,
    add_tags: Iterable[str] = (),
    seen: dict[int, int] | None = None,
) -> BulkOutcome:
    """Apply the same change to each ticket: ``assignee`` (a tech, None for nobody, or UNCHANGED),
    ``status`` ("" leaves it), ``priority`` (None leaves it), ``add_tags`` (added to the tags each
    ticket has). ``seen``: {ticket id: the version the tech saw}; a ticket past it is not changed."""
    seen = seen or {}
    access.ticket_access(user=by, action="work")
    add_tags = sorted(set(add_tags))
    outcome = BulkOutcome()
    for ticket in sorted(tickets, key=lambda t: t.pk):
        try:
            changed = _change_one(
                ticket=ticket,
                by=by,
                assignee=assignee,
                status=status,
                priority=priority,
                add_tags=add_tags,
                seen=seen.get(ticket.pk),
            )
        except services.TicketChanged as exc:
            outcome.stale.append(_stale_sentence(ticket=ticket, seen=exc.seen))
        except workflow.TransitionRefused as exc:
            outcome.refused.append((ticket.reference, str(exc)))
        except ValidationError as exc:
            outcome.refused.append((ticket.reference, " ".join(exc.messages)))
        else:
            (outcome.changed if changed else outcome.unchanged).append(ticket.reference)
    return outcome


def _stale_sentence(*, ticket: Ticket, seen: int) -> str:
    changers = selectors.ticket_changers(selectors.ticket_changes_since(ticket=ticket, version=seen))
    by = f" by {', '.join(changers)}" if changers else ""
    return f"{ticket.reference} was changed{by} since you loaded the queue; not changed."


@transaction.atomic
def _change_one(
    *, ticket: Ticket, by, assignee, status: str, priority: int | None, add_tags: list[str], seen: int | None
) -> bool:
    """One ticket's share of a bulk change, all or nothing; True if anything about it changed.
    Raises TicketChanged, having changed nothing, when the ticket is no longer at ``seen``."""
    # Read under the row lock: the page the tech selected from may be older than the ticket.
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if seen is not None:
        ticket = services.ticket_check_version(ticket=ticket, expected_version=seen)
    version = ticket.version
    # A status it already has is no move and no refusal: "set all of these to Waiting" includes those waiting.
    if status and status != ticket.status:
        ticket = services.ticket_change_status(ticket=ticket, status=Status(status), by=by)
    if assignee is not UNCHANGED:
        ticket = services.ticket_assign(ticket=ticket, assignee=assignee, by=by)
    if priority is not None:
        ticket = services.ticket_change_priority(ticket=ticket, priority=priority, by=by)
    if add_tags:
        have = set(ticket.tags.values_list("name", flat=True))
        if not set(add_tags) <= have:
            ticket = services.ticket_set_tags(ticket=ticket, tag_names=sorted(have | set(add_tags)), by=by)
    return ticket.version != version


def tickets_bulk_merge(*, tickets: Iterable[Ticket], by, into: Ticket | None = None) -> BulkOutcome:
    """Merge the selected tickets into ``into``, or into the oldest of them (triage.merging).

    Each ticket that cannot be merged is reported with the reason and left as it was; the others
    are merged together in one transaction. A survivor that cannot take merges refuses them all."""
    access.ticket_access(user=by, action="work")
    tickets = sorted(tickets, key=lambda t: (t.created_at, t.pk))
    if into is None:
        into, tickets = tickets[0], tickets[1:]
    else:
        tickets = [t for t in tickets if t.pk != into.pk]
    outcome = BulkOutcome(merged_into=into.reference)
    has_merged = set(
        Ticket.objects.filter(merged_into__in=[t.pk for t in tickets]).values_list("merged_into", flat=True)
    )
    mergeable = []
    for ticket in sorted(tickets, key=lambda t: t.pk):
        refusal = merging.merge_refusal(source=ticket, into=into, has_merged=ticket.pk in has_merged)
        if refusal:
            outcome.refused.append((ticket.reference, refusal))
        else:
            mergeable.append(ticket)
    if mergeable:
        try:
            merging.tickets_merge(sources=mergeable, into=into, by=by)
        except ValidationError as exc:  # changed since the checks above (another tech was quicker)
            outcome.refused.extend((t.reference, " ".join(exc.messages)) for t in mergeable)
        else:
            outcome.changed = [t.reference for t in mergeable]
    return outcome


def saved_view_save(*, user, name: str, query: str) -> SavedView:
    """Save (or overwrite, by name) one of the user's views; ``query`` is already validated."""
    if (
        not SavedView.objects.filter(user=user, name=name).exists()
        and SavedView.objects.filter(user=user).count() >= SAVED_VIEW_LIMIT
    ):
        raise ValidationError(f"At most {SAVED_VIEW_LIMIT} saved views: delete one first.")
    view, _ = SavedView.objects.update_or_create(user=user, name=name, defaults={"query": query})
    return view


def saved_view_delete(*, user, view_id: int) -> None:
    """Delete one of the user's own views; another user's view is as good as absent."""
    SavedView.objects.filter(user=user, pk=view_id).delete()
