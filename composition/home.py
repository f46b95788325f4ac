"""Reads for a tech's home page: my open tickets, SLA at risk, my recent collections.

Each section is built from ONE queryset: the count is that queryset's ``count()`` and the
list is its first rows, so a count can never disagree with the list it heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from diagnostics.models import ACTIVE_STATES, CollectionRun, RunState
from triage import access, sla
from triage.models import OPEN_STATUSES, Ticket

LIST_LIMIT = 25  # rows shown per ticket section; the count says how many there are in all
RECENT_RUNS = 10


@dataclass(frozen=True)
class Section:
    items: list
    count: int

    @property
    def more(self) -> int:
        """How many rows the count has beyond the list (shown as a link to the queue)."""
        return max(0, self.count - len(self.items))


def _section(queryset: QuerySet, *, limit: int) -> Section:
    return Section(items=list(queryset[:limit]), count=queryset.count())


def _by_deadline(queryset: QuerySet) -> QuerySet:
    # Paused tickets (waiting on the customer) have no deadline and go last.
    return queryset.order_by(F("next_due_at").asc(nulls_last=True), "id")


def my_open_tickets(*, user) -> QuerySet[Ticket]:
    """Open tickets assigned to ``user``, the next SLA deadline first."""
    return _by_deadline(
        Ticket.objects.filter(status__in=OPEN_STATUSES, assignee=user).select_related("customer", "assignee")
    )


def sla_at_risk(*, user, now: datetime | None = None) -> QuerySet[Ticket]:
    """Open tickets, mine or nobody's, whose next deadline is within the at-risk window (or past)."""
    now = now or timezone.now()
    return _by_deadline(
        Ticket.objects.filter(status__in=OPEN_STATUSES, next_due_at__lte=now + sla.at_risk_window())
        .filter(Q(assignee=user) | Q(assignee__isnull=True))
        .select_related("customer", "assignee")
    )


def my_collections(*, user) -> QuerySet[CollectionRun]:
    """Collections ``user`` requested, newest first."""
    return (
        CollectionRun.objects.filter(requested_by=user)
        .select_related("ticket", "server")
        .order_by("-created_at", "-id")
    )


def tech_home(*, user, now: datetime | None = None) -> dict:
    """Everything the home page shows, for one tech (or admin)."""
    access.ticket_access(user=user, action="work")
    now = now or timezone.now()
    runs = my_collections(user=user)
    return {
        "mine": _section(my_open_tickets(user=user), limit=LIST_LIMIT),
        "at_risk": _section(sla_at_risk(user=user, now=now), limit=LIST_LIMIT),
        "runs": _section(runs, limit=RECENT_RUNS),
        "runs_active": runs.filter(state__in=(RunState.QUEUED, *ACTIVE_STATES)).count(),
        "now": now,
    }
