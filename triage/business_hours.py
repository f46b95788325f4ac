"""Business-hours arithmetic: pure functions over a weekly schedule, holidays and an IANA time zone.

A `Schedule` says when the desk works, in the customer's local time: one or more intervals per
weekday (Mon-Fri 09:00-17:00, or 08:00-12:00 and 13:00-17:00) and holiday dates with no work at all.
Business time is real elapsed time inside those intervals, so a working day that spans a DST change
is one hour shorter or longer, and an interval's ends are read as local wall-clock times on that date.

Each local interval becomes a span of UTC instants. A local time the DST change skips (02:30 on the
spring-forward night) is read as the moment of the change (when the clock jumps to 03:00), and a
repeated one (the autumn night) as its first occurrence. Spans are clipped so that they never overlap,
so no instant is counted twice.

The standard library's zoneinfo does the zone work; no dependency is added for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MINUTES_PER_DAY = 24 * 60
# A schedule with working time somewhere in its week finds it within 8 days, unless holidays cover
# it: more than ten years of consecutive holidays is a data error, not a calendar.
SEARCH_DAYS = 3660

_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class ScheduleError(ValueError):
    """Weekly hours, holidays or a time zone that do not make a usable calendar (the message says why)."""


@dataclass(frozen=True)
class Schedule:
    """When the desk works: `weekly[0]` is Monday's intervals as (start, end) minutes after local midnight."""

    zone: ZoneInfo
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self):
        if len(self.weekly) != 7:
            raise ScheduleError("Weekly hours need an entry for each of the 7 weekdays.")
        if not any(self.weekly):
            raise ScheduleError("Give working hours on at least one weekday.")


def parse_zone(name: str) -> ZoneInfo:
    """The IANA zone called `name` ('Europe/Berlin'), or ScheduleError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin.") from None


def parse_clock(text: str) -> int:
    """'09:30' -> 570 minutes after midnight; '24:00' is the end of the day."""
    match = _CLOCK.match(text.strip())
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ScheduleError(f"Not a time of day: {text!r} (use HH:MM, 00:00 to 24:00).")
    return int(match.group(1)) * 60 + int(match.group(2))


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_intervals(text: str) -> tuple[tuple[int, int], ...]:
    """'09:00-12:00, 13:00-17:00' -> ((540, 720), (780, 1020)); '' is a day off.

    Intervals must each start before they end and must not overlap; they are returned in order.
    """
    intervals = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        start_text, sep, end_text = part.partition("-")
        if not sep:
            raise ScheduleError(f"Not an interval: {part!r} (use HH:MM-HH:MM, e.g. 09:00-17:00).")
        start, end = parse_clock(start_text), parse_clock(end_text)
        if start >= end:
            raise ScheduleError(f"{part!r} ends before it starts (an interval cannot cross midnight).")
        intervals.append((start, end))
    intervals.sort()
    for (_, end), (start, _) in pairwise(intervals):
        if start < end:
            raise ScheduleError(f"Intervals overlap around {format_clock(start)}.")
    return tuple(intervals)


def format_intervals(intervals: Sequence[Sequence[int]]) -> str:
    return ", ".join(f"{format_clock(start)}-{format_clock(end)}" for start, end in intervals)


def parse_weekly(data: Mapping[str, object]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Stored weekly hours ({'mon': ['09:00-17:00'], ...}) -> seven tuples of intervals.

    A weekday that is missing or has an empty list is a day off; a week with no working time is refused.
    """
    if not isinstance(data, Mapping):
        raise ScheduleError("Weekly hours must map weekdays (mon..sun) to lists of intervals.")
    unknown = set(data) - set(WEEKDAYS)
    if unknown:
        raise ScheduleError(f"Unknown weekday keys: {', '.join(sorted(map(str, unknown)))} (use mon..sun).")
    days = []
    for key in WEEKDAYS:
        entries = data.get(key) or []
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ScheduleError(f"{key}: a list of 'HH:MM-HH:MM' strings.")
        days.append(parse_intervals(", ".join(entries)))
    if not any(days):
        raise ScheduleError("Give working hours on at least one weekday.")
    return tuple(days)


def weekly_to_json(weekly: Sequence[Sequence[Sequence[int]]]) -> dict[str, list[str]]:
    """The stored form of parsed weekly hours (days off are left out)."""
    return {
        key: [format_intervals([interval]) for interval in day]
        for key, day in zip(WEEKDAYS, weekly, strict=True)
        if day
    }


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (a skipped one: the moment of the change)."""
    # 24:00 is midnight at the start of the next day, read in that day's offset.
    if minutes == MINUTES_PER_DAY:
        day, minutes = day + timedelta(days=1), 0
    wall = datetime.combine(day, time(minutes // 60, minutes % 60))
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant  # an ordinary time, or the first occurrence of a repeated one (fold=0)
    return _change_before(instant, zone=zone, earliest=wall.replace(tzinfo=zone, fold=1).astimezone(UTC))


def _change_before(after: datetime, *, zone: ZoneInfo, earliest: datetime) -> datetime:
    """The instant the zone's offset changed to the one in force at `after`, searched back to `earliest`.

    Offsets change on whole seconds, so halving the window ends in about 14 steps for a one-hour jump.
    """
    offset = after.astimezone(zone).utcoffset()
    low, high = earliest, after  # the offset at `low` differs; at `high` it is the new one
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return high


def working_spans(schedule: Schedule, *, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The schedule's working spans (start, end) in UTC, in order, none overlapping, from `since` on.

    The first span may start at `since` itself (when `since` falls inside working hours). Endless;
    raises ScheduleError if no working time comes within SEARCH_DAYS.
    """
    if since.tzinfo is None:
        raise ValueError("business-hours arithmetic needs aware datetimes")
    cursor = since.astimezone(UTC)
    day = since.astimezone(schedule.zone).date()
    idle_days = 0
    while True:
        worked = False
        if day not in schedule.holidays:
            for start, end in schedule.weekly[day.weekday()]:
                span_start = max(_instant(day, start, schedule.zone), cursor)
                span_end = _instant(day, end, schedule.zone)
                if span_end > span_start:
                    worked = True
                    yield span_start, span_end
                    cursor = span_end
        idle_days = 0 if worked else idle_days + 1
        if idle_days > SEARCH_DAYS:
            raise ScheduleError(f"No working time within {SEARCH_DAYS} days of {since.isoformat()}.")
        day += timedelta(days=1)


def add_business_time(schedule: Schedule, *, start: datetime, duration: timedelta) -> datetime:
    """The instant (UTC) when `duration` of business time has passed since `start`.

    A target that runs out exactly at the end of a working day is due then (Friday 17:00), not at the
    start of the next one. A zero duration is due at `start`.
    """
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if not duration:
        return start.astimezone(UTC)
    remaining = duration
    for span_start, span_end in working_spans(schedule, since=start):
        if remaining <= span_end - span_start:
            return span_start + remaining
        remaining -= span_end - span_start
    raise AssertionError("working_spans is endless")  # pragma: no cover


def business_time_between(schedule: Schedule, *, start: datetime, end: datetime) -> timedelta:
    """Business time inside [start, end); zero when `end` is not after `start`."""
    total = timedelta(0)
    if end <= start:
        return total
    for span_start, span_end in working_spans(schedule, since=start):
        if span_start >= end:
            break
        total += min(span_end, end) - span_start
    return total


def parse_holidays(data: object) -> tuple[tuple[date, str], ...]:
    """Stored holidays ([{'date': '2026-12-25', 'name': 'Christmas Day'}, ...]) -> sorted (date, name) pairs."""
    if not isinstance(data, list):
        raise ScheduleError("Holidays must be a list of {date, name} entries.")
    holidays: dict[date, str] = {}
    for entry in data:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("date"), str):
            raise ScheduleError("Each holiday needs a date (YYYY-MM-DD) and a name.")
        try:
            day = date.fromisoformat(entry["date"])
        except ValueError:
            raise ScheduleError(f"Not a date: {entry['date']!r} (use YYYY-MM-DD).") from None
        if day in holidays:
            raise ScheduleError(f"{day.isoformat()} is listed twice.")
        holidays[day] = str(entry.get("name") or "").strip()
    return tuple(sorted(holidays.items()))


def parse_holiday_lines(text: str) -> list[dict[str, str]]:
    """An admin's lines ('2026-12-25 Christmas Day') -> the stored list; blank lines are skipped."""
    entries = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        day, _, name = line.partition(" ")
        entries.append({"date": day.strip(), "name": name.strip()})
    return [{"date": day.isoformat(), "name": name} for day, name in parse_holidays(entries)]


def format_holiday_lines(data: list[dict[str, str]]) -> str:
    return "\n".join(f"{day.isoformat()} {name}".rstrip() for day, name in parse_holidays(data))
