"""Writes to the desk. Every change to a ticket goes through here and leaves a
timeline entry; ticket rows are locked while they change so two techs acting
at once cannot lose each other's update."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from triage import access, workflow
from triage.models import (
    Customer,
    EventKind,
    Priority,
    Server,
    SlaTier,
    Status,
    Tag,
    Ticket,
    TicketEvent,
)


def _event(*, ticket: Ticket, kind: str, actor=None, body: str = "", data: dict | None = None, at: datetime):
    return TicketEvent.objects.create(
        ticket=ticket, kind=kind, actor=actor, body=body, data=data or {}, created_at=at
    )


def ticket_record_event(
    *, ticket: Ticket, kind: str, actor=None, body: str = "", data: dict | None = None, now: datetime | None = None
) -> TicketEvent:
    """Append an entry written by another part of the product (collections, fixes) to the timeline."""
    now = now or timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
    return _event(ticket=ticket, kind=kind, actor=actor, body=body, data=data, at=now)


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _refresh_sla(ticket: Ticket) -> None:
    """Recompute stored deadlines from the customer's tier, the priority and pauses."""
    target = ticket.customer.sla_tier.target_for(ticket.priority)
    ticket.first_response_due, ticket.resolution_due = ticket.sla_deadlines(target=target)
    ticket.next_due_at = ticket.compute_next_due()


def _check_assignee(assignee) -> None:
    if assignee is not None and not access.can_work_tickets(assignee):
        raise ValidationError({"assignee": "Tickets can only be assigned to techs or admins."})


def _check_servers(*, customer: Customer, servers: Iterable[Server]) -> list[Server]:
    servers = list(servers)
    foreign = [s.name for s in servers if s.customer_id != customer.pk]
    if foreign:
        raise ValidationError({"servers": f"Not servers of {customer.name}: {', '.join(foreign)}."})
    return servers


def tags_from_names(names: Iterable[str]) -> list[Tag]:
    """Existing or new tags for the given (already validated) names."""
    return [Tag.objects.get_or_create(name=name)[0] for name in sorted(set(names))]


@transaction.atomic
def ticket_create(
    *,
    subject: str,
    description: str,
    customer: Customer,
    priority: int = Priority.P3,
    servers: Iterable[Server] = (),
    tag_names: Iterable[str] = (),
    created_by=None,
    assignee=None,
    now: datetime | None = None,
) -> Ticket:
    now = now or timezone.now()
    servers = _check_servers(customer=customer, servers=servers)
    _check_assignee(assignee)
    ticket = Ticket(
        subject=subject.strip(),
        description=description,
        customer=customer,
        priority=priority,
        created_by=created_by,
        assignee=assignee,
        created_at=now,
        updated_at=now,
    )
    _refresh_sla(ticket)
    ticket.full_clean()
    ticket.save()
    ticket.servers.set(servers)
    ticket.tags.set(tags_from_names(tag_names))
    _event(ticket=ticket, kind=EventKind.CREATED, actor=created_by, body=description, at=now,
           data={"priority": priority, "customer": customer.name})
    if assignee is not None:
        _event(ticket=ticket, kind=EventKind.ASSIGNMENT, actor=created_by, at=now,
               data={"from": None, "to": assignee.get_username()})
    return ticket


@transaction.atomic
def ticket_reply(
    *, ticket: Ticket, author, body: str, status: str | None = None, now: datetime | None = None
) -> TicketEvent:
    """A public reply to the customer; the first one stops the first-response clock.

    ``status``: set in the same step ("Send and set …"); a transition the workflow refuses
    raises workflow.TransitionRefused and nothing is written, the reply included. Without
    one, a reply to a new ticket moves it to triaging (workflow.REPLY_MOVES).
    """
    now = now or timezone.now()
    ticket = _locked(ticket)
    target = status or workflow.REPLY_MOVES.get(ticket.status)
    if target is not None:
        workflow.check_transition(current=ticket.status, target=target)
    if ticket.first_response_at is None:
        ticket.first_response_at = now
        ticket.next_due_at = ticket.compute_next_due()
    ticket.updated_at = now
    ticket.save(update_fields=["first_response_at", "next_due_at", "updated_at"])
    event = _event(ticket=ticket, kind=EventKind.REPLY, actor=author, body=body, at=now)
    if target is not None:
        ticket_change_status(ticket=ticket, status=target, by=author, now=now,
                             note="" if status else "First public reply.")
    return event


@transaction.atomic
def ticket_add_note(*, ticket: Ticket, author, body: str, now: datetime | None = None) -> TicketEvent:
    now = now or timezone.now()
    ticket = _locked(ticket)
    ticket.updated_at = now
    ticket.save(update_fields=["updated_at"])
    return _event(ticket=ticket, kind=EventKind.NOTE, actor=author, body=body, at=now)


@transaction.atomic
def ticket_assign(*, ticket: Ticket, assignee, by, now: datetime | None = None) -> Ticket:
    now = now or timezone.now()
    _check_assignee(assignee)
    ticket = _locked(ticket)
    if ticket.assignee_id == (assignee.pk if assignee else None):
        return ticket
    before = ticket.assignee.get_username() if ticket.assignee else None
    ticket.assignee = assignee
    ticket.updated_at = now
    ticket.save(update_fields=["assignee", "updated_at"])
    _event(ticket=ticket, kind=EventKind.ASSIGNMENT, actor=by, at=now,
           data={"from": before, "to": assignee.get_username() if assignee else None})
    return ticket


@transaction.atomic
def ticket_change_status(
    *, ticket: Ticket, status: str, by, note: str = "", now: datetime | None = None
) -> Ticket:
    """Move the ticket along the workflow; raises workflow.TransitionRefused."""
    now = now or timezone.now()
    ticket = _locked(ticket)
    current = ticket.status
    workflow.check_transition(current=current, target=status)

    if current == Status.WAITING and ticket.waiting_since is not None:
        # Time spent waiting on the customer does not count against the resolution SLA.
        ticket.paused_seconds += int((now - ticket.waiting_since).total_seconds())
        ticket.waiting_since = None
    if status == Status.WAITING:
        ticket.waiting_since = now
    if status == Status.RESOLVED:
        ticket.resolved_at = now
    if status == Status.CLOSED:
        ticket.closed_at = now
    if workflow.is_reopening(current=current, target=status):
        ticket.resolved_at = None
        ticket.closed_at = None

    ticket.status = status
    ticket.updated_at = now
    _refresh_sla(ticket)
    ticket.save()
    _event(ticket=ticket, kind=EventKind.STATUS, actor=by, body=note, at=now,
           data={"from": current, "to": status, "reopened": workflow.is_reopening(current=current, target=status)})
    return ticket


@transaction.atomic
def ticket_change_priority(*, ticket: Ticket, priority: int, by, now: datetime | None = None) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket)
    if ticket.priority == priority:
        return ticket
    before = ticket.priority
    ticket.priority = priority
    ticket.updated_at = now
    _refresh_sla(ticket)
    ticket.save()
    _event(ticket=ticket, kind=EventKind.PRIORITY, actor=by, at=now, data={"from": before, "to": priority})
    return ticket


@transaction.atomic
def ticket_set_tags(*, ticket: Ticket, tag_names: Iterable[str], by, now: datetime | None = None) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket)
    before = sorted(ticket.tags.values_list("name", flat=True))
    tags = tags_from_names(tag_names)
    after = [t.name for t in tags]
    if before == after:
        return ticket
    ticket.tags.set(tags)
    ticket.updated_at = now
    ticket.save(update_fields=["updated_at"])
    _event(ticket=ticket, kind=EventKind.TAGS, actor=by, at=now, data={"from": before, "to": after})
    return ticket


@transaction.atomic
def ticket_set_servers(*, ticket: Ticket, servers: Iterable[Server], by, now: datetime | None = None) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket)
    servers = _check_servers(customer=ticket.customer, servers=servers)
    before = sorted(ticket.servers.values_list("name", flat=True))
    after = sorted(s.name for s in servers)
    if before == after:
        return ticket
    ticket.servers.set(servers)
    ticket.updated_at = now
    ticket.save(update_fields=["updated_at"])
    _event(ticket=ticket, kind=EventKind.SERVERS, actor=by, at=now, data={"from": before, "to": after})
    return ticket


def flag_sla_breaches(*, now: datetime | None = None) -> int:
    """Record each SLA breach once on its ticket's timeline; returns how many were new.

    Claimed with a conditional UPDATE per ticket, so two sweepers running at once
    (or a re-delivered task) never record the same breach twice.
    """
    now = now or timezone.now()
    flagged = 0
    open_tickets = Ticket.objects.filter(status__in=(Status.NEW, Status.TRIAGING))
    first_response_late = open_tickets.filter(
        first_response_breached=False, first_response_at__isnull=True, first_response_due__lte=now
    ).values_list("pk", "first_response_due")
    for pk, due in first_response_late:
        with transaction.atomic():
            if Ticket.objects.filter(pk=pk, first_response_breached=False).update(first_response_breached=True):
                _event(ticket=Ticket(pk=pk), kind=EventKind.SLA, at=now,
                       body="First-response target missed.", data={"target": "first_response", "due": due.isoformat()})
                flagged += 1
    resolution_late = open_tickets.filter(resolution_breached=False, resolution_due__lte=now).values_list(
        "pk", "resolution_due"
    )
    for pk, due in resolution_late:
        with transaction.atomic():
            if Ticket.objects.filter(pk=pk, resolution_breached=False).update(resolution_breached=True):
                _event(ticket=Ticket(pk=pk), kind=EventKind.SLA, at=now,
                       body="Resolution target missed.", data={"target": "resolution", "due": due.isoformat()})
                flagged += 1
    return flagged


# --- Roles and users ----------------------------------------------------------

def roles_ensure() -> list[Group]:
    return [Group.objects.get_or_create(name=name)[0] for name in access.ROLES]


@transaction.atomic
def user_set_roles(*, user, roles: Iterable[str]) -> None:
    unknown = set(roles) - set(access.ROLES)
    if unknown:
        raise ValidationError(f"Unknown roles: {', '.join(sorted(unknown))}")
    groups = roles_ensure()
    user.groups.remove(*groups)
    user.groups.add(*[g for g in groups if g.name in set(roles)])
    user.__dict__.pop("_triage_roles", None)


# --- Customers and SLA tiers ----------------------------------------------------

DEFAULT_TIERS = {
    # name: {priority: (first response minutes, resolution minutes)}
    "Platinum": {1: (15, 4 * 60), 2: (30, 8 * 60), 3: (2 * 60, 24 * 60), 4: (4 * 60, 72 * 60)},
    "Gold": {1: (30, 8 * 60), 2: (60, 24 * 60), 3: (4 * 60, 48 * 60), 4: (8 * 60, 120 * 60)},
    "Standard": {1: (60, 24 * 60), 2: (4 * 60, 48 * 60), 3: (8 * 60, 120 * 60), 4: (24 * 60, 240 * 60)},
}


@transaction.atomic
def sla_tiers_ensure() -> list[SlaTier]:
    tiers = []
    for name, targets in DEFAULT_TIERS.items():
        tier, _ = SlaTier.objects.get_or_create(name=name)
        for priority, (first, resolution) in targets.items():
            tier.targets.get_or_create(
                priority=priority, defaults={"first_response_minutes": first, "resolution_minutes": resolution}
            )
        tiers.append(tier)
    return tiers
