"""Reads for the desk: the queue, a ticket with its timeline, customers, servers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import BooleanField, Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from triage import access, sla
from triage.models import (
    OPEN_STATUSES,
    Contact,
    Customer,
    DraftKind,
    Server,
    Status,
    Ticket,
    TicketDraft,
    TicketEvent,
    TicketLink,
)
from triage.pagination import Key, Page, paginate

SORTS: dict[str, tuple[str, tuple[Key, ...]]] = {
    "due": ("Next SLA deadline", (Key("next_due_at", nullable=True), Key("id"))),
    "newest": ("Newest first", (Key("created_at", descending=True), Key("id", descending=True))),
    "oldest": ("Oldest first", (Key("created_at"), Key("id"))),
    "updated": ("Recently updated", (Key("updated_at", descending=True), Key("id", descending=True))),
    "priority": ("Priority", (Key("priority"), Key("created_at"), Key("id"))),
}
DEFAULT_SORT = "due"

# The stored document of migration 0005 on PostgreSQL (GIN index ticket_fulltext):
# to_tsvector('english', subject || ' ' || description), kept current by PostgreSQL.
TICKET_DOCUMENT_SQL = '"triage_ticket"."search_document"'
TICKET_NUMBER = re.compile(r"^#?(\d{1,12})$")


@dataclass
class QueueFilters:
    status: str = "open"  # "open", "all" or one Status value
    priority: int | None = None
    assignee: str = ""  # "", "me", "none" or a user id
    customer: int | None = None
    tag: str = ""
    at_risk: bool = False
    q: str = ""
    sort: str = DEFAULT_SORT
    cursor: str | None = None


def ticket_search(queryset: QuerySet, *, text: str) -> QuerySet:
    """Free-text search: PostgreSQL full text (indexed) or a substring match on SQLite.

    A bare ticket number ("#123" or "123") also finds that ticket.
    """
    text = text.strip()
    if not text:
        return queryset
    number = TICKET_NUMBER.match(text)
    if connection.vendor == "postgresql":
        # The search text is a bound parameter; only our constant expression is formatted in.
        matches = Q(
            RawSQL(  # noqa: S611
                f"{TICKET_DOCUMENT_SQL} @@ websearch_to_tsquery('english'::regconfig, %s)",
                [text],
                output_field=BooleanField(),
            )
        )
    else:
        matches = Q(subject__icontains=text) | Q(description__icontains=text)
    if number:
        matches |= Q(pk=int(number.group(1)))
    return queryset.filter(matches)


def ticket_queue(*, user, filters: QueueFilters, size: int, now: datetime | None = None) -> Page:
    qs = ticket_queue_matches(user=user, filters=filters, now=now).select_related("customer", "assignee")
    _, keys = SORTS.get(filters.sort, SORTS[DEFAULT_SORT])
    page = paginate(qs, keys=keys, cursor=filters.cursor, size=size)
    _attach_tags(page.items)
    return page


def ticket_queue_matches(*, user, filters: QueueFilters, now: datetime | None = None) -> QuerySet:
    """The tickets the queue's filters match, unordered (the queue pages them; a saved view counts them)."""
    access.ticket_access(user=user, action="view")
    now = now or timezone.now()
    qs = Ticket.objects.all()
    if filters.status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif filters.status != "all":
        qs = qs.filter(status=filters.status)
    if filters.priority:
        qs = qs.filter(priority=filters.priority)
    if filters.assignee == "me":
        qs = qs.filter(assignee=user)
    elif filters.assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif filters.assignee:
        qs = qs.filter(assignee_id=int(filters.assignee))
    if filters.customer:
        qs = qs.filter(customer_id=filters.customer)
    if filters.tag:
        qs = qs.filter(tags__name=filters.tag)
    if filters.at_risk:
        qs = qs.filter(next_due_at__lte=now + sla.at_risk_window())
    return ticket_search(qs, text=filters.q)


def _attach_tags(tickets: list[Ticket]) -> None:
    """One query for the tags of a whole page instead of one per row."""
    through = Ticket.tags.through
    names: dict[int, list[str]] = {t.pk: [] for t in tickets}
    for ticket_id, name in through.objects.filter(ticket_id__in=names).values_list("ticket_id", "tag__name"):
        names[ticket_id].append(name)
    for ticket in tickets:
        ticket.tag_names = sorted(names[ticket.pk])  # type: ignore[attr-defined]  # for the page, not a field


def ticket_detail(*, user, ticket_id: int) -> Ticket:
    access.ticket_access(user=user, action="view")
    return Ticket.objects.select_related(
        "customer__sla_tier__calendar", "assignee", "created_by", "merged_into", "requester"
    ).get(pk=ticket_id)


def ticket_timeline(*, ticket: Ticket) -> list[TicketEvent]:
    """The entries, each with the files attached to it in the desk (names and sizes; bytes stay behind).

    A ticket that others were merged into shows their entries too, in time order among its own,
    each with ``merged_from`` set to the ticket it was written on (None for the ticket's own)."""
    # The files are mailgate's Attachment rows; the reverse relation names their model without the
    # desk importing the mail app (tests/test_import_graph.py).
    attachment = TicketEvent._meta.get_field("attachments").related_model
    files = Prefetch("attachments", queryset=attachment._default_manager.defer("content").order_by("id"))
    ids = [ticket.pk, *Ticket.objects.filter(merged_into=ticket).values_list("pk", flat=True)]
    events = list(
        TicketEvent.objects.filter(ticket_id__in=ids)
        .select_related("actor")
        .prefetch_related(files)
        .order_by("created_at", "id")
    )
    for event in events:
        event.merged_from = event.ticket_id if event.ticket_id != ticket.pk else None  # type: ignore[attr-defined]  # for the page
    return events


def ticket_merged_tickets(*, ticket: Ticket) -> list[Ticket]:
    """The tickets merged into ``ticket``, by number."""
    return list(Ticket.objects.filter(merged_into=ticket).order_by("pk").only("pk", "subject"))


@dataclass
class Related:
    link: TicketLink
    ticket: Ticket


def ticket_related(*, user, ticket: Ticket) -> list[Related]:
    """The tickets related to ``ticket`` (links either way round), by number. Every staff role
    that may read this ticket may read any ticket (triage.access), so the same rule covers them."""
    access.ticket_access(user=user, action="view")
    links = list(TicketLink.objects.filter(Q(low=ticket) | Q(high=ticket)))
    others = Ticket.objects.in_bulk([link.other(ticket.pk) for link in links])
    rows = [Related(link, others[link.other(ticket.pk)]) for link in links]
    return sorted(rows, key=lambda row: row.ticket.pk)


def ticket_changes_since(*, ticket: Ticket, version: int) -> list[TicketEvent]:
    """The changes that took ``ticket`` past ``version``: what a stale form is told about."""
    return list(ticket.events.filter(version__gt=version).select_related("actor").order_by("version", "id"))


def ticket_changers(changes: list[TicketEvent]) -> list[str]:
    """Who made ``changes`` (from ticket_changes_since), each named once in order, as the conflict
    message names them: a username, or "the customer (e-mail)" for a reply that came by mail."""
    names: list[str] = []
    for event in changes:
        if event.actor is not None:
            name = event.actor.get_username()
        elif event.data.get("via") == "email":
            name = "the customer (e-mail)"
        else:
            continue
        if name not in names:
            names.append(name)
    return names


@dataclass
class Composer:
    """One of a user's composers on a ticket: their unsent draft, and the id of the last entry of
    that kind they sent (autosaves say which they had seen; see services.draft_save)."""

    kind: str
    draft: TicketDraft | None
    last_sent: int


def ticket_composers(*, user, ticket: Ticket) -> dict[str, Composer]:
    """{kind: Composer} for ``user`` on ``ticket``: only the user's own drafts, never another tech's."""
    drafts = {d.kind: d for d in TicketDraft.objects.filter(user=user, ticket=ticket)}
    sent = dict(
        ticket.events.filter(actor=user, kind__in=DraftKind.values)
        .order_by()
        .values_list("kind")
        .annotate(last=Max("id"))
    )
    return {kind: Composer(kind=kind, draft=drafts.get(kind), last_sent=sent.get(kind, 0)) for kind in DraftKind.values}


def assignable_users() -> QuerySet:
    User = get_user_model()
    return (
        User.objects.filter(is_active=True)
        .filter(Q(groups__name__in=(access.TECH, access.ADMIN)) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


def customer_list(*, user) -> QuerySet:
    access.customer_access(user=user, action="view")
    # The first contact's address, as Customer.first_contact picks it (Contact's ordering).
    first_contact = (
        Contact.objects.filter(customer=OuterRef("pk")).order_by(*(Contact._meta.ordering or ())).values("email")[:1]
    )
    return (
        Customer.objects.select_related("sla_tier")
        .annotate(
            server_count=Count("servers", distinct=True),
            first_contact_email=Subquery(first_contact),
        )
        .order_by("name")
    )


def customer_open_ticket_counts() -> dict[int, int]:
    rows = Ticket.objects.filter(status__in=OPEN_STATUSES).values("customer_id").annotate(n=Count("id"))
    return {row["customer_id"]: row["n"] for row in rows}


def customer_detail(*, user, customer_id: int) -> Customer:
    access.customer_access(user=user, action="view")
    return Customer.objects.select_related("sla_tier__calendar").get(pk=customer_id)


def customer_contacts(*, customer: Customer) -> list[Contact]:
    """The customer's contacts, the first (main) one first, each with how many open tickets name them."""
    return list(
        customer.contacts.annotate(
            open_requested=Count(
                "requested_tickets", filter=Q(requested_tickets__status__in=OPEN_STATUSES), distinct=True
            ),
        )
    )


def ticket_people(*, ticket: Ticket) -> tuple[Contact | None, list[Contact]]:
    """The ticket's requester and its CCs (by address)."""
    return ticket.requester, list(ticket.ccs.order_by("email"))


def customer_recent_tickets(*, customer: Customer, limit: int = 20) -> list[Ticket]:
    return list(customer.tickets.select_related("assignee").order_by("-created_at", "-id")[:limit])


def server_detail(*, user, server_id: int) -> Server:
    access.server_access(user=user, action="view")
    return Server.objects.select_related("customer").prefetch_related("roles").get(pk=server_id)


def server_recent_tickets(*, server: Server, limit: int = 20) -> list[Ticket]:
    return list(server.tickets.select_related("assignee").order_by("-created_at", "-id")[:limit])


def desk_overview(*, user, now: datetime | None = None) -> dict:
    """Backlog figures for the managers' overview (full dashboards come with plotly charts)."""
    access.dashboard_access(user=user)
    now = now or timezone.now()
    open_tickets = Ticket.objects.filter(status__in=OPEN_STATUSES)
    by_status = dict(open_tickets.values_list("status").annotate(n=Count("id")))
    by_priority = dict(open_tickets.values_list("priority").annotate(n=Count("id")))
    return {
        # (label, count, the queue's query string that lists them): every count opens its queue.
        "by_status": [(Status(s).label, by_status.get(s, 0), f"status={s}") for s in OPEN_STATUSES],
        "by_priority": [(f"P{p}", by_priority.get(p, 0), f"status=open&priority={p}") for p in (1, 2, 3, 4)],
        "at_risk": open_tickets.filter(next_due_at__lte=now + sla.at_risk_window()).count(),
        "breached": open_tickets.filter(next_due_at__lte=now).count(),
        "unassigned": open_tickets.filter(assignee__isnull=True).count(),
    }


def customer_choices() -> list[tuple[int, str]]:
    """Every customer as (pk, name), by name: the options of customer pickers."""
    return list(Customer.objects.order_by("name").values_list("pk", "name"))
