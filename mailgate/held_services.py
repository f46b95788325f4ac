"""Writes of the Held mail page: a held (unknown sender) or rejected message is filed as a ticket
for a customer the tech chooses, or rejected; either is recorded with who decided and when.

Kept beside `services.py` as `mailbox_services.py` is: the gateway's routing stays there, and a
filed message opens its ticket through the same `services.inbound_open_ticket` the gateway uses.

Exactly once, whatever the browser does (a double click, a second tab, two techs at once): the
decision is claimed with a conditional UPDATE of the message's outcome, inside the transaction
that opens the ticket. The first request changes the row; any other finds it no longer held
(0 rows; on PostgreSQL it waits for the first to commit, then re-reads) and is told what became
of it instead of opening a second ticket. A failure after the claim rolls the claim back too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from mailgate import parsing, services
from mailgate.models import HELD_OUTCOMES, InboundMessage, MailRoute, Outcome
from triage import services as desk
from triage.models import Customer, EventKind, Ticket


class AlreadyDecided(Exception):
    """Someone (perhaps the same tech, a click earlier) decided this message already."""

    def __init__(self, message: InboundMessage):
        self.message = message
        who = message.decided_by.get_username() if message.decided_by else "the desk"
        done = f"filed as {message.ticket.reference}" if message.ticket else message.get_outcome_display().lower()
        super().__init__(f"This message was already {done} by {who}.")


@dataclass(frozen=True)
class Filed:
    ticket: Ticket
    route: MailRoute | None


def held_file_ticket(*, message_id: int, customer: Customer, by, route: str = "", now: datetime | None = None) -> Filed:
    """Turn a held or rejected message into a ticket for `customer`, once.

    `route` is "", "address" or "domain": also route the sender's address (or domain) to the
    customer, validated as `manage.py mail_routes --add` validates it, so their next mail goes
    straight through. Raises AlreadyDecided, or ValidationError when the route cannot be added
    (then nothing is filed)."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = InboundMessage.objects.filter(pk=message_id, outcome__in=HELD_OUTCOMES).update(
            outcome=Outcome.CREATED, customer=customer, decided_by=by, decided_at=now
        )
        record = InboundMessage.objects.select_related("ticket", "decided_by").get(pk=message_id)
        if not claimed:
            raise AlreadyDecided(record)
        held_reason = record.reason
        added = None
        if route == "address":
            added = services.mail_route_add(customer=customer, value=record.from_address)
        elif route == "domain":
            added = services.mail_route_add(customer=customer, value=record.sender_domain)
        parsed = _parsed(record)
        record.reason = f"{held_reason}; filed for {customer.name} by {by.get_username()} from the Held mail page"
        ticket = services.inbound_open_ticket(
            record=record, parsed=parsed, customer=customer, tags=["email", "held-mail"], now=now
        )
        note = f"Filed from held mail by {by.get_username()}. It was held because: {held_reason or 'no reason given'}."
        if added is not None:
            note += f" Mail from {added.value} now routes to {customer.name}."
        desk.ticket_record_event(
            ticket=ticket,
            kind=EventKind.NOTE,
            actor=by,
            body=note,
            now=now,
            data={"via": "held_mail", "inbound_id": record.pk, "route": added.value if added else ""},
        )
    return Filed(ticket=ticket, route=added)


def held_reject(*, message_id: int, by, now: datetime | None = None) -> InboundMessage:
    """Take a held or rejected message off the Held mail page for good, recording who and when.
    Raises AlreadyDecided when it is no longer there. The raw message stays (retention prunes it)."""
    now = now or timezone.now()
    claimed = InboundMessage.objects.filter(pk=message_id, outcome__in=HELD_OUTCOMES).update(
        outcome=Outcome.DISMISSED, decided_by=by, decided_at=now
    )
    record = InboundMessage.objects.select_related("ticket", "decided_by").get(pk=message_id)
    if not claimed:
        raise AlreadyDecided(record)
    return record


def _parsed(record: InboundMessage) -> parsing.ParsedMail:
    """The message as the gateway parsed it; for one it could not read (rejected as malformed, refused
    as too big, or pruned), what the record kept, with why there is no body."""
    raw = bytes(record.raw or b"")
    try:
        return parsing.parse(raw, envelope_from=record.envelope_from or None)
    except parsing.Malformed as exc:
        gone = "its raw text was pruned under the retention policy" if record.raw_pruned_at else str(exc)
        return parsing.ParsedMail(
            message_id=record.message_id,
            in_reply_to=record.in_reply_to,
            references=list(record.references),
            from_address=record.from_address or record.envelope_from or "unknown sender",
            from_name=record.from_name,
            subject=record.subject,
            body=f"(The original message could not be read: {gone}. Received {record.received_at:%Y-%m-%d %H:%M} UTC.)",
        )
