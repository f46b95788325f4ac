"""Reads of the mail gateway."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from mailgate import parsing
from mailgate.models import HELD_OUTCOMES, Attachment, InboundMessage, Mailbox, MailRoute, Outcome, RouteKind
from triage import access
from triage.models import Contact, Customer, Ticket
from triage.services import MAX_CCS

# A reply's addressee and copies, at most this many: a long-lived thread must not turn into a mailing list.
# The desk lets a ticket copy no more contacts than fit (triage.services.MAX_CCS).
MAX_RECIPIENTS = 1 + MAX_CCS


def ticket_attachments(*, ticket: Ticket) -> list[Attachment]:
    """The ticket's mail attachments without their bytes (files attached in the desk are shown on their entry),
    and those of the tickets merged into it (their mail is part of its conversation)."""
    return list(
        Attachment.objects.filter(Q(ticket=ticket) | Q(ticket__merged_into=ticket), message__isnull=False)
        .defer("content")
        .select_related("message")
        .order_by("message__received_at", "id")
    )


def attachment_for_download(*, user, attachment_id: int) -> Attachment:
    """Raises PermissionDenied for users who may not read tickets, DoesNotExist for unknown or orphaned ones."""
    access.ticket_access(user=user, action="view")
    return Attachment.objects.get(pk=attachment_id, ticket__isnull=False)


def customer_routes(*, customer: Customer) -> QuerySet[MailRoute]:
    return MailRoute.objects.filter(customer=customer).order_by("kind", "value")


# --- Held mail and routes (the Held mail and Mail routes pages) ------------------

# The page shows this much of each body; the rest is on the ticket once filed.
PREVIEW_CHARS = 2000
# Parsing is the cost of a preview: a message larger than this (attachments, mostly) is not parsed for
# the list, so 50 big messages cannot make the page slow. Filing it still parses it whole.
PREVIEW_MAX_RAW = 2 * 1024 * 1024


@dataclass(frozen=True)
class HeldMessage:
    message: InboundMessage
    sender: str
    preview: str  # plain text: the template escapes it, never renders it


def held_messages(*, limit: int = 50) -> list[HeldMessage]:
    """Held (unknown sender) and rejected mail nobody has decided on, newest first."""
    messages = InboundMessage.objects.filter(outcome__in=HELD_OUTCOMES).order_by("-received_at", "-id")[:limit]
    return [_held(m) for m in messages]


def held_count() -> int:
    return InboundMessage.objects.filter(outcome__in=HELD_OUTCOMES).count()


def held_recently_decided(*, limit: int = 20) -> QuerySet[InboundMessage]:
    """What was last filed or rejected from the Held mail page, and by whom."""
    return (
        InboundMessage.objects.defer("raw")
        .filter(decided_at__isnull=False)
        .select_related("decided_by", "ticket", "customer")
        .order_by("-decided_at", "-id")[:limit]
    )


def _held(message: InboundMessage) -> HeldMessage:
    address = message.from_address or message.envelope_from
    sender = f"{message.from_name} <{address}>" if message.from_name else (address or "(no sender)")
    return HeldMessage(message=message, sender=sender, preview=_preview(message))


def _preview(message: InboundMessage) -> str:
    if message.raw_pruned_at:
        return "(pruned under the retention policy)"
    if message.size > PREVIEW_MAX_RAW:
        return f"(a {message.size // 1024} KiB message: too large to preview here; filing it keeps it all)"
    raw = bytes(message.raw or b"")
    if not raw:
        return "(nothing of it was kept)"
    try:
        body = parsing.parse(raw, envelope_from=message.envelope_from or None).body
    except parsing.Malformed:
        # Unreadable as mail: the start of the raw text, as text.
        body = raw[: PREVIEW_CHARS * 4].decode("utf-8", errors="replace")
    body = body.strip() or "(empty message)"
    return body if len(body) <= PREVIEW_CHARS else body[:PREVIEW_CHARS] + " …"


def mail_routes() -> QuerySet[MailRoute]:
    """Every customer's routes, by customer."""
    return MailRoute.objects.select_related("customer").order_by("customer__name", "kind", "value")


# --- Who a sender is, who hears back ------------------------------------------


def route_customer(*, address: str) -> tuple[Customer | None, str]:
    """The customer whose mail this is, and why: the address's contact, else its address route
    (an address is one customer's at most: triage.contacts.services and mail_route_add refuse a
    second), else the most specific domain route (sub-domains included)."""
    address = address.strip().lower()
    contact = Contact.objects.filter(email__iexact=address).select_related("customer").first()
    if contact is not None:
        return contact.customer, f"contact address of {contact.customer.name}"
    route = MailRoute.objects.filter(kind=RouteKind.ADDRESS, value=address).select_related("customer").first()
    if route is not None:
        return route.customer, f"address route {address}"
    labels = address.rsplit("@", 1)[-1].split(".")
    candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    routes = {
        r.value: r
        for r in MailRoute.objects.filter(kind=RouteKind.DOMAIN, value__in=candidates).select_related("customer")
    }
    for domain in candidates:  # most specific first
        if domain in routes:
            return routes[domain].customer, f"domain route {domain}"
    return None, "no route for the sender"


def stranger_requester(*, ticket: Ticket) -> str | None:
    """The unknown sender whose mail opened this ticket under TRIAGE_MAIL_UNMATCHED_CUSTOMER, if it was one."""
    return (
        InboundMessage.objects.filter(ticket=ticket, outcome=Outcome.CREATED, customer__isnull=True)
        .exclude(from_address="")
        .order_by("received_at", "id")
        .values_list("from_address", flat=True)
        .first()
    )


def ticket_requester(*, ticket: Ticket) -> str | None:
    """Who the ticket is for, by name (else address): its requester contact; for a ticket without one,
    who opened it by mail; None for a ticket filed on the desk for nobody in particular."""
    if ticket.requester is not None:
        return ticket.requester.display_name
    first = (
        InboundMessage.objects.filter(ticket=ticket, outcome=Outcome.CREATED)
        .order_by("received_at", "id")
        .values("from_name", "from_address")
        .first()
    )
    if first is None:
        return None
    return first["from_name"].strip() or first["from_address"] or None


def ticket_correspondents(*, ticket: Ticket) -> list[str]:
    """Who a public reply on this ticket goes to, the addressee first (the rest are copied).

    The one statement of the rule, in this order, each address once:
    1. The requester (Ticket.requester).
    2. The addresses that wrote on the ticket by mail, in the order they first wrote, kept only
       while they are the customer's (route_customer, checked now); the stranger whose own
       unmatched-mail ticket it is.
    3. The CCs (Ticket.ccs, by address).
    4. Only when 1 to 3 name nobody: the customer's first contact (Customer.first_contact).
    The first is the addressee (To: the requester when there is one, else the first who wrote, as
    before requesters existed), the rest are copied. Requester and CCs are contacts, so removing
    the contact stops their mail at once, as removing a route stops a writer's. Never simply whoever
    wrote last; at most MAX_RECIPIENTS addresses.
    """
    found: list[str] = []
    if ticket.requester is not None:
        found.append(ticket.requester.email)
    writers = (
        InboundMessage.objects.filter(ticket=ticket, outcome__in=(Outcome.CREATED, Outcome.THREADED))
        .exclude(from_address="")
        .order_by("received_at", "id")
        .values_list("from_address", flat=True)
    )
    stranger = stranger_requester(ticket=ticket)
    for address in dict.fromkeys(writers):
        if address == stranger or route_customer(address=address)[0] == ticket.customer:
            found.append(address)
    found.extend(ticket.ccs.order_by("email").values_list("email", flat=True))
    if not found and (first := ticket.customer.first_contact()) is not None:
        found.append(first.email)
    return list(dict.fromkeys(a.lower() for a in found))[:MAX_RECIPIENTS]


def mailbox_list() -> QuerySet[Mailbox]:
    """The Mailboxes page: every mailbox with its last poll, without the password token."""
    return Mailbox.objects.defer("password_token").order_by("name")


def mailboxes_to_poll() -> list[int]:
    """Ids of the mailboxes beat polls: the enabled ones."""
    return list(Mailbox.objects.filter(enabled=True).order_by("pk").values_list("pk", flat=True))
