"""Writes of the mail gateway: customer mail routes, taking in one message, and
planning and sending notifications.

Who a sender is. A From header can be forged by anyone, so it only ever decides
*which customer's mail this claims to be*, never whether it may join a thread
someone else started or whether it is staff mail:
- The customer's people are its contacts (triage.models.Contact), its address
  routes and every address at its routed domains (sub-domains included), as
  `selectors.route_customer` resolves them now (a removed contact or route stops
  counting at once).
- Mail from the address of a desk user is held ("unmatched"): staff write on
  tickets only in the authenticated desk (browser or API), never by mail.

Inbound decisions, in order (each recorded on the message with why):
1. Unparseable or without a usable sender: rejected, raw kept.
2. Sent by a machine (bounce, auto-reply): kept, linked to its ticket when it
   names one of our messages, and never answered.
3. From a desk user's address: held, whatever it names.
4. The sender's customer: the contact with that address, else an exact address
   route, else the most specific domain route (sub-domains included).
5. The thread: In-Reply-To/References naming a message we sent or received,
   else "[#123]" in the subject; either only when the sender is the ticket
   customer's (any contact of it, so a CC's reply threads too; or the stranger
   whose own unmatched-mail ticket it is). Mail for a ticket merged into another
   lands on that survivor (same customer: merging requires it). A reply to a
   closed ticket opens a follow-up.
6. No thread: a new ticket for the customer; an unknown sender's mail is held
   as "unmatched" (or filed as a new ticket under TRIAGE_MAIL_UNMATCHED_CUSTOMER
   when set), never added to the ticket it names. The new ticket's requester is
   the sender's contact, and its CCs the other To/Cc addresses that are the same
   customer's (never the desk's own; none when the sender is not the customer's);
   a routed address not yet a contact becomes one (named from its header).
   Addresses nobody routed are never made contacts, so a Cc cannot give a
   stranger a say on the customer's tickets.

Who hears back: a public reply goes to `selectors.ticket_correspondents` (the
requester as To and the CCs copied; the rule is stated there, once).
"""

from __future__ import annotations

import logging
import re
import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from mailgate import parsing, selectors
from mailgate.models import (
    Attachment,
    Audience,
    InboundMessage,
    MailRoute,
    OutboundMessage,
    OutboundState,
    Outcome,
    RouteKind,
)
from triage import services as desk
from triage.contacts import services as contacts
from triage.models import Contact, Customer, EventKind, Status, Ticket, TicketEvent

log = logging.getLogger(__name__)

DOMAIN = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
# A message being sent longer than this is presumed lost with its worker and is sent again.
STALE_CLAIM = timedelta(minutes=15)


# --- Routes -----------------------------------------------------------------------


def mail_route_add(*, customer: Customer, value: str) -> MailRoute:
    """Route an address ("ops@northwind.test") or a domain ("northwind.test") to a customer."""
    value = value.strip().lower().lstrip("@")
    if "@" in value:
        validate_email(value)
        kind = RouteKind.ADDRESS
    elif re.match(DOMAIN, value):
        kind = RouteKind.DOMAIN
    else:
        raise ValidationError({"value": "Enter an e-mail address or a domain name (example.com)."})
    taken = MailRoute.objects.filter(value=value).exclude(customer=customer).select_related("customer").first()
    if taken is not None:
        raise ValidationError({"value": f"{value} already routes to {taken.customer.name}."})
    contact = Contact.objects.filter(email__iexact=value).exclude(customer=customer).select_related("customer").first()
    if contact is not None:  # the contact would win routing; the route would silently do nothing
        raise ValidationError({"value": f"{value} is a contact of {contact.customer.name}."})
    route, _ = MailRoute.objects.get_or_create(value=value, defaults={"customer": customer, "kind": kind})
    return route


def mail_route_remove(*, customer: Customer, value: str) -> bool:
    deleted, _ = MailRoute.objects.filter(customer=customer, value=value.strip().lower().lstrip("@")).delete()
    return bool(deleted)


# --- Inbound ----------------------------------------------------------------------


def inbound_receive(
    *, raw: bytes, envelope_from: str | None, envelope_to: list[str], peer: str = "", now: datetime | None = None
) -> InboundMessage:
    """Take in one message and return its record. Idempotent on Message-ID.

    The raw bytes are stored whatever happens; if processing fails unexpectedly the
    record says so (outcome "failed") and the exception propagates, so the SMTP
    listener answers 451 and the sender retries, which processes it again.
    """
    now = now or timezone.now()
    envelope = {
        "envelope_from": (envelope_from or "")[:254],
        "envelope_to": list(envelope_to)[:20],
        "peer": peer[:100],
        "raw": raw,
        "size": len(raw),
        "received_at": now,
    }
    try:
        parsed = parsing.parse(raw, envelope_from=envelope_from)
    except parsing.Malformed as exc:
        return _store_once(
            key=parsing.dedupe_key(message_id="", raw=raw),
            outcome=Outcome.REJECTED,
            reason=f"malformed: {exc}",
            **envelope,
        )

    key = parsing.dedupe_key(message_id=parsed.message_id, raw=raw)
    existing = InboundMessage.objects.filter(dedupe_key=key).first()
    if existing is not None and existing.outcome != Outcome.FAILED:
        return _redelivered(existing)
    headers = {
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
        "from_address": parsed.from_address,
        "from_name": parsed.from_name,
        "subject": parsed.subject,
    }
    try:
        with transaction.atomic():
            if existing is not None:
                existing.delete()  # an earlier attempt failed; this one starts over
            record = InboundMessage.objects.create(dedupe_key=key, outcome=Outcome.FAILED, **headers, **envelope)
            _route(record=record, parsed=parsed, now=now)
        return record
    except IntegrityError:
        # The same message arrived twice at once; the other delivery owns it.
        existing = InboundMessage.objects.filter(dedupe_key=key).first()
        if existing is None:
            raise
        return _redelivered(existing)
    except Exception as exc:
        log.exception("processing inbound mail %s failed", parsed.message_id or key)
        _store_once(
            key=key, outcome=Outcome.FAILED, reason=f"{type(exc).__name__}: {exc}"[:2000], **headers, **envelope
        )
        raise


def _redelivered(record: InboundMessage) -> InboundMessage:
    InboundMessage.objects.filter(pk=record.pk).update(redeliveries=F("redeliveries") + 1)
    record.refresh_from_db()
    return record


def _store_once(*, key: str, **fields) -> InboundMessage:
    record, created = InboundMessage.objects.get_or_create(dedupe_key=key, defaults=fields)
    if not created:
        if record.outcome == Outcome.FAILED and fields.get("outcome") == Outcome.FAILED:
            InboundMessage.objects.filter(pk=record.pk).update(reason=fields["reason"])
        return _redelivered(record)
    return record


def inbound_record_refused(
    *,
    envelope_from: str | None,
    envelope_to: list[str],
    peer: str,
    reason: str,
    size: int = 0,
    now: datetime | None = None,
) -> InboundMessage:
    """Record a message refused during the SMTP dialogue (too big): nothing of it was kept."""
    return InboundMessage.objects.create(
        dedupe_key=None,
        outcome=Outcome.REJECTED,
        reason=reason[:2000],
        envelope_from=(envelope_from or "")[:254],
        envelope_to=list(envelope_to)[:20],
        peer=peer[:100],
        size=size,
        received_at=now or timezone.now(),
    )


def _route(*, record: InboundMessage, parsed: parsing.ParsedMail, now: datetime) -> None:
    machine, why = parsed.machine
    if machine:
        record.outcome = Outcome.BOUNCE if machine == "bounce" else Outcome.AUTO_REPLY
        record.reason = why
        record.ticket = _ticket_by_message_ids(parsed.thread_ids)
        record.save()
        return

    if _is_staff_address(parsed.from_address):
        record.outcome = Outcome.UNMATCHED
        record.reason = (
            f"{parsed.from_address} is the address of a desk user, and a From header proves nothing: "
            "staff write on tickets in the desk, not by mail"
        )
        record.save()
        return

    customer, customer_why = selectors.route_customer(address=parsed.from_address)
    record.customer = customer
    ticket, thread_why = _find_thread(parsed=parsed, customer=customer)
    reasons = [customer_why]
    if ticket is None and thread_why != "no thread":
        reasons.append(thread_why)  # why the thread it names was refused
    if ticket is not None and ticket.status == Status.CLOSED:
        closed, ticket = ticket, None
        reasons.append(f"{thread_why}, but {closed.reference} is closed: follow-up ticket")
        customer = closed.customer
        parsed.body = f"Follow-up to closed ticket {closed.reference}.\n\n{parsed.body}"
    if ticket is not None:
        record.event = _reply_on(ticket=ticket, parsed=parsed, record=record, now=now)
        record.ticket, record.outcome = ticket, Outcome.THREADED
        reasons.append(thread_why)
    else:
        tags = ["email"]
        if customer is None and settings.TRIAGE_MAIL_UNMATCHED_CUSTOMER:
            customer = Customer.objects.filter(name=settings.TRIAGE_MAIL_UNMATCHED_CUSTOMER).first()
            tags.append("unmatched-sender")
            reasons.append("filed under the unmatched-mail customer")
        if customer is None:
            record.outcome = Outcome.UNMATCHED
            record.reason = "; ".join(reasons)
            record.save()
            return
        record.reason = "; ".join(reasons)
        inbound_open_ticket(record=record, parsed=parsed, customer=customer, tags=tags, now=now)
        return
    record.reason = "; ".join(reasons)
    record.save()
    _keep_attachments(record=record, parsed=parsed)


def inbound_open_ticket(
    *, record: InboundMessage, parsed: parsing.ParsedMail, customer: Customer, tags: list[str], now: datetime
) -> Ticket:
    """A new ticket for the customer from this message, its attachments kept; the record says so.

    The one way mail opens a ticket: the gateway's own routing and a held message filed from the
    Held mail page (mailgate.held_services) both end here, so both tickets look the same."""
    requester = _contact_for(customer=customer, address=parsed.from_address, name=parsed.from_name)
    own = {a.lower() for a in settings.TRIAGE_MAIL_ADDRESSES} | {parsed.from_address}
    ccs: list[Contact] = []
    # Only the customer's own people choose who is copied: a stranger's mail filed here copies nobody.
    for name, address in parsed.copied if requester is not None else ():
        if address not in own and len(ccs) < desk.MAX_CCS:
            contact = _contact_for(customer=customer, address=address, name=name)
            if contact is not None:
                ccs.append(contact)
    record.ticket = desk.ticket_create(
        subject=(parsed.subject or "(no subject)")[:200],
        description=_with_sender(parsed, parsed.body or "(empty message)"),
        customer=customer,
        tag_names=tags,
        requester=requester,
        ccs=ccs,
        now=now,
    )
    record.event = record.ticket.events.filter(kind=EventKind.CREATED).first()
    record.outcome = Outcome.CREATED
    record.save()
    _keep_attachments(record=record, parsed=parsed)
    return record.ticket


def _contact_for(*, customer: Customer, address: str, name: str) -> Contact | None:
    """The customer's contact with this address, made one if the address routes to the customer;
    None for an address that is not the customer's (another's contact, unrouted, a desk user's)."""
    contact = Contact.objects.filter(email__iexact=address).first()
    if contact is not None:
        return contact if contact.customer_id == customer.pk else None
    owner, _why = selectors.route_customer(address=address)
    if owner is None or owner.pk != customer.pk or _is_staff_address(address):
        return None
    try:
        return contacts.contact_create(customer=customer, email=address, name=name)
    except ValidationError:  # not an address Django accepts, or made a moment ago by another message
        return Contact.objects.filter(email__iexact=address, customer=customer).first()


def _with_sender(parsed: parsing.ParsedMail, body: str) -> str:
    sender = f"{parsed.from_name} <{parsed.from_address}>" if parsed.from_name else parsed.from_address
    return f"From: {sender}\n\n{body}"


def _keep_attachments(*, record: InboundMessage, parsed: parsing.ParsedMail) -> None:
    Attachment.objects.bulk_create(
        [
            Attachment(
                message=record,
                ticket=record.ticket,
                filename=a.filename,
                content_type=a.content_type,
                size=len(a.content),
                content=a.content,
            )
            for a in parsed.attachments
        ]
    )


def _ticket_by_message_ids(ids: list[str]) -> Ticket | None:
    if not ids:
        return None
    owners = dict(OutboundMessage.objects.filter(message_id__in=ids).values_list("message_id", "ticket_id"))
    owners.update(
        {
            m: t
            for m, t in InboundMessage.objects.filter(message_id__in=ids, ticket__isnull=False).values_list(
                "message_id", "ticket_id"
            )
            if m not in owners
        }
    )
    for message_id in ids:  # nearest first
        if message_id in owners:
            return Ticket.objects.select_related("customer").get(pk=owners[message_id])
    return None


def _find_thread(*, parsed: parsing.ParsedMail, customer: Customer | None) -> tuple[Ticket | None, str]:
    """The ticket this mail answers, if its sender may write on it; else (None, why not)."""
    refused = "no thread"
    named = _ticket_by_message_ids(parsed.thread_ids)
    if named is not None:
        if _may_write_on(ticket=named, address=parsed.from_address, customer=customer):
            return _survivor(named, f"answers a message of {named.reference}")
        refused = (
            f"answers a message of {named.reference}, but {parsed.from_address} is not a contact of "
            f"{named.customer.name}: not added to it"
        )
    number = parsed.ticket_reference()
    if number is not None:
        named = Ticket.objects.filter(pk=number).select_related("customer").first()
        if named is not None and _may_write_on(ticket=named, address=parsed.from_address, customer=customer):
            return _survivor(named, f"subject names {named.reference}")
        if named is not None and refused == "no thread":
            refused = (
                f"subject names {named.reference}, but {parsed.from_address} is not a contact of "
                f"{named.customer.name}: not added to it"
            )
    return None, refused


def _survivor(ticket: Ticket, why: str) -> tuple[Ticket, str]:
    """The ticket mail for ``ticket`` goes to: the one it was merged into, if it was.

    The sender was checked against ``ticket``; a merge keeps the customer (triage.merging), so a
    contact of it is a contact of the survivor's. Merges never chain, but a bound keeps a loop
    written by hand from spinning."""
    for _ in range(5):
        if ticket.merged_into_id is None:
            break
        ticket = Ticket.objects.select_related("customer").get(pk=ticket.merged_into_id)
        why = f"{why}, which was merged into {ticket.reference}"
    return ticket, why


def _may_write_on(*, ticket: Ticket, address: str, customer: Customer | None) -> bool:
    """A contact of the ticket's customer, or the stranger whose own (unmatched-mail) ticket it is."""
    if customer is not None:
        return customer.pk == ticket.customer_id
    return selectors.stranger_requester(ticket=ticket) == address


def _is_staff_address(address: str) -> bool:
    return get_user_model().objects.filter(is_active=True, email__iexact=address).exists()


def _reply_on(*, ticket: Ticket, parsed: parsing.ParsedMail, record: InboundMessage, now: datetime) -> TicketEvent:
    """A contact's mail becomes a public reply (actor: none, via e-mail)."""
    data = {
        "via": "email",
        "from": parsed.from_address,
        "inbound_id": record.pk,
        "attachments": [a.filename for a in parsed.attachments],
    }
    body = parsing.strip_quoted(parsed.body) if parsed.body else "(empty message)"
    event = desk.ticket_record_event(
        ticket=ticket, kind=EventKind.REPLY, body=_with_sender(parsed, body), data=data, now=now
    )
    if ticket.status in (Status.WAITING, Status.RESOLVED):
        # The customer answered: the ball is back with the desk (and the resolution clock runs again).
        desk.ticket_change_status(
            ticket=ticket, status=Status.TRIAGING, by=None, note="The customer replied by e-mail.", now=now
        )
    return event


# --- Outbound ---------------------------------------------------------------------


def desk_address() -> str:
    return settings.TRIAGE_MAIL_ADDRESSES[0]


def _new_message_id() -> str:
    domain = desk_address().rsplit("@", 1)[-1]
    return f"<triage.{uuid.uuid4().hex}@{domain}>"


def _thread_ids(ticket: Ticket) -> list[str]:
    """Message-IDs of the ticket's conversation with the customer, oldest first."""
    inbound = (
        InboundMessage.objects.filter(ticket=ticket, outcome__in=(Outcome.CREATED, Outcome.THREADED))
        .exclude(message_id="")
        .values_list("received_at", "message_id")
    )
    outbound = OutboundMessage.objects.filter(ticket=ticket, audience=Audience.CUSTOMER).values_list(
        "created_at", "message_id"
    )
    return [m for _, m in sorted([*inbound, *outbound])]


def _ticket_url(ticket: Ticket) -> str:
    return settings.TRIAGE_SITE_URL.rstrip("/") + reverse("ticket", args=[ticket.pk])


@dataclass(frozen=True)
class Planned:
    audience: str
    to: str
    subject: str
    body: str
    cc: tuple[str, ...] = ()


def _one_line(text: str) -> str:
    # A subject stored before subjects were validated may hold CR/LF; a header must not.
    return " ".join(text.split())


def _plan(event: TicketEvent) -> list[Planned]:
    """The notifications this event deserves."""
    ticket = event.ticket
    subject = _one_line(f"[#{ticket.pk}] {ticket.subject}")
    plans = []
    if event.kind == EventKind.REPLY and event.actor is not None:
        correspondents = selectors.ticket_correspondents(ticket=ticket)
        if correspondents:
            body = (
                f"{event.body}\n\n-- \n{event.actor.get_full_name() or event.actor.get_username()}\n"
                f"Reply to this e-mail to add to ticket #{ticket.pk}; please keep [#{ticket.pk}] in the subject."
            )
            plans.append(
                Planned(Audience.CUSTOMER, correspondents[0], f"Re: {subject}", body, tuple(correspondents[1:]))
            )
    assignee = ticket.assignee
    if assignee is None or not assignee.email or not assignee.is_active:
        return plans
    # Mail from a staff address is never taken as staff mail (anyone can forge a From), so say where to answer.
    footer = f"Answer in the desk: {_ticket_url(ticket)}\nReplies to this e-mail are not added to the ticket."
    if event.kind == EventKind.REPLY and event.actor_id is None and event.data.get("via") == "email":
        plans.append(
            Planned(
                Audience.ASSIGNEE,
                assignee.email,
                f"Customer replied: {subject}",
                f"{ticket.customer.name} replied on {ticket.reference}:\n\n{event.body}\n\n{footer}",
            )
        )
    elif (
        event.kind == EventKind.ASSIGNMENT
        and event.data.get("to") == assignee.get_username()
        and event.actor_id != assignee.pk
    ):
        by = event.actor.get_username() if event.actor else "the desk"
        plans.append(
            Planned(
                Audience.ASSIGNEE,
                assignee.email,
                f"Assigned to you: {subject}",
                f"{by} assigned {ticket.reference} ({ticket.customer.name}) to you.\n\n"
                f"{ticket.description[:4000]}\n\n{footer}",
            )
        )
    return plans


def outbound_plan(*, event: TicketEvent) -> list[OutboundMessage]:
    """The notifications of one event, planned once (a retry finds the same rows)."""
    planned = []
    for plan in _plan(event):
        in_reply_to, references = parsing.thread_header_ids(ids=_thread_ids(event.ticket))
        message, _ = OutboundMessage.objects.get_or_create(
            event=event,
            audience=plan.audience,
            defaults={
                "ticket": event.ticket,
                "to_address": plan.to,
                "cc": list(plan.cc),
                "subject": plan.subject[:300],
                "body": plan.body,
                "message_id": _new_message_id(),
                "in_reply_to": in_reply_to,
                "references": references,
            },
        )
        planned.append(message)
    return planned


def _is_permanent(exc: Exception) -> bool:
    """Only network trouble and 4xx answers are worth retrying. Anything that is not an OSError
    (BadHeaderError and other ValueErrors from building the message) fails the same way every
    time, so retrying it for days would only hide that the customer never heard back."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return not isinstance(exc, OSError)


def outbound_send(*, outbound_id: int, now: datetime | None = None) -> str:
    """Send one planned message at most once; returns its state.

    Claimed with a conditional UPDATE, so two deliveries of the same task never both
    send. A transient failure (refused connection, timeout, 4xx) puts it back and
    re-raises for the task to retry; a permanent one (5xx refusal, a message that
    cannot be built) is final, recorded on the message and as a note on the ticket.
    """
    now = now or timezone.now()
    claimable = Q(state=OutboundState.PENDING) | Q(state=OutboundState.SENDING, claimed_at__lt=now - STALE_CLAIM)
    claimed = OutboundMessage.objects.filter(claimable, pk=outbound_id).update(
        state=OutboundState.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    message = OutboundMessage.objects.filter(pk=outbound_id).select_related("ticket").first()
    if not claimed or message is None:
        return message.state if message else "gone"
    headers = {"Message-ID": message.message_id}
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
        headers["References"] = " ".join(message.references)
    if message.audience == Audience.ASSIGNEE:
        headers["Auto-Submitted"] = "auto-generated"
    try:
        mail = EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=desk_address(),
            to=[message.to_address],
            cc=list(message.cc),
            reply_to=[desk_address()],
            headers=headers,
        )
        if message.audience == Audience.CUSTOMER:
            # The files the tech attached to the reply go with it (upload_services: within the mail limit).
            for a in Attachment.objects.filter(event_id=message.event_id, content_pruned_at__isnull=True):
                mail.attach(a.filename, bytes(a.content), a.content_type)
        get_connection(fail_silently=False).send_messages([mail])
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if not _is_permanent(exc):
            OutboundMessage.objects.filter(pk=outbound_id).update(state=OutboundState.PENDING, last_error=error)
            raise
        _record_failure(message=message, error=error, now=now)
        return OutboundState.FAILED
    OutboundMessage.objects.filter(pk=outbound_id).update(
        state=OutboundState.SENT, sent_at=timezone.now(), last_error=""
    )
    return OutboundState.SENT


def _record_failure(*, message: OutboundMessage, error: str, now: datetime) -> None:
    log.warning("notification %s to %s failed for good: %s", message.message_id, message.to_address, error)
    with transaction.atomic():
        OutboundMessage.objects.filter(pk=message.pk).update(state=OutboundState.FAILED, last_error=error)
        # The tech must learn that nobody was told: a note on the timeline (notes mail nobody).
        desk.ticket_record_event(
            ticket=message.ticket,
            kind=EventKind.NOTE,
            now=now,
            body=f"Mail to {message.to_address} was not sent and will not be retried: {error}",
            data={"via": "mailgate", "outbound_id": message.pk, "failed": True},
        )


def outbound_pending(*, now: datetime | None = None, older_than: timedelta = STALE_CLAIM) -> list[int]:
    """Messages whose task gave up or never ran (broker down), for the sweeper to send again."""
    now = now or timezone.now()
    return list(
        OutboundMessage.objects.filter(
            Q(state=OutboundState.PENDING) | Q(state=OutboundState.SENDING, claimed_at__lt=now - STALE_CLAIM),
            created_at__lt=now - older_than,
            created_at__gte=now - timedelta(days=2),
        ).values_list("pk", flat=True)[:500]
    )
