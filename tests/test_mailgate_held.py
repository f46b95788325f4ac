"""The Held mail page and the Mail routes page: mail the gateway could not place, taken in by the
real gateway service (`inbound_receive`), filed as a ticket or rejected from the desk; routes
edited in the browser and then obeyed by the gateway."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse

from mailgate import held_services
from mailgate import services as mail_services
from mailgate.models import Attachment, InboundMessage, MailRoute, Outcome
from tests.conftest import login
from tests.mailgate_support import DESK, mail
from triage.models import Customer, EventKind, SlaTier, Ticket

STRANGER = "Kim Newco <kim@newco.test>"


def receive(message) -> InboundMessage:
    """Hand a message to the gateway exactly as the SMTP listener does."""
    return mail_services.inbound_receive(
        raw=message.as_bytes(), envelope_from="kim@newco.test", envelope_to=[DESK], peer="127.0.0.1"
    )


@pytest.fixture
def held(customer) -> InboundMessage:
    record = receive(
        mail(
            sender=STRANGER,
            subject="Our VPN drops every hour",
            message_id="<held1@newco.test>",
            body="Since Monday the tunnel to fw1 drops at :00.",
            attachments=[("vpn.log", "text/plain", b"IKE SA expired\n")],
        )
    )
    assert record.outcome == Outcome.UNMATCHED and record.ticket is None
    return record


def held_page(client) -> str:
    response = client.get(reverse("held_mail"))
    assert response.status_code == 200
    return response.content.decode()


def file_it(client, record, customer, route=""):
    return client.post(reverse("held_mail_ticket", args=[record.pk]), {"customer": customer.pk, "route": route})


def test_the_page_lists_held_and_rejected_mail_newest_first_with_sender_subject_reason_and_text(client, tech, held):
    unreadable = mail_services.inbound_receive(
        raw=b"Subject: no sender here\r\n\r\nhello\r\n", envelope_from=None, envelope_to=[DESK]
    )
    assert unreadable.outcome == Outcome.REJECTED
    receive(mail(sender="Olga Ops <ops@northwind.test>", subject="Placed mail"))  # became a ticket: not listed
    page = held_page(login(client, tech))
    assert page.index(f'id="held-{unreadable.pk}"') < page.index(f'id="held-{held.pk}"')
    assert "Kim Newco &lt;kim@newco.test&gt;" in page and "Our VPN drops every hour" in page
    assert "no route for the sender" in page and "Since Monday the tunnel to fw1 drops at :00." in page
    assert "malformed: no From header" in page and "no sender here" in page  # the raw text, as text
    assert "Placed mail" not in page
    assert 'href="/mail/held/"' in page


def test_filing_a_held_message_opens_one_ticket_once_and_it_leaves_the_list(client, admin_user, customer, held):
    login(client, admin_user)
    first = file_it(client, held, customer)
    (ticket,) = Ticket.objects.all()
    assert first.status_code == 302 and first["Location"] == reverse("ticket", args=[ticket.pk])
    again = file_it(client, held, customer)  # the double click
    assert again.status_code == 302 and again["Location"] == reverse("ticket", args=[ticket.pk])
    assert Ticket.objects.count() == 1
    followed = client.get(again["Location"]).content.decode()
    assert f"already filed as {ticket.reference} by ada" in followed

    assert ticket.customer == customer and ticket.subject == "Our VPN drops every hour"
    assert "From: Kim Newco <kim@newco.test>" in ticket.description and "tunnel to fw1" in ticket.description
    assert set(ticket.tags.values_list("name", flat=True)) == {"email", "held-mail"}
    held.refresh_from_db()
    assert (held.outcome, held.ticket, held.customer, held.decided_by) == (
        Outcome.CREATED,
        ticket,
        customer,
        admin_user,
    )
    assert held.event.kind == EventKind.CREATED and held.decided_at is not None
    assert list(Attachment.objects.filter(ticket=ticket).values_list("filename", flat=True)) == ["vpn.log"]
    note = ticket.events.get(kind=EventKind.NOTE)
    assert note.actor == admin_user and "Filed from held mail by ada" in note.body
    page = held_page(client)
    assert f'id="held-{held.pk}"' not in page
    assert ticket.reference in page  # under "Recently decided", with who


def test_a_second_filing_is_refused_by_the_service_itself(admin_user, tech, customer, held):
    held_services.held_file_ticket(message_id=held.pk, customer=customer, by=admin_user)
    with pytest.raises(held_services.AlreadyDecided, match="already filed as #"):
        held_services.held_file_ticket(message_id=held.pk, customer=customer, by=tech)
    with pytest.raises(held_services.AlreadyDecided):
        held_services.held_reject(message_id=held.pk, by=tech)
    assert Ticket.objects.count() == 1 and InboundMessage.objects.get(pk=held.pk).decided_by == admin_user


@pytest.mark.parametrize(
    "route,colleague,routed",
    [
        ("domain", "Jo <jo@newco.test>", "newco.test"),
        ("address", STRANGER, "kim@newco.test"),
    ],
)
def test_a_route_added_while_filing_sends_the_senders_next_mail_straight_to_the_customer(
    client, admin_user, customer, held, route, colleague, routed
):
    login(client, admin_user)
    response = file_it(client, held, customer, route=route)
    assert response.status_code == 302
    assert MailRoute.objects.get(value=routed).customer == customer

    # Routed now, the held message's sender became the customer's contact, the filed ticket's requester.
    filed = Ticket.objects.get()
    assert (filed.requester.email, filed.requester.name, filed.requester.customer) == (
        "kim@newco.test",
        "Kim Newco",
        customer,
    )
    follow_up = receive(mail(sender=colleague, subject="VPN again", message_id="<next@newco.test>"))
    assert follow_up.outcome == Outcome.CREATED and follow_up.ticket.customer == customer
    # Kim is matched as the contact she now is; Jo, a colleague, by the domain route.
    assert ("contact address of Northwind Hosting" if route == "address" else f"route {routed}") in follow_up.reason
    assert Ticket.objects.count() == 2


def test_a_route_taken_by_another_customer_files_nothing_and_says_why(client, admin_user, customer, held):
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    mail_services.mail_route_add(customer=other, value="newco.test")
    login(client, admin_user)
    response = file_it(client, held, customer, route="domain")
    assert response.status_code == 400
    assert "newco.test already routes to Contoso." in response.content.decode()
    held.refresh_from_db()
    assert held.outcome == Outcome.UNMATCHED and held.decided_by is None and not Ticket.objects.exists()


def test_a_tech_files_held_mail_but_may_not_add_a_route(client, tech, customer, held):
    login(client, tech)
    assert 'value="domain"' not in held_page(client)  # the choice is not offered
    assert file_it(client, held, customer, route="domain").status_code == 403
    assert not Ticket.objects.exists() and not MailRoute.objects.exists()
    assert file_it(client, held, customer).status_code == 302
    assert Ticket.objects.get().customer == customer


def test_rejecting_records_who_and_takes_it_off_the_list(client, tech, held):
    login(client, tech)
    response = client.post(reverse("held_mail_reject", args=[held.pk]))
    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.outcome, held.decided_by, held.ticket) == (Outcome.DISMISSED, tech, None)
    decided_at = held.decided_at
    page = held_page(client)
    assert f'id="held-{held.pk}"' not in page
    assert "Rejected on the desk" in page and "tess" in page
    client.post(reverse("held_mail_reject", args=[held.pk]))  # again: nothing changes
    held.refresh_from_db()
    assert held.decided_at == decided_at and not Ticket.objects.exists()


@pytest.mark.parametrize("who", ["manager", "outsider"])
def test_a_manager_or_an_outsider_can_neither_see_nor_act(client, request, customer, held, who):
    login(client, request.getfixturevalue(who))
    assert client.get(reverse("held_mail")).status_code == 403
    assert file_it(client, held, customer).status_code == 403
    assert client.post(reverse("held_mail_reject", args=[held.pk])).status_code == 403
    assert client.post(reverse("mail_routes"), {"customer": customer.pk, "value": "newco.test"}).status_code == 403
    held.refresh_from_db()
    assert held.outcome == Outcome.UNMATCHED and held.decided_by is None
    assert not Ticket.objects.exists() and not MailRoute.objects.exists()


def test_hostile_subjects_senders_and_bodies_are_shown_as_text(client, admin_user):
    receive(
        mail(
            sender='"<img src=x onerror=alert(1)>" <evil@bad.test>',
            subject="<script>alert('s')</script>",
            body="<b>bold</b> <iframe src=//bad.test></iframe>",
            message_id="<x1@bad.test>",
        )
    )
    html_only = mail(sender="evil@bad.test", subject="html", message_id="<x2@bad.test>")
    html_only.set_content("<p>Click <a href='//bad.test'>here</a></p><img src=//bad.test/px.gif>", subtype="html")
    receive(html_only)
    page = held_page(login(client, admin_user))
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;s&#x27;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt; &lt;iframe src=//bad.test&gt;" in page
    assert "<a href='//bad.test'" not in page and "bad.test/px.gif" not in page and "Click here" in page


def test_a_rejected_unreadable_message_can_still_be_filed(client, admin_user, customer):
    record = mail_services.inbound_receive(
        raw=b"Subject: lost\r\n\r\nhelp\r\n", envelope_from="x@y.test", envelope_to=[DESK]
    )
    login(client, admin_user)
    assert file_it(client, record, customer).status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.subject == "(no subject)" and "could not be read: no From header" in ticket.description
    assert "From: x@y.test" in ticket.description


def test_an_admin_adds_and_deletes_routes_validated_as_the_command_does(client, admin_user, customer):
    login(client, admin_user)
    assert client.post(reverse("mail_routes"), {"customer": customer.pk, "value": "@NewCo.TEST "}).status_code == 302
    route = MailRoute.objects.get()
    assert (route.value, route.kind, route.customer) == ("newco.test", "domain", customer)
    page = client.get(reverse("mail_routes")).content.decode()
    assert 'data-value="newco.test"' in page and 'href="/mail/routes/"' in page

    bad = client.post(reverse("mail_routes"), {"customer": customer.pk, "value": "not a domain"})
    assert bad.status_code == 400 and "Enter an e-mail address or a domain name" in bad.content.decode()
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    taken = client.post(reverse("mail_routes"), {"customer": other.pk, "value": "newco.test"})
    assert taken.status_code == 400 and "newco.test already routes to Northwind Hosting." in taken.content.decode()
    assert MailRoute.objects.count() == 1

    assert client.post(reverse("mail_route_delete", args=[route.pk])).status_code == 302
    assert not MailRoute.objects.exists()
    assert receive(mail(sender=STRANGER, message_id="<after@newco.test>")).outcome == Outcome.UNMATCHED


def test_a_route_added_on_the_page_routes_the_next_mail(client, admin_user, customer):
    login(client, admin_user)
    client.post(reverse("mail_routes"), {"customer": customer.pk, "value": "kim@newco.test"})
    record = receive(mail(sender=STRANGER, message_id="<routed@newco.test>"))
    assert record.outcome == Outcome.CREATED and record.ticket.customer == customer


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers by locking the whole file")
def test_two_techs_filing_the_same_message_at_the_same_moment_open_one_ticket(admin_user, tech, customer, held):
    # Both claims race for the row: PostgreSQL makes the second UPDATE wait for the first
    # transaction, then re-reads the row, finds it no longer held, and updates nothing.
    start, results = threading.Barrier(2), []

    def file_as(user):
        start.wait()
        try:
            results.append(held_services.held_file_ticket(message_id=held.pk, customer=customer, by=user))
        except held_services.AlreadyDecided as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=file_as, args=(user,)) for user in (admin_user, tech)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(type(r).__name__ for r in results) == ["AlreadyDecided", "Filed"]
    assert Ticket.objects.count() == 1
