"""SLA arithmetic, as pure functions over times and targets.

Deadlines run from the ticket's creation on the tier's clock: 24x7 when the
tier has no business calendar, otherwise only inside the calendar's working
hours (triage/business_hours.py). Time a ticket spends waiting on the customer
pauses the resolution clock: the pause, measured on the same clock, is added to
the resolution target when the ticket leaves the waiting state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from triage.business_hours import Schedule, add_business_time, business_time_between

OPEN = ("new", "triaging", "waiting")

ON_TRACK = "on_track"
AT_RISK = "at_risk"
BREACHED = "breached"
PAUSED = "paused"
DONE = "done"


def clock_add(*, start: datetime, duration: timedelta, schedule: Schedule | None) -> datetime:
    """`start` plus `duration` on the tier's clock (24x7 without a schedule)."""
    if schedule is None:
        return start + duration
    return add_business_time(schedule, start=start, duration=duration)


def clock_time_between(*, start: datetime, end: datetime, schedule: Schedule | None) -> timedelta:
    """How far the tier's clock ran from `start` to `end` (business time with a schedule)."""
    if schedule is None:
        return max(end - start, timedelta(0))
    return business_time_between(schedule, start=start, end=end)


def deadlines(
    *,
    created_at: datetime,
    first_response_minutes: int,
    resolution_minutes: int,
    paused: timedelta,
    schedule: Schedule | None = None,
) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a ticket created at `created_at`.

    `paused` is the clock time spent waiting on the customer, measured on the same clock
    (see `clock_time_between`).
    """
    return (
        clock_add(start=created_at, duration=timedelta(minutes=first_response_minutes), schedule=schedule),
        clock_add(start=created_at, duration=timedelta(minutes=resolution_minutes) + paused, schedule=schedule),
    )


def next_deadline(
    *,
    status: str,
    first_response_at: datetime | None,
    first_response_due: datetime,
    resolution_due: datetime,
) -> datetime | None:
    """The deadline the desk must meet next; None when no clock is running."""
    if status not in OPEN or status == "waiting":
        return None
    if first_response_at is None:
        return min(first_response_due, resolution_due)
    return resolution_due


def at_risk_window() -> timedelta:
    from django.conf import settings

    return timedelta(minutes=settings.TRIAGE_SLA_AT_RISK_MINUTES)


def state(*, status: str, next_due_at: datetime | None, now: datetime, window: timedelta | None = None) -> str:
    if status not in OPEN:
        return DONE
    if next_due_at is None:
        return PAUSED
    if next_due_at <= now:
        return BREACHED
    if next_due_at <= now + (window if window is not None else at_risk_window()):
        return AT_RISK
    return ON_TRACK
