"""SLA tiers on business calendars: deadlines skip nights, weekends and holidays, and waiting on the
customer gives back only the working time it took. Tiers without a calendar keep the 24x7 clock
(tests/test_sla.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from triage import services, sla
from triage.models import BusinessCalendar, Customer, SlaTier, Status

BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_4PM = datetime(2026, 11, 27, 16, 0, tzinfo=BERLIN)
MONDAY = datetime(2026, 11, 30, tzinfo=BERLIN)


def berlin(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute)


@pytest.fixture
def office_hours(db):
    return services.business_calendar_save(
        calendar=None,
        name="Berlin office",
        time_zone="Europe/Berlin",
        weekly_hours={day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        holidays=[],
    )


@pytest.fixture
def office_tier(roles, office_hours):
    """P2: first response within 4 business hours, resolution within 16 (two working days)."""
    tier = SlaTier.objects.create(name="Office", calendar=office_hours)
    tier.targets.create(priority=2, first_response_minutes=4 * 60, resolution_minutes=16 * 60)
    return tier


@pytest.fixture
def office_customer(office_tier):
    return Customer.objects.create(name="Kanzlei Weber", sla_tier=office_tier)


def _file(customer, *, by, at):
    return services.ticket_create(
        subject="VPN down", description="No one can connect.", customer=customer, priority=2, created_by=by, now=at
    )


def test_a_friday_afternoon_ticket_is_due_on_monday_at_noon(office_customer, tech):
    ticket = _file(office_customer, by=tech, at=FRIDAY_4PM)
    assert ticket.first_response_due == berlin(MONDAY, 12)  # 1 h on Friday, 3 h on Monday
    assert ticket.resolution_due == berlin(MONDAY + timedelta(days=1), 16)  # 1 h Fri + 8 h Mon + 7 h Tue
    assert ticket.next_due_at == ticket.first_response_due


def test_a_holiday_on_monday_moves_the_deadline_to_tuesday(office_customer, office_hours, tech):
    services.business_calendar_save(
        calendar=office_hours,
        name=office_hours.name,
        time_zone="Europe/Berlin",
        weekly_hours=office_hours.weekly_hours,
        holidays=[{"date": "2026-11-30", "name": "Company day"}],
    )
    ticket = _file(office_customer, by=tech, at=FRIDAY_4PM)
    assert ticket.first_response_due == berlin(MONDAY + timedelta(days=1), 12)


def test_waiting_gives_back_only_the_working_time_it_took(office_customer, tech):
    ticket = _file(office_customer, by=tech, at=berlin(MONDAY, 9))
    due = ticket.resolution_due
    assert due == berlin(MONDAY + timedelta(days=1), 17)
    services.ticket_reply(ticket=ticket, author=tech, body="Which client version?", now=berlin(MONDAY, 9, 30))
    ticket = services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=tech, now=berlin(MONDAY, 16))
    assert ticket.next_due_at is None and ticket.sla_state(now=berlin(MONDAY, 20)) == sla.PAUSED
    # The customer answers the next morning at 10:00: 1 h on Monday and 1 h on Tuesday were paused.
    ticket = services.ticket_change_status(
        ticket=ticket, status=Status.TRIAGING, by=None, now=berlin(MONDAY + timedelta(days=1), 10)
    )
    assert ticket.paused_seconds == 2 * 3600
    assert ticket.resolution_due == berlin(MONDAY + timedelta(days=2), 11)  # two business hours later
    assert ticket.next_due_at == ticket.resolution_due


def test_waiting_over_a_weekend_costs_the_clock_only_friday_evening(office_customer, tech):
    ticket = _file(office_customer, by=tech, at=berlin(MONDAY - timedelta(days=3), 9))  # the Friday before
    ticket = services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=tech, now=FRIDAY_4PM)
    ticket = services.ticket_change_status(ticket=ticket, status=Status.TRIAGING, by=None, now=berlin(MONDAY, 8))
    assert ticket.paused_seconds == 3600


def test_the_first_response_also_skips_the_night_for_a_ticket_filed_after_hours(office_customer, tech):
    ticket = _file(office_customer, by=tech, at=berlin(MONDAY, 22, 45))
    assert ticket.first_response_due == berlin(MONDAY + timedelta(days=1), 13)


def test_putting_a_tier_on_a_calendar_moves_its_open_tickets_deadlines(roles, tech, office_hours):
    gold = SlaTier.objects.get(name="Gold")  # P2: first response 60 min, resolution 24 h
    customer = Customer.objects.create(name="Northwind", sla_tier=gold)
    open_ticket = _file(customer, by=tech, at=FRIDAY_4PM)
    done = _file(customer, by=tech, at=FRIDAY_4PM)
    services.ticket_change_status(ticket=done, status=Status.RESOLVED, by=tech, now=FRIDAY_4PM + timedelta(minutes=5))
    done.refresh_from_db()
    assert open_ticket.first_response_due == FRIDAY_4PM + timedelta(hours=1)

    services.sla_tier_set_calendar(tier=gold, calendar=office_hours)
    open_ticket.refresh_from_db()
    assert open_ticket.first_response_due == berlin(FRIDAY_4PM, 17)
    assert open_ticket.resolution_due == berlin(MONDAY + timedelta(days=2), 16)  # 1 + 8 + 8 + 7 h
    resolved_due = done.resolution_due
    done.refresh_from_db()
    assert done.resolution_due == resolved_due  # a resolved ticket's record stays as it was

    services.sla_tier_set_calendar(tier=gold, calendar=None)
    open_ticket.refresh_from_db()
    assert open_ticket.first_response_due == FRIDAY_4PM + timedelta(hours=1)  # back to 24x7


def test_changing_a_calendars_hours_moves_the_deadlines_of_tickets_on_it(office_customer, office_hours, tech):
    ticket = _file(office_customer, by=tech, at=FRIDAY_4PM)
    services.business_calendar_save(
        calendar=office_hours,
        name=office_hours.name,
        time_zone="Europe/Berlin",
        weekly_hours={"mon": ["07:00-15:00"], "fri": ["09:00-17:00"]},
        holidays=[],
    )
    ticket.refresh_from_db()
    assert ticket.first_response_due == berlin(MONDAY, 10)  # 1 h on Friday, 3 h from 07:00


@pytest.mark.parametrize(
    "fields,error_field",
    [
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"weekly_hours": {"mon": ["17:00-09:00"]}}, "weekly_hours"),
        ({"weekly_hours": {}}, "weekly_hours"),
        ({"holidays": [{"date": "2026-02-30", "name": "Never"}]}, "holidays"),
    ],
)
def test_a_calendar_that_cannot_be_computed_is_refused(db, fields, error_field):
    data = {
        "calendar": None,
        "name": "Broken",
        "time_zone": "UTC",
        "weekly_hours": {"mon": ["09:00-17:00"]},
        "holidays": [],
        **fields,
    }
    with pytest.raises(ValidationError) as refused:
        services.business_calendar_save(**data)
    assert error_field in refused.value.message_dict
    assert not BusinessCalendar.objects.exists()


def test_stored_deadlines_are_utc_instants(office_customer, tech):
    ticket = _file(office_customer, by=tech, at=FRIDAY_4PM)
    ticket.refresh_from_db()
    assert ticket.first_response_due == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)


def test_a_customer_object_loaded_before_the_clock_changed_still_gets_the_new_clock(roles, tech, office_hours):
    customer = Customer.objects.select_related("sla_tier").create(
        name="Northwind", sla_tier=SlaTier.objects.get(name="Gold")
    )
    services.sla_tier_set_calendar(tier=SlaTier.objects.get(name="Gold"), calendar=office_hours)
    assert customer.sla_tier.calendar is None  # the copy this caller holds
    ticket = _file(customer, by=tech, at=FRIDAY_4PM)
    assert ticket.first_response_due == berlin(FRIDAY_4PM, 17)  # Gold P2: one business hour


def test_moving_a_tier_with_many_open_tickets_takes_a_fixed_number_of_queries(
    roles, tech, office_hours, django_assert_max_num_queries
):
    gold = SlaTier.objects.get(name="Gold")
    customer = Customer.objects.create(name="Northwind", sla_tier=gold)
    for _ in range(40):
        _file(customer, by=tech, at=FRIDAY_4PM)
    with django_assert_max_num_queries(10):
        services.sla_tier_set_calendar(tier=gold, calendar=office_hours)
    assert set(customer.tickets.values_list("first_response_due", flat=True)) == {berlin(FRIDAY_4PM, 17)}


def test_the_customers_mail_reply_restarts_the_clock_with_only_working_time_paused(office_tier, tech):
    from mailgate import services as mailgate
    from tests.mailgate_support import DESK, mail

    customer = Customer.objects.create(name="Kanzlei Weber", sla_tier=office_tier)
    customer.contacts.create(email="it@weber.test")
    ticket = _file(customer, by=tech, at=berlin(MONDAY, 9))
    services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=tech, now=berlin(MONDAY, 16))
    reply = mail(sender="it@weber.test", subject=f"Re: [#{ticket.pk}] VPN down", body="Version 5.2.")
    mailgate.inbound_receive(
        raw=reply.as_bytes(),
        envelope_from="it@weber.test",
        envelope_to=[DESK],
        now=berlin(MONDAY + timedelta(days=1), 10),
    )
    ticket.refresh_from_db()
    assert ticket.status == Status.TRIAGING and ticket.paused_seconds == 2 * 3600
    assert ticket.resolution_due == berlin(MONDAY + timedelta(days=2), 11)
