"""Notifications sent by the worker through a real SMTP sink, threaded so the
customer's answer comes back to the same ticket through the desk's listener."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailgate import tasks
from mailgate.models import InboundMessage, OutboundMessage, OutboundState, Outcome
from tests.conftest import free_port, login
from tests.mailgate_support import DESK, Sink, mail, send
from triage import services
from triage.celery import app
from triage.models import EventKind, Ticket

# The listener and sink fixtures: real SMTP peers on loopback ports.
pytest_plugins = ["tests.mailgate_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mailed_ticket(listener, customer) -> Ticket:
    send(listener, mail(subject="Mail sits 30 seconds", message_id="<opening@northwind.test>"))
    return Ticket.objects.get()


def test_a_staff_reply_mails_the_customer_with_threading_headers(sink, mailed_ticket, tech):
    event = services.ticket_reply(ticket=mailed_ticket, author=tech, body="Please run `exim -bV`.")

    assert tasks.notify_event(event.pk) == {"customer": "sent"}

    (sent,) = sink.messages
    record = OutboundMessage.objects.get()
    assert sent["To"] == "ops@northwind.test" and sent["From"] == DESK and sent["Reply-To"] == DESK
    assert f"[#{mailed_ticket.pk}]" in sent["Subject"]
    assert sent["Message-ID"] == record.message_id and record.state == OutboundState.SENT
    assert sent["In-Reply-To"] == "<opening@northwind.test>"
    assert sent["References"] == "<opening@northwind.test>"
    assert "Please run `exim -bV`." in sent.get_content()


def test_the_customers_answer_to_a_notification_comes_back_to_the_same_ticket(listener, sink, mailed_ticket, tech):
    services.ticket_assign(ticket=mailed_ticket, assignee=tech, by=tech)
    tasks.notify_event(services.ticket_reply(ticket=mailed_ticket, author=tech, body="Which client?").pk)
    (question,) = sink.messages

    answer = mail(
        subject="Re: our mail problem",
        body="Outlook 2016.\n\n> Which client?",
        message_id="<answer@northwind.test>",
        headers={
            "In-Reply-To": question["Message-ID"],
            "References": f"{question['References']} {question['Message-ID']}",
        },
    )
    send(listener, answer)

    assert Ticket.objects.count() == 1
    reply = mailed_ticket.events.filter(kind=EventKind.REPLY, actor=None).get()
    assert "Outlook 2016." in reply.body and "Which client?" not in reply.body
    assert InboundMessage.objects.get(message_id="<answer@northwind.test>").outcome == Outcome.THREADED

    # The assignee hears about it, and the next reply threads after the customer's answer.
    assert tasks.notify_event(reply.pk) == {"assignee": "sent"}
    assert sink.messages[-1]["To"] == tech.email and "Outlook 2016." in sink.messages[-1].get_content()
    tasks.notify_event(services.ticket_reply(ticket=mailed_ticket, author=tech, body="Thanks.").pk)
    assert sink.messages[-1]["In-Reply-To"] == "<answer@northwind.test>"
    assert sink.messages[-1]["References"].split() == [
        "<opening@northwind.test>",
        question["Message-ID"],
        "<answer@northwind.test>",
    ]


def test_an_assignee_is_told_of_a_ticket_assigned_to_them_but_not_of_their_own_pick(sink, ticket, tech, admin_user):
    by_admin = services.ticket_assign(ticket=ticket, assignee=tech, by=admin_user).events.latest("id")
    tasks.notify_event(by_admin.pk)
    (notice,) = sink.messages
    assert notice["To"] == tech.email and "Assigned to you" in notice["Subject"]
    assert notice["Auto-Submitted"] == "auto-generated"
    assert f"/tickets/{ticket.pk}/" in notice.get_content()

    services.ticket_assign(ticket=ticket, assignee=None, by=admin_user)
    to_self = services.ticket_assign(ticket=ticket, assignee=admin_user, by=admin_user).events.latest("id")
    assert tasks.notify_event(to_self.pk) == {}
    assert len(sink.messages) == 1


def test_internal_notes_and_auto_replies_mail_nobody(listener, sink, mailed_ticket, tech):
    services.ticket_assign(ticket=mailed_ticket, assignee=tech, by=tech)
    note = services.ticket_add_note(ticket=mailed_ticket, author=tech, body="Customer's admin is clueless.")
    send(listener, mail(subject=f"Out of office [#{mailed_ticket.pk}]", headers={"Auto-Submitted": "auto-replied"}))

    assert tasks.notify_event(note.pk) == {}
    assert not mailed_ticket.events.filter(kind=EventKind.REPLY).exists()
    assert sink.messages == [] and not OutboundMessage.objects.exists()


def test_a_refused_connection_is_retried_and_the_mail_goes_out_exactly_once(settings, mailed_ticket, tech):
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    event = services.ticket_reply(ticket=mailed_ticket, author=tech, body="On it.")

    with pytest.raises(ConnectionRefusedError):  # the sink is down: the task's autoretry takes it from here
        tasks.notify_event(event.pk)
    record = OutboundMessage.objects.get()
    assert record.state == OutboundState.PENDING and "Connection refused" in record.last_error
    assert issubclass(ConnectionRefusedError, tasks.notify_event.autoretry_for)

    late_sink = Sink(port).start()
    try:
        assert tasks.notify_event(event.pk) == {"customer": "sent"}
        assert tasks.notify_event(event.pk) == {"customer": "sent"}  # a redelivered task sends nothing more
    finally:
        late_sink.stop()
    assert len(late_sink.messages) == 1 and late_sink.messages[0]["Message-ID"] == record.message_id
    record.refresh_from_db()
    assert (record.state, record.attempts) == (OutboundState.SENT, 2)


def test_a_permanent_refusal_is_recorded_and_not_retried(sink, mailed_ticket, tech):
    mailed_ticket.customer.contacts.update(email="gone@northwind.test")
    InboundMessage.objects.update(from_address="gone@northwind.test")

    assert tasks.notify_event(services.ticket_reply(ticket=mailed_ticket, author=tech, body="Hello?").pk) == {
        "customer": "failed"
    }
    record = OutboundMessage.objects.get()
    assert record.state == OutboundState.FAILED and "550" in record.last_error


def test_a_reply_from_the_browser_reaches_the_customer_through_the_worker(
    client, sink, mailed_ticket, tech, django_capture_on_commit_callbacks
):
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = login(client, tech).post(
                reverse("ticket_reply", args=[mailed_ticket.pk]), {"body": "We are on it."}
            )
    finally:
        app.conf.task_always_eager = False

    assert response.status_code == 302
    (sent,) = sink.messages
    assert "We are on it." in sent.get_content() and sent["To"] == "ops@northwind.test"
