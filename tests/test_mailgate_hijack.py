"""Mail that cannot be hijacked, over real SMTP: a stranger who knows a Message-ID
of a customer's thread cannot join it, a forged staff From is not staff mail, and
the desk's replies go to the customer's contacts, never to whoever wrote last."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailgate import services as mail_services
from mailgate import tasks
from mailgate.models import InboundMessage, Outcome
from tests.conftest import login
from tests.mailgate_support import mail, send
from triage import services
from triage.models import Customer, EventKind, SlaTier, Ticket

# The listener and sink fixtures: real SMTP peers on loopback ports.
pytest_plugins = ["tests.mailgate_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)

OPENING = "<opening@northwind.test>"


@pytest.fixture
def mailed_ticket(listener, customer) -> Ticket:
    send(listener, mail(subject="Mail sits 30 seconds", message_id=OPENING))
    return Ticket.objects.get()


def reply_and_deliver(ticket: Ticket, tech, sink, body: str = "Please restart exim.") -> list[str]:
    """A tech's public reply, sent by the worker; returns who really received it (the envelope)."""
    before = len(sink.envelopes)
    assert tasks.notify_event(services.ticket_reply(ticket=ticket, author=tech, body=body).pk) == {"customer": "sent"}
    (envelope,) = sink.envelopes[before:]
    return envelope


THREAD_HEADERS = {
    "in-reply-to": {"In-Reply-To": OPENING},
    "references": {"References": f"<older@elsewhere.test> {OPENING}"},
}


@pytest.mark.parametrize("headers", THREAD_HEADERS.values(), ids=THREAD_HEADERS.keys())
def test_a_stranger_answering_a_customers_message_is_held_and_never_reaches_the_thread(
    listener, sink, mailed_ticket, tech, headers
):
    send(
        listener,
        mail(
            sender="Mallory <mallory@evil.test>",
            subject="Re: Mail sits 30 seconds",
            body="Please send the logs to me instead.",
            message_id="<hijack@evil.test>",
            headers=headers,
        ),
    )

    record = InboundMessage.objects.get(message_id="<hijack@evil.test>")
    assert record.outcome == Outcome.UNMATCHED and record.ticket is None and record.event is None
    assert "not a contact" in record.reason and mailed_ticket.reference in record.reason
    assert not mailed_ticket.events.filter(kind__in=[EventKind.REPLY, EventKind.NOTE]).exists()
    assert Ticket.objects.count() == 1

    # The tech's next reply goes to the customer, and only to the customer.
    assert reply_and_deliver(mailed_ticket, tech, sink) == ["ops@northwind.test"]
    assert sink.messages[-1]["To"] == "ops@northwind.test" and sink.messages[-1]["Cc"] is None


def test_a_stranger_answering_a_desk_notification_is_held_too(listener, sink, mailed_ticket, tech):
    reply_and_deliver(mailed_ticket, tech, sink)
    notification = sink.messages[-1]["Message-ID"]  # e.g. forwarded by the customer to an outsider

    send(
        listener,
        mail(
            sender="mallory@evil.test",
            subject="Re: [#1]",
            message_id="<hijack2@evil.test>",
            headers={"In-Reply-To": notification},
        ),
    )

    assert InboundMessage.objects.get(message_id="<hijack2@evil.test>").outcome == Outcome.UNMATCHED
    assert not mailed_ticket.events.filter(kind=EventKind.REPLY, actor=None).exists()


def test_a_stranger_naming_the_ticket_in_the_subject_is_held_with_the_reason(listener, mailed_ticket):
    send(listener, mail(sender="mallory@evil.test", subject=f"Re: [#{mailed_ticket.pk}] Mail sits 30 seconds"))

    record = InboundMessage.objects.get(from_address="mallory@evil.test")
    assert record.outcome == Outcome.UNMATCHED and f"subject names {mailed_ticket.reference}" in record.reason
    assert not mailed_ticket.events.filter(kind=EventKind.REPLY, actor=None).exists()


def test_with_an_unmatched_mail_customer_a_strangers_answer_opens_its_own_ticket_there(
    listener, sink, mailed_ticket, tech, settings
):
    triage_bin = Customer.objects.create(name="Unmatched mail", sla_tier=SlaTier.objects.get(name="Standard"))
    settings.TRIAGE_MAIL_UNMATCHED_CUSTOMER = "Unmatched mail"

    send(
        listener,
        mail(
            sender="mallory@evil.test",
            subject="Re: Mail sits 30 seconds",
            message_id="<hijack3@evil.test>",
            headers={"In-Reply-To": OPENING},
        ),
    )

    filed = Ticket.objects.exclude(pk=mailed_ticket.pk).get()
    assert filed.customer == triage_bin
    assert not mailed_ticket.events.filter(kind=EventKind.REPLY, actor=None).exists()
    assert reply_and_deliver(mailed_ticket, tech, sink) == ["ops@northwind.test"]
    # The stranger's own ticket answers the stranger, who may then thread onto it.
    assert reply_and_deliver(filed, tech, sink) == ["mallory@evil.test"]
    send(
        listener,
        mail(
            sender="mallory@evil.test",
            subject="Re: thanks",
            message_id="<back@evil.test>",
            headers={"In-Reply-To": sink.messages[-1]["Message-ID"]},
        ),
    )
    assert InboundMessage.objects.get(message_id="<back@evil.test>").ticket == filed


def test_a_contact_of_another_customer_answering_the_thread_opens_a_ticket_for_their_own_customer(
    listener, mailed_ticket
):
    Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold")).contacts.create(
        email="it@contoso.test"
    )

    send(listener, mail(sender="it@contoso.test", subject="Re: Mail sits 30 seconds", headers={"In-Reply-To": OPENING}))

    assert Ticket.objects.exclude(pk=mailed_ticket.pk).get().customer.name == "Contoso"
    assert not mailed_ticket.events.filter(kind=EventKind.REPLY, actor=None).exists()


def test_a_colleague_routed_to_the_customer_threads_and_is_copied_on_replies(
    listener, sink, mailed_ticket, tech, client
):
    mail_services.mail_route_add(customer=mailed_ticket.customer, value="northwind.test")

    send(
        listener,
        mail(
            sender="kim@noc.northwind.test",
            subject="Re: Mail sits 30 seconds",
            body="Same here on mx2.",
            headers={"In-Reply-To": OPENING},
        ),
    )

    assert mailed_ticket.events.get(kind=EventKind.REPLY, actor=None).data["from"] == "kim@noc.northwind.test"
    # The requester stays the addressee; the colleague who wrote in is copied.
    assert reply_and_deliver(mailed_ticket, tech, sink) == ["ops@northwind.test", "kim@noc.northwind.test"]
    assert sink.messages[-1]["To"] == "ops@northwind.test" and sink.messages[-1]["Cc"] == "kim@noc.northwind.test"
    # The tech sees who the next reply goes to before writing it.
    page = login(client, tech).get(reverse("ticket", args=[mailed_ticket.pk])).content.decode()
    assert "Mailed to ops@northwind.test, copy to kim@noc.northwind.test." in page


def test_replies_stop_reaching_an_address_that_no_longer_belongs_to_the_customer(listener, sink, mailed_ticket, tech):
    mail_services.mail_route_add(customer=mailed_ticket.customer, value="northwind.test")
    send(
        listener,
        mail(sender="kim@northwind.test", subject="Re: Mail sits 30 seconds", headers={"In-Reply-To": OPENING}),
    )
    # Kim wrote last; then Kim's domain route is removed (the admin ended the arrangement).
    mail_services.mail_route_remove(customer=mailed_ticket.customer, value="northwind.test")

    assert reply_and_deliver(mailed_ticket, tech, sink) == ["ops@northwind.test"]


def test_a_ticket_filed_in_the_browser_answers_the_customers_contact_address(sink, ticket, tech):
    assert reply_and_deliver(ticket, tech, sink) == ["ops@northwind.test"]


def test_a_forged_staff_from_is_held_not_stored_as_a_note_and_the_next_reply_goes_to_the_customer(
    listener, sink, mailed_ticket, tech, settings
):
    settings.TRIAGE_MAIL_UNMATCHED_CUSTOMER = "Unmatched mail"  # even then, nothing is filed for it
    Customer.objects.create(name="Unmatched mail", sla_tier=SlaTier.objects.get(name="Standard"))

    send(
        listener,
        mail(
            sender=f"Tess <{tech.email}>",
            subject=f"Re: [#{mailed_ticket.pk}] Mail sits 30 seconds",
            body="Internal: customer approved a refund.",
            message_id="<forged@evil.test>",
            headers={"In-Reply-To": OPENING},
        ),
    )

    record = InboundMessage.objects.get(message_id="<forged@evil.test>")
    assert record.outcome == Outcome.UNMATCHED and record.ticket is None
    assert "desk user" in record.reason
    assert not mailed_ticket.events.filter(kind__in=[EventKind.NOTE, EventKind.REPLY]).exists()
    assert Ticket.objects.count() == 1
    assert reply_and_deliver(mailed_ticket, tech, sink) == ["ops@northwind.test"]


def test_an_assignee_notification_says_to_answer_in_the_desk(listener, sink, mailed_ticket, tech):
    services.ticket_assign(ticket=mailed_ticket, assignee=tech, by=tech)
    send(listener, mail(subject="Re: Mail sits 30 seconds", body="More logs.", headers={"In-Reply-To": OPENING}))
    reply = mailed_ticket.events.get(kind=EventKind.REPLY, actor=None)

    assert tasks.notify_event(reply.pk) == {"assignee": "sent"}
    assert "not added to the ticket" in sink.messages[-1].get_content()
