"""Business-hours arithmetic (triage/business_hours.py): worked examples, DST weeks, and properties.

The properties hold for random weekly hours, holidays, zones, start instants and durations; the
minute-by-minute count is an independent oracle for what "business time" means.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage import business_hours
from triage.business_hours import (
    Schedule,
    ScheduleError,
    add_business_time,
    business_time_between,
    parse_intervals,
    parse_weekly,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NINE_TO_FIVE = parse_weekly({day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")})


def office(zone: ZoneInfo = BERLIN, *, holidays=()) -> Schedule:
    return Schedule(zone=zone, weekly=NINE_TO_FIVE, holidays=frozenset(holidays))


def local(zone: ZoneInfo, *args) -> datetime:
    return datetime(*args, tzinfo=zone)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# --- Worked examples -------------------------------------------------------------------------------


def test_a_friday_afternoon_ticket_with_four_business_hours_is_due_monday_at_noon():
    # One hour on Friday (16:00-17:00), three on Monday (09:00-12:00).
    due = add_business_time(office(), start=local(BERLIN, 2026, 11, 27, 16, 0), duration=hours(4))
    assert due == local(BERLIN, 2026, 11, 30, 12, 0)
    assert due.tzinfo is UTC


def test_a_friday_ticket_filed_at_three_is_due_monday_at_eleven():
    due = add_business_time(office(), start=local(BERLIN, 2026, 11, 27, 15, 0), duration=hours(4))
    assert due == local(BERLIN, 2026, 11, 30, 11, 0)


def test_a_holiday_monday_moves_it_to_tuesday():
    schedule = office(holidays=[date(2026, 11, 30)])
    due = add_business_time(schedule, start=local(BERLIN, 2026, 11, 27, 16, 0), duration=hours(4))
    assert due == local(BERLIN, 2026, 12, 1, 12, 0)


def test_time_filed_at_night_starts_counting_at_the_next_opening():
    due = add_business_time(office(), start=local(BERLIN, 2026, 11, 30, 3, 17), duration=timedelta(minutes=30))
    assert due == local(BERLIN, 2026, 11, 30, 9, 30)


def test_a_target_that_runs_out_at_closing_time_is_due_at_closing_time():
    due = add_business_time(office(), start=local(BERLIN, 2026, 12, 4, 9, 0), duration=hours(8))
    assert due == local(BERLIN, 2026, 12, 4, 17, 0)  # Friday 17:00, not Monday 09:00


def test_a_forty_hour_target_is_a_working_week():
    due = add_business_time(office(), start=local(BERLIN, 2026, 11, 30, 9, 0), duration=hours(40))
    assert due == local(BERLIN, 2026, 12, 4, 17, 0)


def test_split_shifts_skip_lunch():
    schedule = Schedule(zone=NEW_YORK, weekly=parse_weekly({"mon": ["08:00-12:00", "13:00-17:00"]}))
    due = add_business_time(schedule, start=local(NEW_YORK, 2026, 11, 30, 11, 0), duration=hours(2))
    assert due == local(NEW_YORK, 2026, 11, 30, 14, 0)


def test_business_time_between_counts_only_working_hours():
    start, end = local(BERLIN, 2026, 11, 27, 16, 0), local(BERLIN, 2026, 11, 30, 11, 0)
    assert business_time_between(office(), start=start, end=end) == hours(3)  # Fri 16-17, Mon 9-11
    assert business_time_between(office(), start=end, end=start) == timedelta(0)


# --- DST weeks -------------------------------------------------------------------------------------


def test_the_autumn_dst_week_in_berlin_keeps_local_opening_hours():
    # Summer time ends on Sunday 2026-10-25: Friday is UTC+2, Monday UTC+1.
    start = local(BERLIN, 2026, 10, 23, 16, 0)
    due = add_business_time(office(), start=start, duration=hours(4))
    assert due == local(BERLIN, 2026, 10, 26, 12, 0)
    assert due == datetime(2026, 10, 26, 11, 0, tzinfo=UTC)
    assert start.astimezone(UTC) == datetime(2026, 10, 23, 14, 0, tzinfo=UTC)


def test_the_spring_dst_week_in_new_york_keeps_local_opening_hours():
    # Daylight time starts on Sunday 2026-03-08: Friday is UTC-5, Monday UTC-4.
    due = add_business_time(office(NEW_YORK), start=local(NEW_YORK, 2026, 3, 6, 15, 30), duration=hours(4))
    assert due == datetime(2026, 3, 9, 15, 30, tzinfo=UTC)  # Monday 11:30 EDT: 1.5 h on Friday, 2.5 h on Monday


@pytest.mark.parametrize(
    "zone,day,length",
    [
        (BERLIN, date(2026, 3, 29), hours(23)),
        (BERLIN, date(2026, 10, 25), hours(25)),
        (NEW_YORK, date(2026, 3, 8), hours(23)),
        (NEW_YORK, date(2026, 11, 1), hours(25)),
        (BERLIN, date(2026, 6, 7), hours(24)),
    ],
)
def test_a_round_the_clock_day_is_as_long_as_the_day_really_is(zone, day, length):
    schedule = Schedule(zone=zone, weekly=parse_weekly({d: ["00:00-24:00"] for d in business_hours.WEEKDAYS}))
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    assert business_time_between(schedule, start=midnight, end=next_midnight) == length
    assert add_business_time(schedule, start=midnight, duration=length) == next_midnight


def test_hours_the_spring_change_skips_are_not_worked():
    # 02:00-03:00 does not exist in Berlin on 2026-03-29: 01:00-02:30 holds one real hour.
    schedule = Schedule(zone=BERLIN, weekly=parse_weekly({"sun": ["01:00-02:30", "03:00-05:00"]}))
    day_start = local(BERLIN, 2026, 3, 29, 0, 0)
    assert business_time_between(schedule, start=day_start, end=day_start + hours(24)) == hours(3)


def test_the_hour_the_autumn_change_repeats_is_worked_twice():
    schedule = Schedule(zone=BERLIN, weekly=parse_weekly({"sun": ["00:00-04:00"]}))
    day_start = local(BERLIN, 2026, 10, 25, 0, 0)
    assert business_time_between(schedule, start=day_start, end=day_start + hours(30)) == hours(5)


# --- Parsing and validation ----------------------------------------------------------------------


def test_intervals_parse_in_order():
    assert parse_intervals("13:00-17:00, 08:00-12:00") == ((480, 720), (780, 1020))
    assert parse_intervals("") == ()


@pytest.mark.parametrize(
    "text,message",
    [
        ("9-17", "Not a time of day"),
        ("17:00-09:00", "ends before it starts"),
        ("09:00-12:00, 11:00-13:00", "overlap"),
        ("24:30-25:00", "Not a time of day"),
        ("09:00", "Not an interval"),
    ],
)
def test_bad_intervals_are_refused_with_a_reason(text, message):
    with pytest.raises(ScheduleError, match=message):
        parse_intervals(text)


def test_a_week_without_working_hours_is_refused():
    with pytest.raises(ScheduleError, match="at least one weekday"):
        parse_weekly({"mon": []})


def test_unknown_zones_and_weekdays_are_refused():
    with pytest.raises(ScheduleError, match="Unknown time zone"):
        business_hours.parse_zone("Mars/Olympus_Mons")
    with pytest.raises(ScheduleError, match="Unknown weekday"):
        parse_weekly({"monday": ["09:00-17:00"]})


def test_holiday_lines_round_trip_and_refuse_bad_dates():
    entries = business_hours.parse_holiday_lines("2026-12-26 Boxing Day\n\n2026-12-25 Christmas Day\n")
    assert entries == [{"date": "2026-12-25", "name": "Christmas Day"}, {"date": "2026-12-26", "name": "Boxing Day"}]
    assert business_hours.format_holiday_lines(entries) == "2026-12-25 Christmas Day\n2026-12-26 Boxing Day"
    with pytest.raises(ScheduleError, match="Not a date"):
        business_hours.parse_holiday_lines("25/12/2026 Christmas")
    with pytest.raises(ScheduleError, match="listed twice"):
        business_hours.parse_holiday_lines("2026-12-25 a\n2026-12-25 b")


def test_a_calendar_of_nothing_but_holidays_fails_instead_of_looping():
    only_monday = Schedule(
        zone=BERLIN,
        weekly=parse_weekly({"mon": ["09:00-10:00"]}),
        holidays=frozenset(date(2026, 1, 5) + timedelta(weeks=n) for n in range(600)),
    )
    with pytest.raises(ScheduleError, match="No working time"):
        add_business_time(only_monday, start=local(BERLIN, 2026, 1, 1, 0, 0), duration=hours(1))


# --- Properties -----------------------------------------------------------------------------------

ZONES = [ZoneInfo(name) for name in ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC")]


@st.composite
def day_hours(draw) -> list[str]:
    # Working hours from 05:00: DST changes in these zones happen between 00:00 and 04:00, where a
    # wall-clock reading and an elapsed-time reading of an interval differ by design (tested above).
    cuts = sorted(draw(st.sets(st.integers(5 * 4, 24 * 4), max_size=4)))
    cuts = cuts[: len(cuts) // 2 * 2]
    return [business_hours.format_intervals([(cuts[i] * 15, cuts[i + 1] * 15)]) for i in range(0, len(cuts), 2)]


@st.composite
def schedules(draw) -> Schedule:
    weekly = {day: draw(day_hours()) for day in business_hours.WEEKDAYS}
    if not any(weekly.values()):
        weekly["wed"] = ["09:00-17:00"]
    holidays = draw(st.sets(st.dates(date(2025, 12, 1), date(2027, 2, 1)), max_size=30))
    return Schedule(zone=draw(st.sampled_from(ZONES)), weekly=parse_weekly(weekly), holidays=frozenset(holidays))


instants = st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC))
durations = st.timedeltas(timedelta(0), timedelta(hours=200))


def minute_by_minute(schedule: Schedule, *, start: datetime, end: datetime) -> timedelta:
    """The oracle: each whole UTC minute whose local wall-clock time is inside working hours."""
    worked = 0
    t = start
    while t < end:
        wall = t.astimezone(schedule.zone)
        minute = wall.hour * 60 + wall.minute
        if wall.date() not in schedule.holidays and any(s <= minute < e for s, e in schedule.weekly[wall.weekday()]):
            worked += 1
        t += timedelta(minutes=1)
    return timedelta(minutes=worked)


@settings(max_examples=100, deadline=None)
@given(schedule=schedules(), start=instants, duration=durations)
def test_the_deadline_is_the_first_instant_the_duration_has_been_worked(schedule, start, duration):
    due = add_business_time(schedule, start=start, duration=duration)
    assert due >= start
    assert business_time_between(schedule, start=start, end=due) == duration
    if duration:
        assert business_time_between(schedule, start=start, end=due - timedelta(microseconds=1)) < duration


@settings(max_examples=100, deadline=None)
@given(schedule=schedules(), start=instants, first=durations, second=durations)
def test_adding_in_two_steps_lands_where_adding_at_once_does(schedule, start, first, second):
    halfway = add_business_time(schedule, start=start, duration=first)
    assert add_business_time(schedule, start=halfway, duration=second) == add_business_time(
        schedule, start=start, duration=first + second
    )


gaps = st.timedeltas(timedelta(0), timedelta(days=15))


@settings(max_examples=100, deadline=None)
@given(schedule=schedules(), a=instants, first=gaps, second=gaps)
def test_business_time_between_adds_up_over_consecutive_stretches(schedule, a, first, second):
    b, c = a + first, a + first + second
    assert business_time_between(schedule, start=a, end=c) == (
        business_time_between(schedule, start=a, end=b) + business_time_between(schedule, start=b, end=c)
    )


@settings(max_examples=60, deadline=None)
@given(schedule=schedules(), start=instants, minutes=st.integers(0, 4 * 24 * 60))
def test_business_time_agrees_with_counting_minute_by_minute(schedule, start, minutes):
    start = start.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes)
    assert business_time_between(schedule, start=start, end=end) == minute_by_minute(schedule, start=start, end=end)
