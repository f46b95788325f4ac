"""SLA deadlines from the customer's tier, pauses while waiting, the at-risk window and breaches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from triage import services, sla
from triage.models import Customer, EventKind, SlaTier, Status

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _file(customer, priority, *, by, at=T0):
    return services.ticket_create(
        subject="Disk full", description="/var at 100%", customer=customer, priority=priority, created_by=by, now=at
    )


@pytest.mark.parametrize(
    "tier,priority,first,resolution",
    [
        ("Platinum", 1, 15, 4 * 60),
        ("Gold", 2, 60, 24 * 60),
        ("Standard", 4, 24 * 60, 240 * 60),
    ],
)
def test_deadlines_come_from_the_customers_tier_and_the_priority(roles, tech, tier, priority, first, resolution):
    customer = Customer.objects.create(name=f"{tier} Co", sla_tier=SlaTier.objects.get(name=tier))
    ticket = _file(customer, priority, by=tech)
    assert ticket.first_response_due == T0 + timedelta(minutes=first)
    assert ticket.resolution_due == T0 + timedelta(minutes=resolution)
    assert ticket.next_due_at == ticket.first_response_due


def test_the_first_public_reply_stops_the_first_response_clock(customer, tech):
    ticket = _file(customer, 2, by=tech)
    services.ticket_add_note(ticket=ticket, author=tech, body="looking", now=T0 + timedelta(minutes=5))
    ticket.refresh_from_db()
    assert ticket.first_response_at is None  # an internal note is not a response
    services.ticket_reply(ticket=ticket, author=tech, body="on it", now=T0 + timedelta(minutes=20))
    services.ticket_reply(ticket=ticket, author=tech, body="update", now=T0 + timedelta(minutes=40))
    ticket.refresh_from_db()
    assert ticket.first_response_at == T0 + timedelta(minutes=20)
    assert ticket.next_due_at == ticket.resolution_due


def test_waiting_on_the_customer_pauses_the_resolution_clock(customer, tech):
    ticket = _file(customer, 2, by=tech)
    due = ticket.resolution_due
    ticket = services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=tech, now=T0 + timedelta(hours=1))
    assert ticket.next_due_at is None and ticket.sla_state(now=T0 + timedelta(hours=2)) == sla.PAUSED
    ticket = services.ticket_change_status(ticket=ticket, status=Status.TRIAGING, by=tech, now=T0 + timedelta(hours=6))
    assert ticket.resolution_due == due + timedelta(hours=5)
    assert ticket.paused_seconds == 5 * 3600


def test_raising_the_priority_tightens_the_deadlines(customer, tech):
    ticket = _file(customer, 4, by=tech)
    ticket = services.ticket_change_priority(ticket=ticket, priority=1, by=tech, now=T0 + timedelta(minutes=1))
    assert ticket.first_response_due == T0 + timedelta(minutes=30)  # Gold P1
    assert ticket.events.filter(kind=EventKind.PRIORITY).get().data == {"from": 4, "to": 1}


@pytest.mark.parametrize(
    "minutes_left,state",
    [(-1, sla.BREACHED), (0, sla.BREACHED), (30, sla.AT_RISK), (60, sla.AT_RISK), (61, sla.ON_TRACK)],
)
def test_the_sla_state_follows_the_at_risk_window(minutes_left, state):
    now = T0
    assert (
        sla.state(
            status="triaging", next_due_at=now + timedelta(minutes=minutes_left), now=now, window=timedelta(minutes=60)
        )
        == state
    )


def test_resolved_tickets_are_done_whatever_their_deadline():
    assert sla.state(status="resolved", next_due_at=None, now=T0) == sla.DONE


def test_a_breach_is_recorded_once_on_the_timeline(customer, tech):
    ticket = _file(customer, 1, by=tech)  # Gold P1: first response in 30 min
    assert services.flag_sla_breaches(now=T0 + timedelta(minutes=29)) == 0
    assert services.flag_sla_breaches(now=T0 + timedelta(minutes=31)) == 1
    assert services.flag_sla_breaches(now=T0 + timedelta(minutes=45)) == 0
    ticket.refresh_from_db()
    assert ticket.first_response_breached and not ticket.resolution_breached
    assert services.flag_sla_breaches(now=T0 + timedelta(hours=9)) == 1  # resolution (8 h) missed too
    assert list(ticket.events.filter(kind=EventKind.SLA).values_list("data__target", flat=True)) == [
        "first_response",
        "resolution",
    ]


def test_waiting_tickets_do_not_breach(customer, tech):
    ticket = _file(customer, 1, by=tech)
    services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=tech, now=T0 + timedelta(minutes=1))
    assert services.flag_sla_breaches(now=T0 + timedelta(days=3)) == 0
