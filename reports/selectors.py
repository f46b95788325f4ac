"""Reads for the managers' dashboard: one table of plain data per chart.

Each chart's figure (``reports.figures``) and its CSV export are drawn from the same
``Table``, so the download is exactly what the chart plots. Ticket, run, symptom and
recipe figures come from the daily rollups (``reports.rollups``); the backlog and the
workload per tech are live counts of open tickets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Manager, Q, QuerySet, Sum

from diagnostics.models import FixRecipe, RecipeOutcome, RunState, Symptom
from reports import histograms
from reports.models import (
    FRT_FIELDS,
    TTR_FIELDS,
    DailyRecipeStats,
    DailyRunStats,
    DailySymptomStats,
    DailyTicketStats,
    RollupCursor,
)
from triage import access
from triage.models import OPEN_STATUSES, Customer, Priority, Status, Ticket

TOP = 15


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    customer_id: int | None = None


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)


def _in_range(qs: QuerySet | Manager, filters: Filters) -> QuerySet:
    """A rollup's rows in the date range: one customer's, or the all-customer totals."""
    qs = qs.filter(day__gte=filters.start, day__lte=filters.end).order_by()
    if filters.customer_id:
        return qs.filter(customer_id=filters.customer_id)
    return qs.filter(customer__isnull=True)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 3)


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _open_tickets(filters: Filters) -> QuerySet:
    qs = Ticket.objects.filter(status__in=OPEN_STATUSES).order_by()
    return qs.filter(customer_id=filters.customer_id) if filters.customer_id else qs


def opened_resolved(filters: Filters) -> Table:
    by_day = {r["day"]: r for r in _in_range(DailyTicketStats.objects, filters).values("day", "opened", "resolved")}
    table = Table(("day", "opened", "resolved"))
    day = filters.start
    while day <= filters.end:
        r = by_day.get(day, {})
        table.rows.append((day, r.get("opened", 0), r.get("resolved", 0)))
        day += timedelta(days=1)
    return table


def backlog(filters: Filters) -> Table:
    counts = {(s, p): n for s, p, n in _open_tickets(filters).values_list("status", "priority").annotate(n=Count("pk"))}
    return Table(
        ("status", "priority", "tickets"),
        [(Status(s).label, f"P{p}", counts.get((s, p), 0)) for s in OPEN_STATUSES for p in Priority.values],
    )


def _weekly_histograms(filters: Filters) -> dict[date, dict]:
    weeks: dict[date, dict] = {}
    for r in _in_range(DailyTicketStats.objects, filters).values(
        "day", "opened", "breached", "first_responses", "resolved", *FRT_FIELDS, *TTR_FIELDS
    ):
        w = weeks.setdefault(
            _week(r["day"]),
            {
                "opened": 0,
                "breached": 0,
                "first_responses": 0,
                "resolved": 0,
                "frt": [0] * histograms.NUM_BUCKETS,
                "ttr": [0] * histograms.NUM_BUCKETS,
            },
        )
        for name in ("opened", "breached", "first_responses", "resolved"):
            w[name] += r[name]
        for i in range(histograms.NUM_BUCKETS):
            w["frt"][i] += r[FRT_FIELDS[i]]
            w["ttr"][i] += r[TTR_FIELDS[i]]
    return weeks


def _weeks(filters: Filters) -> list[date]:
    weeks, week = [], _week(filters.start)
    while week <= filters.end:
        weeks.append(week)
        week += timedelta(days=7)
    return weeks


RESPONSE_COLUMNS = (
    "first_responses",
    "first_response_median_h",
    "first_response_p90_h",
    "resolved",
    "resolution_median_h",
    "resolution_p90_h",
)


def _response_cells(first_responses: int, frt: list[int], resolved: int, ttr: list[int]) -> tuple:
    return (
        first_responses,
        _hours(histograms.percentile(frt, 0.5)),
        _hours(histograms.percentile(frt, 0.9)),
        resolved,
        _hours(histograms.percentile(ttr, 0.5)),
        _hours(histograms.percentile(ttr, 0.9)),
    )


def response_weekly(filters: Filters) -> Table:
    """Median and p90 time to first response and to resolution per week (weeks start on
    Monday; a week cut by the range counts only its days inside it). Approximate to the
    histogram bucket (see reports.histograms)."""
    weeks = _weekly_histograms(filters)
    table = Table(("week", *RESPONSE_COLUMNS))
    for week in _weeks(filters):
        w = weeks.get(week)
        table.rows.append(
            (week, *_response_cells(w["first_responses"], w["frt"], w["resolved"], w["ttr"]))
            if w
            else (week, 0, None, None, 0, None, None)
        )
    return table


def response_customers(filters: Filters) -> Table:
    """The same per customer over the whole range, for the busiest customers."""
    qs = DailyTicketStats.objects.filter(day__gte=filters.start, day__lte=filters.end, customer__isnull=False)
    if filters.customer_id:
        qs = qs.filter(customer_id=filters.customer_id)
    rows: list[Mapping[str, Any]] = list(
        qs.order_by()
        .values("customer_id")
        .annotate(
            fr=Sum("first_responses"),
            res=Sum("resolved"),
            **{name: Sum(name) for name in FRT_FIELDS + TTR_FIELDS},
        )
    )
    rows = [r for r in rows if r["fr"] or r["res"]]
    rows.sort(key=lambda r: (-(r["fr"] + r["res"]), r["customer_id"]))
    rows = rows[:TOP]
    names = dict(Customer.objects.filter(pk__in=[r["customer_id"] for r in rows]).values_list("pk", "name"))
    return Table(
        ("customer", *RESPONSE_COLUMNS),
        [
            (
                names[r["customer_id"]],
                *_response_cells(r["fr"], [r[n] for n in FRT_FIELDS], r["res"], [r[n] for n in TTR_FIELDS]),
            )
            for r in rows
        ],
    )


def sla_breaches(filters: Filters) -> Table:
    """Share of the tickets opened each week that missed a first-response or resolution target."""
    weeks = _weekly_histograms(filters)
    table = Table(("week", "opened", "breached", "breach_rate_pct"))
    for week in _weeks(filters):
        w = weeks.get(week, {"opened": 0, "breached": 0})
        rate = round(100 * w["breached"] / w["opened"], 2) if w["opened"] else None
        table.rows.append((week, w["opened"], w["breached"], rate))
    return table


def symptoms(filters: Filters) -> Table:
    rows = list(
        _in_range(DailySymptomStats.objects, filters)
        .values("symptom_id")
        .annotate(n=Sum("runs"))
        .order_by("-n", "symptom_id")[:TOP]
    )
    names = dict(Symptom.objects.filter(pk__in=[r["symptom_id"] for r in rows]).values_list("pk", "title"))
    return Table(("symptom", "runs_matched"), [(names[r["symptom_id"]], r["n"]) for r in rows])


def recipes(filters: Filters) -> Table:
    kinds = [kind for kind, _ in RecipeOutcome.KINDS]
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for r in _in_range(DailyRecipeStats.objects, filters).values("recipe_id", "kind").annotate(n=Sum("tickets")):
        counts[r["recipe_id"]][r["kind"]] = r["n"]
    order = sorted(counts, key=lambda pk: (*(-counts[pk].get(k, 0) for k in reversed(kinds)), pk))[:TOP]
    names = dict(FixRecipe.objects.filter(pk__in=order).values_list("pk", "title"))
    return Table(("recipe", *kinds), [(names[pk], *(counts[pk].get(k, 0) for k in kinds)) for pk in order])


def failures_by_reason(filters: Filters) -> Table:
    rows = (
        _in_range(DailyRunStats.objects, filters)
        .filter(state=RunState.FAILED)
        .values("failure_kind")
        .annotate(n=Sum("runs"))
        .order_by("-n", "failure_kind")
    )
    return Table(("reason", "failed_runs"), [(r["failure_kind"] or "unspecified", r["n"]) for r in rows])


def failures_by_customer(filters: Filters) -> Table:
    qs = DailyRunStats.objects.filter(day__gte=filters.start, day__lte=filters.end, customer__isnull=False)
    if filters.customer_id:
        qs = qs.filter(customer_id=filters.customer_id)
    rows = list(
        qs.order_by()
        .values("customer_id")
        .annotate(total=Sum("runs"), failed=Sum("runs", filter=Q(state=RunState.FAILED)))
    )
    rows = sorted((r for r in rows if r["failed"]), key=lambda r: (-r["failed"], r["customer_id"]))[:TOP]
    names = dict(Customer.objects.filter(pk__in=[r["customer_id"] for r in rows]).values_list("pk", "name"))
    return Table(
        ("customer", "runs", "failed", "failure_rate_pct"),
        [(names[r["customer_id"]], r["total"], r["failed"], round(100 * r["failed"] / r["total"], 2)) for r in rows],
    )


def workload(filters: Filters) -> Table:
    """Open tickets per assignee and priority, now (the date range does not apply)."""
    counts: dict[int | None, dict[int, int]] = defaultdict(dict)
    for assignee, priority, n in _open_tickets(filters).values_list("assignee_id", "priority").annotate(n=Count("pk")):
        counts[assignee][priority] = n
    names: dict[int | None, str] = dict(
        get_user_model().objects.filter(pk__in=[pk for pk in counts if pk]).values_list("pk", "username")
    )
    order = sorted(counts, key=lambda pk: (pk is None, -sum(counts[pk].values()), names.get(pk, "")))
    return Table(
        ("tech", *(f"P{p}" for p in Priority.values), "total"),
        [
            (
                names[pk] if pk else "(unassigned)",
                *(counts[pk].get(p, 0) for p in Priority.values),
                sum(counts[pk].values()),
            )
            for pk in order
        ],
    )


# name: (title, selector). The order is the page's.
CHARTS = {
    "opened-resolved": ("Tickets opened and resolved per day", opened_resolved),
    "backlog": ("Open tickets by status and priority (now)", backlog),
    "response-weekly": ("Time to first response and to resolution per week", response_weekly),
    "response-customers": ("Time to first response and to resolution per customer", response_customers),
    "sla-breaches": ("SLA breach rate per week", sla_breaches),
    "symptoms": ("Top matched symptoms", symptoms),
    "recipes": ("Recipe outcomes", recipes),
    "failures-reason": ("Collection failures by reason", failures_by_reason),
    "failures-customer": ("Collection failures by customer", failures_by_customer),
    "workload": ("Open tickets per tech (now)", workload),
}


def chart_table(*, user, name: str, filters: Filters) -> Table:
    access.dashboard_access(user=user)
    return CHARTS[name][1](filters)


def rollups_refreshed_at():
    cursor = RollupCursor.objects.filter(pk=1).first()
    return cursor.started_at if cursor else None
