"""The status workflow: allowed moves, refused moves, reopening, and the timeline they leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from tests.conftest import login
from triage import services, workflow
from triage.models import EventKind, Status, TicketEvent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

ALLOWED = [
    ("new", "triaging"),
    ("new", "waiting"),
    ("new", "resolved"),
    ("triaging", "waiting"),
    ("triaging", "resolved"),
    ("waiting", "triaging"),
    ("waiting", "resolved"),
    ("resolved", "closed"),
    ("resolved", "triaging"),
    ("closed", "triaging"),
]
ALL_PAIRS = [(a, b) for a in Status.values for b in Status.values]


@pytest.mark.parametrize("current,target", ALL_PAIRS)
def test_only_the_workflow_transitions_are_allowed(current, target):
    if (current, target) in ALLOWED:
        workflow.check_transition(current=current, target=target)
    else:
        with pytest.raises(workflow.TransitionRefused):
            workflow.check_transition(current=current, target=target)


def _walk(ticket, *statuses, by, start=T0):
    at = start
    for status in statuses:
        at += timedelta(minutes=10)
        ticket = services.ticket_change_status(ticket=ticket, status=status, by=by, now=at)
    return ticket


def test_a_ticket_walks_the_whole_workflow_and_every_step_is_on_the_timeline(ticket, tech):
    ticket = _walk(ticket, "triaging", "waiting", "triaging", "resolved", "closed", by=tech)
    assert ticket.status == Status.CLOSED
    assert ticket.resolved_at is not None and ticket.closed_at is not None
    moves = [(e.data["from"], e.data["to"]) for e in ticket.events.filter(kind=EventKind.STATUS)]
    assert moves == [
        ("new", "triaging"),
        ("triaging", "waiting"),
        ("waiting", "triaging"),
        ("triaging", "resolved"),
        ("resolved", "closed"),
    ]


def test_a_refused_transition_changes_nothing(ticket, tech):
    events_before = ticket.events.count()
    with pytest.raises(workflow.TransitionRefused, match="cannot become closed"):
        services.ticket_change_status(ticket=ticket, status=Status.CLOSED, by=tech, now=T0)
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW
    assert ticket.events.count() == events_before


def test_nothing_goes_back_to_new(ticket, tech):
    ticket = _walk(ticket, "triaging", by=tech)
    with pytest.raises(workflow.TransitionRefused):
        services.ticket_change_status(ticket=ticket, status=Status.NEW, by=tech, now=T0)


def test_reopening_a_closed_ticket_clears_its_resolution(ticket, tech):
    ticket = _walk(ticket, "triaging", "resolved", "closed", "triaging", by=tech)
    assert ticket.status == Status.TRIAGING
    assert ticket.resolved_at is None and ticket.closed_at is None
    last = ticket.events.filter(kind=EventKind.STATUS).last()
    assert last.data["reopened"] is True


def test_the_browser_shows_a_refused_transition_as_a_form_error(client, tech, ticket):
    login(client, tech)
    response = client.post(reverse("ticket_status", args=[ticket.pk]), {"status": "closed"})
    assert response.status_code == 200
    # A sentence, not "Select a valid choice" (what a stale tab used to get).
    assert "A ticket that is new cannot become closed." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW


def test_the_status_form_starts_at_the_current_status_and_offers_only_the_allowed_next_ones(client, tech, ticket):
    login(client, tech)
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    status_select = page.split('name="status"', 1)[1].split("</select>", 1)[0]
    assert '<option value="new" selected>New (now)</option>' in status_select
    assert 'value="triaging"' in status_select and 'value="resolved"' in status_select
    assert 'value="closed"' not in status_select


def test_the_timeline_is_append_only(ticket):
    event = ticket.events.first()
    event.body = "rewritten history"
    with pytest.raises(TypeError, match="append-only"):
        event.save()
    with pytest.raises(TypeError, match="append-only"):
        TicketEvent.objects.filter(ticket=ticket).update(body="rewritten")
    event.refresh_from_db()
    assert event.body != "rewritten history"
