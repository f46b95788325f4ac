"""Mail to the desk over real SMTP: the product's listener on a loopback port,
mail sent with smtplib, and what it becomes on the desk."""

from __future__ import annotations

import smtplib
from email.policy import SMTP

import pytest
from django.urls import reverse

from mailgate import services as mail_services
from mailgate.models import Attachment, InboundMessage, OutboundMessage, Outcome
from tests.conftest import login
from tests.mailgate_support import DESK, LIMIT, mail, send
from triage import services
from triage.models import Customer, EventKind, SlaTier, Status, Ticket

# The listener and sink fixtures: real SMTP peers on loopback ports.
pytest_plugins = ["tests.mailgate_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)


def only_ticket() -> Ticket:
    (ticket,) = Ticket.objects.all()
    return ticket


def test_new_mail_opens_a_ticket_for_the_senders_customer_with_body_and_attachment(listener, customer):
    log = b"Jan 1 00:00:01 mx1 postfix/smtpd[1]: connect from unknown\n"
    send(
        listener,
        mail(
            body="Outlook users wait 30 s after Send.",
            message_id="<first@northwind.test>",
            attachments=[("maillog.txt", "text/plain", log), ("shot.png", "image/png", b"\x89PNG\0\1")],
        ),
    )

    ticket = only_ticket()
    assert ticket.customer == customer
    assert ticket.subject == "Mail stuck in queue"
    assert "Outlook users wait 30 s after Send." in ticket.description
    assert ticket.created_by is None and "email" in ticket.tags.values_list("name", flat=True)
    record = InboundMessage.objects.get()
    assert (record.outcome, record.ticket, record.message_id) == (Outcome.CREATED, ticket, "<first@northwind.test>")
    assert "contact address of Northwind Hosting" in record.reason
    assert b"Outlook users wait" in bytes(record.raw)
    assert record.event.kind == EventKind.CREATED
    files = {a.filename: (a.content_type, bytes(a.content)) for a in Attachment.objects.filter(ticket=ticket)}
    assert files == {"maillog.txt": ("text/plain", log), "shot.png": ("image/png", b"\x89PNG\0\1")}


def test_a_colleague_at_a_routed_sub_domain_files_for_the_same_customer(listener, customer):
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    mail_services.mail_route_add(customer=customer, value="northwind.test")
    mail_services.mail_route_add(customer=other, value="eu.northwind.test")

    send(listener, mail(sender="kim@noc.northwind.test", subject="Disk full"))
    send(listener, mail(sender="jo@eu.northwind.test", subject="Backups late"))

    assert Ticket.objects.get(subject="Disk full").customer == customer
    assert Ticket.objects.get(subject="Backups late").customer == other  # the most specific route wins


def test_a_reply_naming_the_ticket_lands_on_it_as_the_customers_reply_without_the_quote(listener, ticket):
    body = (
        "It still happens after the restart.\n\n"
        "On Tue, 1 Jul 2025 at 10:00, Desk <support@desk.test> wrote:\n> Please restart exim.\n"
    )
    send(listener, mail(subject=f"Re: [#{ticket.pk}] Mail sits 30 seconds", body=body))

    assert Ticket.objects.count() == 1
    reply = ticket.events.get(kind=EventKind.REPLY)
    assert reply.actor is None and reply.data["via"] == "email" and reply.data["from"] == "ops@northwind.test"
    assert "It still happens after the restart." in reply.body
    assert "Please restart exim" not in reply.body
    record = InboundMessage.objects.get()
    assert (record.outcome, record.ticket, record.event) == (Outcome.THREADED, ticket, reply)
    assert b"Please restart exim" in bytes(record.raw)  # the full message is kept


def test_a_reply_by_in_reply_to_threads_onto_the_ticket_of_the_message_it_answers(listener, customer):
    send(listener, mail(subject="Slow IMAP", message_id="<start@northwind.test>"))
    send(
        listener,
        mail(
            subject="more logs",
            message_id="<second@northwind.test>",
            headers={"In-Reply-To": "<start@northwind.test>", "References": "<start@northwind.test>"},
        ),
    )

    ticket = only_ticket()
    assert ticket.events.filter(kind=EventKind.REPLY).count() == 1
    assert InboundMessage.objects.get(message_id="<second@northwind.test>").outcome == Outcome.THREADED


def test_a_ticket_reference_from_another_customers_sender_opens_a_new_ticket(listener, ticket):
    Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold")).contacts.create(
        email="it@contoso.test"
    )

    send(listener, mail(sender="it@contoso.test", subject=f"[#{ticket.pk}] guessed number"))

    assert not ticket.events.filter(kind=EventKind.REPLY).exists()
    assert Ticket.objects.exclude(pk=ticket.pk).get().customer.name == "Contoso"


def test_a_customer_reply_puts_a_waiting_ticket_back_into_triage(listener, ticket, tech):
    services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=tech)

    send(listener, mail(subject=f"Re: [#{ticket.pk}] done", body="Here are the logs."))

    ticket.refresh_from_db()
    assert ticket.status == Status.TRIAGING and ticket.waiting_since is None


def test_a_reply_to_a_closed_ticket_opens_a_follow_up(listener, ticket, tech):
    services.ticket_change_status(ticket=ticket, status=Status.RESOLVED, by=tech)
    services.ticket_change_status(ticket=ticket, status=Status.CLOSED, by=tech)

    send(listener, mail(subject=f"Re: [#{ticket.pk}] it is back"))

    follow_up = Ticket.objects.exclude(pk=ticket.pk).get()
    assert f"Follow-up to closed ticket #{ticket.pk}." in follow_up.description


MACHINES = {
    "auto-submitted": ({"Auto-Submitted": "auto-replied"}, None, Outcome.AUTO_REPLY),
    "precedence bulk": ({"Precedence": "bulk"}, None, Outcome.AUTO_REPLY),
    "x-autoreply": ({"X-Autoreply": "yes"}, None, Outcome.AUTO_REPLY),
    "empty envelope sender": ({}, "", Outcome.BOUNCE),
    "empty return-path": ({"Return-Path": "<>"}, None, Outcome.BOUNCE),
}


@pytest.mark.parametrize("headers,envelope_from,outcome", MACHINES.values(), ids=MACHINES.keys())
def test_auto_replies_are_recorded_and_ignored(listener, ticket, headers, envelope_from, outcome):
    send(listener, mail(subject=f"Out of office: [#{ticket.pk}]", headers=headers), envelope_from=envelope_from)

    record = InboundMessage.objects.get()
    assert record.outcome == outcome and record.reason
    assert not ticket.events.filter(kind=EventKind.REPLY).exists()
    assert Ticket.objects.count() == 1 and not OutboundMessage.objects.exists()


def test_a_delivery_status_report_from_mailer_daemon_is_a_bounce_linked_to_its_ticket(listener, ticket, tech):
    event = services.ticket_reply(ticket=ticket, author=tech, body="Try this.")
    (sent,) = mail_services.outbound_plan(event=event)
    dsn = mail(
        sender="MAILER-DAEMON@mx.northwind.test",
        subject="Undelivered Mail Returned to Sender",
        headers={"In-Reply-To": sent.message_id},
    )
    dsn.make_mixed()
    dsn.set_type("multipart/report")
    dsn.set_param("report-type", "delivery-status")

    send(listener, dsn, envelope_from="")

    record = InboundMessage.objects.get()
    assert (record.outcome, record.ticket) == (Outcome.BOUNCE, ticket)
    assert not ticket.events.filter(kind=EventKind.REPLY, actor=None).exists()


def test_an_oversized_message_is_refused_with_552_and_recorded(listener, customer):
    big = mail(body="x" * 70 + ("\n" + "y" * 70) * (LIMIT // 70))
    with pytest.raises(smtplib.SMTPSenderRefused) as declared:  # smtplib declares SIZE at MAIL FROM
        send(listener, big)
    assert declared.value.smtp_code == 552

    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp:  # an undeclared size is caught in DATA
        smtp.ehlo()
        assert smtp.mail("ops@northwind.test")[0] == 250
        assert smtp.rcpt(DESK)[0] == 250
        code, reply = smtp.data(big.as_bytes(policy=SMTP))
        assert code == 552 and b"too big" in reply
        # The session goes on: the next message is taken.
        assert smtp.sendmail("ops@northwind.test", [DESK], mail(subject="small").as_bytes(policy=SMTP)) == {}

    refused = InboundMessage.objects.filter(outcome=Outcome.REJECTED)
    assert refused.count() == 2 and all("too big" in r.reason for r in refused)
    assert refused.filter(envelope_to=[DESK]).exists()
    assert Ticket.objects.get().subject == "small"


def test_a_malformed_message_is_rejected_with_the_reason_and_kept(listener, customer):
    raw = b"Subject: no sender here\r\n\r\nWho am I?\r\n"
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.sendmail("ops@northwind.test", [DESK], raw)
    assert refused.value.smtp_code == 554 and b"no From header" in refused.value.smtp_error

    record = InboundMessage.objects.get()
    assert record.outcome == Outcome.REJECTED and "no From header" in record.reason
    assert bytes(record.raw).startswith(b"Subject: no sender here")
    assert not Ticket.objects.exists()


def test_mail_for_another_address_is_refused_at_rcpt(listener, customer):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(listener, mail(to="root@desk.test"), to=("root@desk.test",))
    assert refused.value.recipients["root@desk.test"][0] == 550
    assert not InboundMessage.objects.exists()


def test_a_redelivered_message_does_not_open_a_second_ticket(listener, customer):
    message = mail(message_id="<once@northwind.test>")
    send(listener, message)
    send(listener, message)

    assert Ticket.objects.count() == 1
    assert InboundMessage.objects.get().redeliveries == 1


def test_mail_from_an_unknown_sender_is_held_or_filed_under_the_unmatched_customer(listener, customer, settings):
    send(listener, mail(sender="stranger@elsewhere.test", subject="Who do I ask?"))
    assert InboundMessage.objects.get().outcome == Outcome.UNMATCHED and not Ticket.objects.exists()

    triage_bin = Customer.objects.create(name="Unmatched mail", sla_tier=SlaTier.objects.get(name="Standard"))
    settings.TRIAGE_MAIL_UNMATCHED_CUSTOMER = "Unmatched mail"
    send(listener, mail(sender="stranger@elsewhere.test", subject="Anyone there?"))

    ticket = only_ticket()
    assert ticket.customer == triage_bin
    assert set(ticket.tags.values_list("name", flat=True)) == {"email", "unmatched-sender"}


def test_staff_see_attachments_on_the_ticket_escaped_and_download_them_safely(
    listener, customer, client, tech, outsider
):
    send(listener, mail(attachments=[("<img src=x onerror=alert(1)>.html", "text/html", b"<script>1</script>")]))
    ticket = only_ticket()
    attachment = Attachment.objects.get()

    page = login(client, tech).get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;.html" in page and "<img src=x" not in page
    response = client.get(reverse("mail_attachment", args=[attachment.pk]))
    assert response.status_code == 200 and response.content == b"<script>1</script>"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"

    client.logout()
    assert login(client, outsider).get(reverse("mail_attachment", args=[attachment.pk])).status_code == 403


def test_mail_threading_onto_a_merged_ticket_lands_on_the_ticket_it_was_merged_into(listener, customer, tech):
    from triage import merging

    send(listener, mail(subject="Slow IMAP", message_id="<first@northwind.test>"))
    send(listener, mail(subject="IMAP slow again", message_id="<dup@northwind.test>"))
    survivor, duplicate = Ticket.objects.order_by("pk")
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)

    send(
        listener,
        mail(
            subject="more logs",
            message_id="<third@northwind.test>",
            body="By reference.",
            headers={"In-Reply-To": "<dup@northwind.test>", "References": "<dup@northwind.test>"},
        ),
    )
    send(listener, mail(subject=f"Re: [#{duplicate.pk}] IMAP slow again", body="By number."))

    assert Ticket.objects.count() == 2  # no follow-up ticket for the closed, merged one
    replies = survivor.events.filter(kind=EventKind.REPLY).order_by("id")
    assert ["By reference." in replies[0].body, "By number." in replies[1].body] == [True, True]
    assert not duplicate.events.filter(kind=EventKind.REPLY).exists()
    by_reference, by_number = InboundMessage.objects.filter(outcome=Outcome.THREADED).order_by("pk")
    assert by_reference.ticket == survivor and by_number.ticket == survivor
    assert by_number.reason.endswith(f"subject names #{duplicate.pk}, which was merged into #{survivor.pk}")


def test_a_stranger_naming_a_merged_ticket_still_does_not_reach_its_survivor(listener, customer, tech):
    from triage import merging

    send(listener, mail(subject="Slow IMAP"))
    send(listener, mail(subject="IMAP slow again"))
    survivor, duplicate = Ticket.objects.order_by("pk")
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)

    send(listener, mail(sender="eve@elsewhere.test", subject=f"Re: [#{duplicate.pk}] IMAP slow again"))

    assert not survivor.events.filter(kind=EventKind.REPLY).exists()
    assert InboundMessage.objects.filter(from_address="eve@elsewhere.test").get().outcome == Outcome.UNMATCHED


def test_the_mail_attachments_of_a_merged_ticket_are_listed_on_its_survivor(listener, customer, tech):
    from mailgate.selectors import ticket_attachments
    from triage import merging

    send(listener, mail(subject="Slow IMAP"))
    send(listener, mail(subject="IMAP slow again", attachments=[("imap.log", "text/plain", b"slow\n")]))
    survivor, duplicate = Ticket.objects.order_by("pk")
    assert ticket_attachments(ticket=survivor) == []
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)
    assert [a.filename for a in ticket_attachments(ticket=survivor)] == ["imap.log"]
