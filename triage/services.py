"""Writes to the desk. Every change to a ticket goes through here and leaves a
timeline entry; ticket rows are locked while they change so two techs acting
at once cannot lose each other's update.

Each change also moves the ticket's version on by one and records the version on
its timeline entry. A form posts the version it was rendered at as
``expected_version``: when the ticket has moved on since, the change is refused
with TicketChanged (checked under the row lock), so a tech working from a stale
page is told what changed instead of silently undoing it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import normalize_newlines

from triage import access, events, sla, workflow
from triage.models import (
    OPEN_STATUSES,
    BusinessCalendar,
    Contact,
    Customer,
    EventKind,
    Priority,
    Server,
    ServerRole,
    SlaTarget,
    SlaTier,
    Status,
    Tag,
    Ticket,
    TicketDraft,
    TicketEvent,
)

# Entries the machine writes on its own (the SLA clock, a run's progress, a verify run's verdict)
# do not move the version: they change nothing a tech's form could overwrite, and a page would
# otherwise go stale every time a collection finished. The same kinds written by a person do.
MACHINE_RECORDS = frozenset({EventKind.SLA, EventKind.COLLECTION, EventKind.FIX})
# Copies on one ticket: with the requester, every public reply's recipients (mailgate.selectors.MAX_RECIPIENTS).
MAX_CCS = 9


class TicketChanged(Exception):
    """The ticket changed after the form was rendered: ``seen`` is the version it showed."""

    def __init__(self, *, seen: int, current: int):
        super().__init__(f"The ticket changed since version {seen} (now {current}).")
        self.seen = seen
        self.current = current


def _event(
    *,
    ticket: Ticket,
    kind: str,
    actor=None,
    body: str = "",
    data: dict | None = None,
    at: datetime,
    version: int | None = None,
) -> TicketEvent:
    """The one writer of timeline entries: the row, then its publication on the desk's event bus
    (webhooks, mail: see triage.events), both in the caller's transaction."""
    event = TicketEvent.objects.create(
        ticket=ticket, kind=kind, actor=actor, body=body, data=data or {}, created_at=at, version=version
    )
    events.ticket_event_recorded(event)
    return event


def ticket_record_event(
    *, ticket: Ticket, kind: str, actor=None, body: str = "", data: dict | None = None, now: datetime | None = None
) -> TicketEvent:
    """Append an entry written by another part of the product (collections, fixes, mail) to the timeline."""
    now = now or timezone.now()
    if actor is None and kind in MACHINE_RECORDS:
        Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
        return _event(ticket=ticket, kind=kind, body=body, data=data, at=now)
    with transaction.atomic():
        # The UPDATE takes the row lock, so the version read back is the one this entry made.
        Ticket.objects.filter(pk=ticket.pk).update(updated_at=now, version=F("version") + 1)
        version = Ticket.objects.values_list("version", flat=True).get(pk=ticket.pk)
        return _event(ticket=ticket, kind=kind, actor=actor, body=body, data=data, at=now, version=version)


def _locked(ticket: Ticket, *, expected_version: int | None = None) -> Ticket:
    """The ticket's row, locked for this transaction; refused if it is no longer at ``expected_version``."""
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    check_not_merged(locked)
    if expected_version is not None and locked.version != expected_version:
        raise TicketChanged(seen=expected_version, current=locked.version)
    return locked


def ticket_check_version(*, ticket: Ticket, expected_version: int) -> Ticket:
    """Lock the ticket's row for the caller's transaction and refuse (TicketChanged) if it is no longer
    at ``expected_version``. For a caller that makes several changes as one (the API's PATCH): each of
    them moves the version on, so only the first could be given ``expected_version``."""
    return _locked(ticket, expected_version=expected_version)


def check_not_merged(ticket: Ticket) -> None:
    """A merged ticket takes no more changes: its work goes on on the ticket it was merged into."""
    if ticket.merged_into_id is not None:
        raise ValidationError(
            f"{ticket.reference} was merged into #{ticket.merged_into_id}: work on #{ticket.merged_into_id} instead."
        )


def _changed(ticket: Ticket, *, now: datetime) -> None:
    """Mark a locked ticket changed (saved by the caller): a new version, a new updated_at."""
    ticket.version += 1
    ticket.updated_at = now


def _refresh_sla(ticket: Ticket) -> None:
    """Recompute stored deadlines from the customer's tier (its targets and clock), the priority and pauses."""
    # Read afresh: a customer object held since before an admin changed the tier's clock has a stale copy.
    tier = SlaTier.objects.select_related("calendar").get(pk=ticket.customer.sla_tier_id)
    target = tier.target_for(ticket.priority)
    ticket.first_response_due, ticket.resolution_due = ticket.sla_deadlines(target=target, schedule=tier.schedule())
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


def _check_people(*, customer: Customer, requester: Contact | None, ccs: Iterable[Contact]) -> list[Contact]:
    """The CCs as a list, once each and without the requester; refused unless all are the customer's contacts."""
    ccs = list({c.pk: c for c in ccs if requester is None or c.pk != requester.pk}.values())
    errors = {}
    if requester is not None and requester.customer_id != customer.pk:
        errors["requester"] = f"{requester.email} is not a contact of {customer.name}."
    foreign = [c.email for c in ccs if c.customer_id != customer.pk]
    if foreign:
        errors["ccs"] = f"Not contacts of {customer.name}: {', '.join(foreign)}."
    elif len(ccs) > MAX_CCS:
        errors["ccs"] = f"At most {MAX_CCS} people in copy."
    if errors:
        raise ValidationError(errors)
    return sorted(ccs, key=lambda c: c.email)


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
    requester: Contact | None = None,
    ccs: Iterable[Contact] = (),
    now: datetime | None = None,
) -> Ticket:
    now = now or timezone.now()
    servers = _check_servers(customer=customer, servers=servers)
    ccs = _check_people(customer=customer, requester=requester, ccs=ccs)
    _check_assignee(assignee)
    ticket = Ticket(
        subject=subject.strip(),
        description=description,
        customer=customer,
        priority=priority,
        created_by=created_by,
        assignee=assignee,
        requester=requester,
        created_at=now,
        updated_at=now,
    )
    _refresh_sla(ticket)
    ticket.full_clean()
    ticket.save()
    ticket.servers.set(servers)
    ticket.tags.set(tags_from_names(tag_names))
    ticket.ccs.set(ccs)
    data = {"priority": priority, "customer": customer.name}
    if requester is not None or ccs:
        data.update(requester=requester.email if requester else None, ccs=[c.email for c in ccs])
    _event(
        ticket=ticket,
        kind=EventKind.CREATED,
        actor=created_by,
        body=description,
        at=now,
        data=data,
        version=ticket.version,
    )
    if assignee is not None:
        _event(
            ticket=ticket,
            kind=EventKind.ASSIGNMENT,
            actor=created_by,
            at=now,
            data={"from": None, "to": assignee.get_username()},
            version=ticket.version,
        )
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
    _changed(ticket, now=now)
    ticket.save(update_fields=["first_response_at", "next_due_at", "updated_at", "version"])
    event = _event(ticket=ticket, kind=EventKind.REPLY, actor=author, body=body, at=now, version=ticket.version)
    if target is not None:
        ticket_change_status(
            ticket=ticket, status=target, by=author, now=now, note="" if status else "First public reply."
        )
    return event


@transaction.atomic
def ticket_add_note(*, ticket: Ticket, author, body: str, now: datetime | None = None) -> TicketEvent:
    now = now or timezone.now()
    ticket = _locked(ticket)
    _changed(ticket, now=now)
    ticket.save(update_fields=["updated_at", "version"])
    return _event(ticket=ticket, kind=EventKind.NOTE, actor=author, body=body, at=now, version=ticket.version)


@transaction.atomic
def ticket_assign(
    *, ticket: Ticket, assignee, by, now: datetime | None = None, expected_version: int | None = None
) -> Ticket:
    now = now or timezone.now()
    _check_assignee(assignee)
    ticket = _locked(ticket, expected_version=expected_version)
    if ticket.assignee_id == (assignee.pk if assignee else None):
        return ticket
    before = ticket.assignee.get_username() if ticket.assignee else None
    ticket.assignee = assignee
    _changed(ticket, now=now)
    ticket.save(update_fields=["assignee", "updated_at", "version"])
    _event(
        ticket=ticket,
        kind=EventKind.ASSIGNMENT,
        actor=by,
        at=now,
        version=ticket.version,
        data={"from": before, "to": assignee.get_username() if assignee else None},
    )
    return ticket


@transaction.atomic
def ticket_change_status(
    *,
    ticket: Ticket,
    status: str,
    by,
    note: str = "",
    now: datetime | None = None,
    expected_version: int | None = None,
) -> Ticket:
    """Move the ticket along the workflow; raises workflow.TransitionRefused."""
    now = now or timezone.now()
    ticket = _locked(ticket, expected_version=expected_version)
    workflow.check_transition(current=ticket.status, target=status)
    return status_apply_locked(ticket=ticket, status=status, by=by, note=note, now=now)


def status_apply_locked(
    *, ticket: Ticket, status: str, by, note: str = "", now: datetime, data: dict | None = None
) -> Ticket:
    """Move a ticket the caller holds locked to ``status``, the move already checked against the
    workflow (ticket_change_status; a merge's own rule, triage.merging). ``data`` joins the entry's."""
    current = ticket.status
    if current == Status.WAITING and ticket.waiting_since is not None:
        # Time spent waiting on the customer does not count against the resolution SLA; on a business-hours
        # tier only the working time in the wait is given back (a weekend of waiting costs the clock nothing).
        tier = SlaTier.objects.select_related("calendar").get(pk=ticket.customer.sla_tier_id)
        waited = sla.clock_time_between(start=ticket.waiting_since, end=now, schedule=tier.schedule())
        ticket.paused_seconds += int(waited.total_seconds())
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
    _changed(ticket, now=now)
    _refresh_sla(ticket)
    ticket.save()
    _event(
        ticket=ticket,
        kind=EventKind.STATUS,
        actor=by,
        body=note,
        at=now,
        version=ticket.version,
        data={
            "from": current,
            "to": status,
            "reopened": workflow.is_reopening(current=current, target=status),
            **(data or {}),
        },
    )
    return ticket


@transaction.atomic
def ticket_change_priority(
    *, ticket: Ticket, priority: int, by, now: datetime | None = None, expected_version: int | None = None
) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket, expected_version=expected_version)
    if ticket.priority == priority:
        return ticket
    before = ticket.priority
    ticket.priority = priority
    _changed(ticket, now=now)
    _refresh_sla(ticket)
    ticket.save()
    _event(
        ticket=ticket,
        kind=EventKind.PRIORITY,
        actor=by,
        at=now,
        version=ticket.version,
        data={"from": before, "to": priority},
    )
    return ticket


@transaction.atomic
def ticket_set_tags(
    *, ticket: Ticket, tag_names: Iterable[str], by, now: datetime | None = None, expected_version: int | None = None
) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket, expected_version=expected_version)
    before = sorted(ticket.tags.values_list("name", flat=True))
    tags = tags_from_names(tag_names)
    after = [t.name for t in tags]
    if before == after:
        return ticket
    ticket.tags.set(tags)
    _changed(ticket, now=now)
    ticket.save(update_fields=["updated_at", "version"])
    _event(
        ticket=ticket, kind=EventKind.TAGS, actor=by, at=now, version=ticket.version, data={"from": before, "to": after}
    )
    return ticket


@transaction.atomic
def ticket_set_servers(
    *, ticket: Ticket, servers: Iterable[Server], by, now: datetime | None = None, expected_version: int | None = None
) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket, expected_version=expected_version)
    servers = _check_servers(customer=ticket.customer, servers=servers)
    before = sorted(ticket.servers.values_list("name", flat=True))
    after = sorted(s.name for s in servers)
    if before == after:
        return ticket
    ticket.servers.set(servers)
    _changed(ticket, now=now)
    ticket.save(update_fields=["updated_at", "version"])
    _event(
        ticket=ticket,
        kind=EventKind.SERVERS,
        actor=by,
        at=now,
        version=ticket.version,
        data={"from": before, "to": after},
    )
    return ticket


@transaction.atomic
def ticket_set_people(
    *,
    ticket: Ticket,
    requester: Contact | None,
    ccs: Iterable[Contact],
    by,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> Ticket:
    """Who the ticket is for and who is copied: contacts of its customer (public replies are mailed
    to them, see mailgate.selectors.ticket_correspondents)."""
    now = now or timezone.now()
    ticket = _locked(ticket, expected_version=expected_version)
    ccs = _check_people(customer=ticket.customer, requester=requester, ccs=ccs)
    before_requester = ticket.requester.email if ticket.requester is not None else None
    before_ccs = sorted(ticket.ccs.values_list("email", flat=True))
    after_requester = requester.email if requester else None
    after_ccs = [c.email for c in ccs]
    if (before_requester, before_ccs) == (after_requester, after_ccs):
        return ticket
    ticket.requester = requester
    ticket.ccs.set(ccs)
    _changed(ticket, now=now)
    ticket.save(update_fields=["requester", "updated_at", "version"])
    _event(
        ticket=ticket,
        kind=EventKind.PEOPLE,
        actor=by,
        at=now,
        version=ticket.version,
        data={
            "requester": {"from": before_requester, "to": after_requester},
            "ccs": {"from": before_ccs, "to": after_ccs},
        },
    )
    return ticket


# --- Composer drafts ---------------------------------------------------------------


@transaction.atomic
def draft_save(
    *, user, ticket: Ticket, kind: str, body: str, last_sent: int = 0, now: datetime | None = None
) -> TicketDraft | None:
    """Keep what ``user`` has typed in ``ticket``'s ``kind`` composer; a blank body discards the draft.

    ``last_sent`` is the id of the user's latest entry of this kind when the composer was rendered.
    A later one means the text was sent since (an autosave still in flight when Send was pressed):
    the save is ignored, so the draft just sent does not come back.
    """
    now = now or timezone.now()
    body = normalize_newlines(body)  # browsers post a textarea's line breaks as CRLF; drafts keep LF
    sent = TicketEvent.objects.filter(ticket=ticket, actor=user, kind=kind, pk__gt=last_sent).exists()
    if sent:
        return None
    if not body.strip():
        draft_discard(user=user, ticket=ticket, kind=kind)
        return None
    draft, _ = TicketDraft.objects.update_or_create(
        user=user, ticket=ticket, kind=kind, defaults={"body": body, "updated_at": now}
    )
    return draft


def draft_discard(*, user, ticket: Ticket, kind: str) -> None:
    TicketDraft.objects.filter(user=user, ticket=ticket, kind=kind).delete()


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
                _event(
                    ticket=Ticket(pk=pk),
                    kind=EventKind.SLA,
                    at=now,
                    body="First-response target missed.",
                    data={"target": "first_response", "due": due.isoformat()},
                )
                flagged += 1
    resolution_late = open_tickets.filter(resolution_breached=False, resolution_due__lte=now).values_list(
        "pk", "resolution_due"
    )
    for pk, due in resolution_late:
        with transaction.atomic():
            if Ticket.objects.filter(pk=pk, resolution_breached=False).update(resolution_breached=True):
                _event(
                    ticket=Ticket(pk=pk),
                    kind=EventKind.SLA,
                    at=now,
                    body="Resolution target missed.",
                    data={"target": "resolution", "due": due.isoformat()},
                )
                flagged += 1
    return flagged


# --- Servers ----------------------------------------------------------------------


@transaction.atomic
def server_save(*, server: Server, role_names: Iterable[str]) -> Server:
    """Save ``server`` (new or changed) with exactly these roles, creating a role the first time it is named.
    ``role_names`` are normalised already (triage.forms.parse_tag_names)."""
    server.save()
    server.roles.set([ServerRole.objects.get_or_create(name=name)[0] for name in role_names])
    return server


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


def _refresh_open_tickets(*, tiers: Iterable[SlaTier]) -> int:
    """Recompute the deadlines of open tickets on these tiers after their clock changed; returns how many.

    One locking read and batched updates, however many tickets the tiers have open. Pauses already
    measured stay as they were measured (on the clock in force at the time).
    """
    tier_ids = [tier.pk for tier in tiers]
    schedules = {t.pk: t.schedule() for t in SlaTier.objects.select_related("calendar").filter(pk__in=tier_ids)}
    targets = {(t.tier_id, t.priority): t for t in SlaTarget.objects.filter(tier__in=tier_ids)}
    tickets = list(
        Ticket.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(customer__sla_tier__in=tier_ids, status__in=OPEN_STATUSES)
    )
    for ticket in tickets:
        tier_id = ticket.customer.sla_tier_id
        ticket.first_response_due, ticket.resolution_due = ticket.sla_deadlines(
            target=targets[(tier_id, ticket.priority)], schedule=schedules[tier_id]
        )
        ticket.next_due_at = ticket.compute_next_due()
    Ticket.objects.bulk_update(tickets, ["first_response_due", "resolution_due", "next_due_at"], batch_size=500)
    return len(tickets)


@transaction.atomic
def business_calendar_save(
    *, calendar: BusinessCalendar | None, name: str, time_zone: str, weekly_hours: dict, holidays: list
) -> BusinessCalendar:
    """Create or change a calendar; open tickets on tiers that use it get deadlines on the new hours."""
    calendar = calendar or BusinessCalendar()
    calendar.name, calendar.time_zone = name.strip(), time_zone.strip()
    calendar.weekly_hours, calendar.holidays = weekly_hours, holidays
    calendar.full_clean()
    calendar.save()
    if calendar.tiers.exists():
        _refresh_open_tickets(tiers=calendar.tiers.all())
    return calendar


@transaction.atomic
def sla_tier_set_calendar(*, tier: SlaTier, calendar: BusinessCalendar | None) -> SlaTier:
    """Put a tier on a business calendar (None: 24x7); its open tickets' deadlines follow at once."""
    tier = SlaTier.objects.select_for_update().get(pk=tier.pk)
    if tier.calendar_id == (calendar.pk if calendar else None):
        return tier
    tier.calendar = calendar
    tier.save(update_fields=["calendar"])
    _refresh_open_tickets(tiers=[tier])
    return tier
