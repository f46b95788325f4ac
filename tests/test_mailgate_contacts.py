"""Mail and the customer's contacts, over real SMTP: a new ticket by mail names its requester and
copies the customer's other people it was sent to, a CC's reply threads, the desk's reply goes To the
requester with the CCs copied, and nobody outside the customer gets in through a Cc or a forged From."""

from __future__ import annotations

import pytest

from mailgate import services as mail_services
from mailgate import tasks
from mailgate.models import InboundMessage, OutboundMessage, Outcome
from tests.mailgate_support import DESK, mail, send
from triage import services
from triage.contacts import services as contacts
from triage.models import Contact, Customer, EventKind, SlaTier, Ticket

# The listener and sink fixtures: real SMTP peers on loopback ports.
pytest_plugins = ["tests.mailgate_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)

OPENING = "<opening@northwind.test>"


@pytest.fixture
def routed(customer):
    """Northwind's colleagues write from any address at northwind.test."""
    mail_services.mail_route_add(customer=customer, value="northwind.test")
    return customer


@pytest.fixture
def contoso(roles):
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    other.contacts.create(email="it@contoso.test", name="Contoso IT")
    return other


def open_by_mail(listener, **headers) -> Ticket:
    send(listener, mail(subject="Mail sits 30 seconds", message_id=OPENING, headers=headers))
    return Ticket.objects.get()


def reply_and_deliver(ticket: Ticket, tech, sink, body: str = "Please restart exim."):
    """A tech's public reply, sent by the worker; returns the message as received and its envelope."""
    before = len(sink.envelopes)
    assert tasks.notify_event(services.ticket_reply(ticket=ticket, author=tech, body=body).pk) == {"customer": "sent"}
    (envelope,) = sink.envelopes[before:]
    return sink.messages[-1], envelope


def test_a_new_ticket_by_mail_names_the_sender_as_requester_and_copies_the_customers_people(listener, routed, contoso):
    ticket = open_by_mail(
        listener, Cc="Kim Noc <kim@noc.northwind.test>, Contoso IT <it@contoso.test>, decoy@unrouted.test"
    )

    assert ticket.requester == Contact.objects.get(email="ops@northwind.test")
    # Kim, at the routed domain, became a contact of Northwind, named from the header; the others are not hers.
    kim = Contact.objects.get(email="kim@noc.northwind.test")
    assert (kim.customer, kim.name) == (routed, "Kim Noc")
    assert list(ticket.ccs.all()) == [kim]
    assert Contact.objects.get(email="it@contoso.test").customer == contoso
    assert not Contact.objects.filter(email="decoy@unrouted.test").exists()
    created = ticket.events.get(kind=EventKind.CREATED)
    assert created.data["requester"] == "ops@northwind.test" and created.data["ccs"] == ["kim@noc.northwind.test"]


def test_a_routed_sender_not_yet_a_contact_becomes_the_requester(listener, routed):
    send(listener, mail(sender="Jo Admin <jo@northwind.test>", subject="Backups late"))

    ticket = Ticket.objects.get()
    assert (ticket.requester.email, ticket.requester.name, ticket.requester.customer) == (
        "jo@northwind.test",
        "Jo Admin",
        routed,
    )
    assert InboundMessage.objects.get().outcome == Outcome.CREATED


def test_the_desks_own_address_and_the_sender_are_never_copied(listener, routed, settings):
    mail_services.mail_route_add(customer=routed, value="desk.test")  # a customer sharing the desk's domain

    ticket = open_by_mail(listener, Cc=f"Support <{DESK}>, ops@northwind.test")

    assert ticket.requester.email == "ops@northwind.test" and not ticket.ccs.exists()
    assert not Contact.objects.filter(email=DESK).exists()


def test_an_address_at_an_unrouted_domain_in_cc_is_not_added(listener, customer):
    send(
        listener,
        mail(
            to=f"{DESK}, boss@elsewhere.test", subject="Mail sits 30 seconds", headers={"Cc": "Eve <eve@unrouted.test>"}
        ),
    )
    ticket = Ticket.objects.get()

    assert ticket.requester.email == "ops@northwind.test"
    assert not ticket.ccs.exists()
    assert set(Contact.objects.values_list("email", flat=True)) == {"ops@northwind.test"}


def test_a_ccs_reply_threads_onto_the_ticket(listener, routed):
    ticket = open_by_mail(listener, Cc="kim@noc.northwind.test")

    send(
        listener,
        mail(
            sender="kim@noc.northwind.test",
            subject="Re: Mail sits 30 seconds",
            body="Same on mx2.",
            message_id="<kim@noc.northwind.test>",
            headers={"In-Reply-To": OPENING},
        ),
    )

    record = InboundMessage.objects.get(message_id="<kim@noc.northwind.test>")
    assert (record.outcome, record.ticket) == (Outcome.THREADED, ticket)
    assert ticket.events.get(kind=EventKind.REPLY, actor=None).data["from"] == "kim@noc.northwind.test"
    assert Ticket.objects.count() == 1


def test_a_cc_added_on_the_desk_threads_too_without_any_route(listener, customer, tech):
    ticket = open_by_mail(listener)
    lee = contacts.contact_create(customer=customer, email="lee@partner.test", name="Lee")
    services.ticket_set_people(ticket=ticket, requester=ticket.requester, ccs=[lee], by=tech)

    send(
        listener,
        mail(
            sender="lee@partner.test",
            subject=f"Re: [#{ticket.pk}] Mail sits 30 seconds",
            message_id="<lee@partner.test>",
        ),
    )

    assert InboundMessage.objects.get(message_id="<lee@partner.test>").ticket == ticket


def test_the_desks_reply_goes_to_the_requester_with_the_ccs_copied(listener, sink, routed, tech):
    ticket = open_by_mail(listener, Cc="Kim Noc <kim@noc.northwind.test>, ann@northwind.test")

    message, envelope = reply_and_deliver(ticket, tech, sink)

    assert message["To"] == "ops@northwind.test"
    assert message["Cc"] == "ann@northwind.test, kim@noc.northwind.test"
    assert sorted(envelope) == ["ann@northwind.test", "kim@noc.northwind.test", "ops@northwind.test"]
    outbound = OutboundMessage.objects.get()
    assert (outbound.to_address, outbound.cc) == (
        "ops@northwind.test",
        ["ann@northwind.test", "kim@noc.northwind.test"],
    )


def test_a_requester_set_on_the_desk_is_the_addressee_whoever_wrote(listener, sink, routed, tech):
    ticket = open_by_mail(listener)
    boss = contacts.contact_create(customer=routed, email="boss@northwind.test", name="The Boss")
    services.ticket_set_people(ticket=ticket, requester=boss, ccs=[ticket.requester], by=tech)

    message, _ = reply_and_deliver(ticket, tech, sink)

    assert (message["To"], message["Cc"]) == ("boss@northwind.test", "ops@northwind.test")


def test_a_removed_cc_gets_no_more_mail(listener, sink, routed, tech):
    ticket = open_by_mail(listener, Cc="kim@noc.northwind.test")
    contacts.contact_remove(contact=Contact.objects.get(email="kim@noc.northwind.test"), by=tech)

    message, envelope = reply_and_deliver(ticket, tech, sink)

    assert envelope == ["ops@northwind.test"] and message["Cc"] is None


def test_a_colleague_writing_on_the_thread_is_copied_while_routed_without_becoming_a_contact(
    listener, sink, routed, tech
):
    ticket = open_by_mail(listener)
    send(
        listener,
        mail(
            sender="Kim <kim@noc.northwind.test>", subject="Re: Mail sits 30 seconds", headers={"In-Reply-To": OPENING}
        ),
    )

    message, _ = reply_and_deliver(ticket, tech, sink)
    assert (message["To"], message["Cc"]) == ("ops@northwind.test", "kim@noc.northwind.test")
    # Copied as a writer the route vouches for, checked at each reply: no contact, no CCs entry, so
    # removing the route stops the copies (tests/test_mailgate_hijack.py).
    assert not ticket.ccs.exists() and not Contact.objects.filter(email="kim@noc.northwind.test").exists()


def test_a_forged_from_of_another_customers_contact_cannot_join_or_copy_anyone(listener, sink, routed, contoso, tech):
    ticket = open_by_mail(listener)

    # Contoso's contact (or whoever forges their From) answers Northwind's thread, copying Northwind's people.
    send(
        listener,
        mail(
            sender="it@contoso.test",
            subject=f"Re: [#{ticket.pk}] Mail sits 30 seconds",
            message_id="<forged@contoso.test>",
            headers={"In-Reply-To": OPENING, "Cc": "kim@noc.northwind.test"},
        ),
    )

    record = InboundMessage.objects.get(message_id="<forged@contoso.test>")
    assert record.ticket != ticket and record.ticket.customer == contoso  # a ticket of their own
    assert not ticket.events.filter(kind__in=[EventKind.REPLY, EventKind.PEOPLE]).exists()
    assert not ticket.ccs.exists()
    # Northwind's colleague is not Contoso's: not copied on Contoso's ticket, not made anybody's contact.
    assert not record.ticket.ccs.exists()
    assert not Contact.objects.filter(email="kim@noc.northwind.test").exists()
    _, envelope = reply_and_deliver(ticket, tech, sink)
    assert envelope == ["ops@northwind.test"]


def test_mail_from_a_contact_wins_over_a_domain_route_of_another_customer(listener, routed, contoso):
    contacts.contact_create(customer=contoso, email="contractor@northwind.test")

    send(listener, mail(sender="contractor@northwind.test", subject="For Contoso"))

    ticket = Ticket.objects.get()
    assert ticket.customer == contoso and ticket.requester.email == "contractor@northwind.test"
    assert "contact address of Contoso" in InboundMessage.objects.get().reason


def test_a_stranger_filed_under_the_unmatched_customer_is_made_nobodys_contact(listener, settings, contoso):
    settings.TRIAGE_MAIL_UNMATCHED_CUSTOMER = "Contoso"

    send(listener, mail(sender="Eve <eve@unknown.test>", subject="Hello?", headers={"Cc": "it@contoso.test"}))

    ticket = Ticket.objects.get()
    assert ticket.customer == contoso and ticket.requester is None
    assert not Contact.objects.filter(email="eve@unknown.test").exists()
    assert not ticket.ccs.exists()  # a stranger does not choose who the desk copies
