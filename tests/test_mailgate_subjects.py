"""Subjects become mail headers: CR/LF is refused where a subject comes in (API,
alerts, the browser form), and a message that cannot be built is a permanent,
visible failure rather than two days of silent retries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from api.services import token_create
from mailgate import tasks
from mailgate.models import OutboundMessage, OutboundState
from tests.conftest import login
from triage import services
from triage.models import EventKind, Ticket

# The sink fixture: a real SMTP relay on a loopback port.
pytest_plugins = ["tests.mailgate_fixtures"]

BROKEN = {
    "crlf": "Mail stuck\r\nBcc: everyone@evil.test",
    "lf": "Mail stuck\nBcc: x@evil.test",
    "cr": "Mail stuck\rX-Injected: 1",
}


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='test')[1]}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("subject", BROKEN.values(), ids=BROKEN.keys())
def test_the_api_refuses_a_ticket_subject_with_a_line_break(tech, customer, subject):
    response = api_as(tech).post(
        reverse("api:tickets"), {"customer": customer.pk, "subject": subject, "description": "x"}, format="json"
    )

    assert response.status_code == 400 and "subject" in response.json()
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_an_alert_with_a_line_break_in_its_subject_is_refused(tech, server):
    response = api_as(tech).post(
        reverse("api:alerts"),
        {
            "customer": server.customer.name,
            "server": server.address,
            "subject": BROKEN["crlf"],
            "description": "queue at 5000",
        },
        format="json",
    )

    assert response.status_code == 400 and "subject" in response.json()
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_the_new_ticket_form_refuses_a_subject_with_a_line_break(client, tech, customer):
    response = login(client, tech).post(
        reverse("ticket_new"), {"customer": customer.pk, "subject": BROKEN["crlf"], "description": "x", "priority": 3}
    )

    assert response.status_code == 200 and "one line" in response.content.decode()
    assert not Ticket.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_ticket_stored_with_a_broken_subject_still_reaches_the_customer_on_one_line(sink, customer, tech):
    ticket = services.ticket_create(subject=BROKEN["crlf"], description="x", customer=customer)

    assert tasks.notify_event(services.ticket_reply(ticket=ticket, author=tech, body="On it.").pk) == {
        "customer": "sent"
    }
    (sent,) = sink.messages
    assert sent["Subject"] == f"Re: [#{ticket.pk}] Mail stuck Bcc: everyone@evil.test"
    assert sink.envelopes == [["ops@northwind.test"]]


@pytest.mark.django_db(transaction=True)
def test_a_message_that_cannot_be_built_fails_for_good_visibly_and_the_sweep_goes_on(sink, ticket, tech):
    long_ago = timezone.now() - timedelta(minutes=30)
    # Planned before subjects were validated: the header cannot be written.
    broken, fine = (
        OutboundMessage.objects.create(
            event=services.ticket_reply(ticket=ticket, author=tech, body=body),
            ticket=ticket,
            audience="customer",
            to_address="ops@northwind.test",
            subject=subject,
            body=body,
            message_id=f"<{body}@desk.test>",
            created_at=long_ago,
        )
        for subject, body in [(BROKEN["crlf"], "broken"), ("Re: fine", "fine")]
    )

    assert tasks.send_pending() == 1

    broken.refresh_from_db()
    assert broken.state == OutboundState.FAILED and "BadHeaderError" in broken.last_error
    assert tasks.send_pending() == 0
    broken.refresh_from_db()
    assert broken.attempts == 1  # not retried
    note = ticket.events.get(kind=EventKind.NOTE)
    assert "ops@northwind.test" in note.body and "BadHeaderError" in note.body and note.data["failed"] is True
    assert [m["Message-ID"] for m in sink.messages] == [fine.message_id]
