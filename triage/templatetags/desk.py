"""Formatting helpers for templates; they format, they never decide."""

from __future__ import annotations

import re
from datetime import datetime

from django import template
from django.template.defaultfilters import linebreaksbr
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape

from triage import business_hours
from triage.models import Priority, Status

register = template.Library()

SLA_LABELS = {
    "on_track": "on track",
    "at_risk": "at risk",
    "breached": "breached",
    "paused": "paused",
    "done": "done",
}


@register.filter
def priority_label(value: int) -> str:
    return f"P{value}" if value in Priority.values else "?"


@register.filter
def status_label(value: str) -> str:
    return Status(value).label if value in Status.values else value


@register.filter
def sla_label(state: str) -> str:
    return SLA_LABELS.get(state, state)


@register.filter
def due_in(value: datetime | None) -> str:
    """'in 2 h 5 min' or '35 min ago', compact enough for a queue column."""
    if value is None:
        return "—"
    delta = value - timezone.now()
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes} min"
    else:
        text = f"{minutes} min"
    return f"in {text}" if delta.total_seconds() >= 0 else f"{text} ago"


def _hours_minutes(minutes: int) -> str:
    hours, minutes = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if part)


@register.filter
def sla_target(minutes: int, calendar=None) -> str:
    """An SLA target as a person reads it: '15 min', '4 h', '2 d 12 h'.

    On a business calendar a day is not 24 hours of the clock, so the target stays in hours:
    '40 h (business)'.
    """
    if calendar:
        return f"{_hours_minutes(minutes)} (business)" if minutes else "0 min"
    days, rest = divmod(minutes, 24 * 60)
    text = " ".join(part for part in (f"{days} d" if days else "", _hours_minutes(rest)) if part)
    return text or "0 min"


@register.filter
def sla_due(value: datetime | None, tier=None) -> str:
    """A deadline with its weekday, in the zone of the tier's business calendar when it has one
    ('Mon 2026-11-30 11:00 CET'), otherwise in the desk's zone."""
    if value is None:
        return "—"
    calendar = getattr(tier, "calendar", None)
    zone = business_hours.parse_zone(calendar.time_zone) if calendar else timezone.get_current_timezone()
    return value.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


@register.simple_tag
def ticket_sla_state(ticket) -> str:
    return ticket.sla_state()


# "#123" in a note or reply, not inside a word, a URL ("/#12") or a character reference typed as text
# ("&#39;", escaped to "&amp;#39;").
_TICKET_REFERENCE = re.compile(r"(?<![\w#&/;])#([1-9][0-9]{0,9})\b")


@register.filter(needs_autoescape=True)
def with_ticket_links(text, autoescape=True):
    """Text as written (escaped), its line breaks kept, and each "#123" a link to that ticket. The
    link is only a link: the ticket page decides who may see it."""
    escaped = str(conditional_escape(text) if autoescape else text)
    linked = _TICKET_REFERENCE.sub(
        lambda m: f'<a href="{reverse("ticket", args=[int(m.group(1))])}">#{m.group(1)}</a>', escaped
    )
    return linebreaksbr(linked, autoescape=False)  # escaped above
