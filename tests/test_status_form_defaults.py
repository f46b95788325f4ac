"""The status form starts at the status the ticket has: "Change status" with only a note never moves it."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import login
from triage import forms, services
from triage.models import EventKind, Status


def test_the_form_starts_at_the_current_status_then_offers_every_allowed_move(ticket, tech):
    services.ticket_change_status(ticket=ticket, status=Status.TRIAGING, by=tech)
    ticket.refresh_from_db()
    form = forms.StatusForm(ticket=ticket)
    assert form["status"].value() == Status.TRIAGING
    assert list(form.fields["status"].widget.choices) == [
        (Status.TRIAGING, "Triaging (now)"),
        (Status.WAITING, "Waiting on customer"),
        (Status.RESOLVED, "Resolved"),
    ]


def test_a_note_with_the_current_status_is_a_note_and_the_status_stays(client, ticket, tech):
    login(client, tech).post(
        reverse("ticket_status", args=[ticket.pk]),
        {"status": ticket.status, "note": "Asked for the maillog", "version": ticket.version},
    )
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW
    assert ticket.events.filter(kind=EventKind.NOTE, body="Asked for the maillog").exists()
    assert not ticket.events.filter(kind=EventKind.STATUS).exists()


def test_the_current_status_without_a_note_says_to_choose_one_and_changes_nothing(client, ticket, tech):
    page = login(client, tech).post(
        reverse("ticket_status", args=[ticket.pk]), {"status": ticket.status, "note": "", "version": ticket.version}
    )
    assert "The ticket is already new: choose the status to move it to, or write a note." in page.content.decode()
    ticket.refresh_from_db()
    assert ticket.version == 1 and ticket.events.count() == 1


def test_a_move_the_workflow_refuses_says_why_in_words(client, ticket, tech):
    page = login(client, tech).post(
        reverse("ticket_status", args=[ticket.pk]), {"status": Status.CLOSED, "note": "", "version": ticket.version}
    )
    assert "A ticket that is new cannot become closed." in page.content.decode()
