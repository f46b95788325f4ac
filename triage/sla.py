"""SLA arithmetic, as pure functions over times and targets.

Deadlines run on the calendar clock (24x7) from the ticket's creation. Time a
ticket spends waiting on the customer pauses the resolution clock: the pause is
added to the resolution deadline when the ticket leaves the waiting state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

OPEN = ("new", "triaging", "waiting")

ON_TRACK = "on_track"
AT_RISK = "at_risk"
BREACHED = "breached"
PAUSED = "paused"
DONE = "done"


def deadlines(
    *, created_at: datetime, first_response_minutes: int, resolution_minutes: int, paused: timedelta
) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a ticket created at `created_at`."""
    return (
        created_at + timedelta(minutes=first_response_minutes),
        created_at + timedelta(minutes=resolution_minutes) + paused,
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


def state(
    *, status: str, next_due_at: datetime | None, now: datetime, window: timedelta | None = None
) -> str:
    if status not in OPEN:
        return DONE
    if next_due_at is None:
        return PAUSED
    if next_due_at <= now:
        return BREACHED
    if next_due_at <= now + (window if window is not None else at_risk_window()):
        return AT_RISK
    return ON_TRACK
