"""Formatting helpers for templates; they format, they never decide."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

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


@register.simple_tag
def ticket_sla_state(ticket) -> str:
    return ticket.sla_state()
