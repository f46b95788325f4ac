"""Keeping the dashboard's pre-aggregated tables right: the periodic refresh and the rebuild.

Design. Every rollup row is a pure function of one UTC day's raw rows, so the only
question is *which days* to recompute:

- Tickets count on their created day (opened, breached), their first-response day and
  their resolved day. A change can move or clear the latter two (a reopen clears
  ``resolved_at``), so each ticket's last-counted days are kept in ``TicketFact`` and a
  changed ticket recomputes its old days and its new ones.
- Runs (states, failure kinds) and their matched symptoms count on the run's created
  day, and recipe outcomes on their ticket's created day: days that never move.

What changed since the last refresh: tickets whose ``updated_at`` moved (every desk
service bumps it), tickets with new SLA-breach events (the sweeper flags without
bumping ``updated_at``), new recipe outcomes, runs created or finished, new matches.
A refresh scans from the previous refresh's marks (see ``RollupCursor``), so a write
is picked up even if it committed up to one beat interval after taking its timestamp.
Re-matching old runs after a knowledge-base change leaves no mark, hence the nightly
``run_reports_rebuild``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from diagnostics.models import CollectionRun, Match, RecipeOutcome
from reports.histograms import bucket_of
from reports.models import (
    FRT_FIELDS,
    TTR_FIELDS,
    DailyRecipeStats,
    DailyRunStats,
    DailySymptomStats,
    DailyTicketStats,
    RollupCursor,
    TicketFact,
)
from triage.models import EventKind, Ticket, TicketEvent

CHUNK = 2000
DAYS_PER_CHUNK = 62

TICKET_COLUMNS = (
    "pk",
    "customer_id",
    "created_at",
    "first_response_at",
    "resolved_at",
    "first_response_breached",
    "resolution_breached",
)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- Ticket facts -------------------------------------------------------------


def ticket_fact(row: tuple) -> TicketFact:
    """The facts of one ticket, from a row of TICKET_COLUMNS."""
    pk, customer_id, created_at, first_response_at, resolved_at, fr_breached, res_breached = row
    fact = TicketFact(
        ticket_id=pk,
        customer_id=customer_id,
        created_day=utc_day(created_at),
        breached=bool(fr_breached or res_breached),
    )
    if first_response_at is not None:
        fact.first_response_day = utc_day(first_response_at)
        fact.first_response_bucket = bucket_of((first_response_at - created_at).total_seconds())
    if resolved_at is not None:
        fact.resolved_day = utc_day(resolved_at)
        fact.resolution_bucket = bucket_of((resolved_at - created_at).total_seconds())
    return fact


def _fact_key(fact: TicketFact) -> tuple:
    return (
        fact.customer_id,
        fact.created_day,
        fact.breached,
        fact.first_response_day,
        fact.first_response_bucket,
        fact.resolved_day,
        fact.resolution_bucket,
    )


def facts_refresh(*, ticket_ids: Iterable[int]) -> set[date]:
    """Recompute the facts of these tickets; returns the days whose ticket rollups changed
    (the days a changed ticket counted on before, and those it counts on now)."""
    days: set[date] = set()
    for chunk in _chunks(sorted(set(ticket_ids)), CHUNK):
        old = {f.ticket_id: f for f in TicketFact.objects.filter(ticket_id__in=chunk)}
        new = {row[0]: ticket_fact(row) for row in Ticket.objects.filter(pk__in=chunk).values_list(*TICKET_COLUMNS)}
        changed = [
            pk for pk in chunk if (pk in old) != (pk in new) or (pk in old and _fact_key(old[pk]) != _fact_key(new[pk]))
        ]
        for pk in changed:
            for fact in (old.get(pk), new.get(pk)):
                if fact is not None:
                    days |= fact.days()
        TicketFact.objects.filter(ticket_id__in=changed).delete()
        TicketFact.objects.bulk_create([new[pk] for pk in changed if pk in new], batch_size=CHUNK)
    return days


def facts_rebuild_all() -> None:
    """Facts of every ticket, read in primary-key order a chunk at a time."""
    TicketFact.objects.all().delete()
    last = 0
    while True:
        rows = list(Ticket.objects.filter(pk__gt=last).order_by("pk").values_list(*TICKET_COLUMNS)[: CHUNK * 5])
        if not rows:
            return
        TicketFact.objects.bulk_create([ticket_fact(row) for row in rows], batch_size=CHUNK)
        last = rows[-1][0]


# --- Day rollups --------------------------------------------------------------


def _replace(model, days: list[date], rows: dict[tuple, dict], key_fields: tuple[str, ...]) -> None:
    """Replace the model's rows for these days by ``rows`` ({(day, customer_id, *key): measures})
    plus a total row per day and key (customer NULL)."""
    totals: dict[tuple, dict] = {}
    for (day, _customer, *key), measures in rows.items():
        total = totals.setdefault((day, None, *key), defaultdict(int))
        for name, value in measures.items():
            total[name] += value
    model.objects.filter(day__in=days).delete()
    model.objects.bulk_create(
        [
            model(day=day, customer_id=customer, **dict(zip(key_fields, key, strict=True)), **measures)
            for (day, customer, *key), measures in (rows | totals).items()
        ],
        batch_size=CHUNK,
    )


def ticket_days_recompute(days: Iterable[date]) -> None:
    for chunk in _chunks(sorted(set(days)), DAYS_PER_CHUNK):
        rows: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
        facts = TicketFact.objects.order_by()
        for r in (
            facts.filter(created_day__in=chunk)
            .values("created_day", "customer_id")
            .annotate(n=Count("pk"), b=Count("pk", filter=Q(breached=True)))
        ):
            row = rows[(r["created_day"], r["customer_id"])]
            row["opened"] += r["n"]
            row["breached"] += r["b"]
        for day_field, bucket_field, count_field, prefix in (
            ("first_response_day", "first_response_bucket", "first_responses", FRT_FIELDS),
            ("resolved_day", "resolution_bucket", "resolved", TTR_FIELDS),
        ):
            counted = facts.filter(**{f"{day_field}__in": chunk}).values(day_field, "customer_id", bucket_field)
            for r in counted.annotate(n=Count("pk")):
                row = rows[(r[day_field], r["customer_id"])]
                row[count_field] += r["n"]
                row[prefix[r[bucket_field]]] += r["n"]
        _replace(DailyTicketStats, chunk, rows, ())


def _day_range(chunk: list[date]) -> tuple[datetime, datetime]:
    return day_start(chunk[0]), day_start(chunk[-1]) + timedelta(days=1)


def run_days_recompute(days: Iterable[date]) -> None:
    """Run states and matched symptoms, on the days the runs were requested."""
    for chunk in _chunks(sorted(set(days)), DAYS_PER_CHUNK):
        wanted = set(chunk)
        lo, hi = _day_range(chunk)
        runs: dict[tuple, dict] = {}
        for r in (
            CollectionRun.objects.order_by()
            .filter(created_at__gte=lo, created_at__lt=hi)
            # A fleet sweep's run has no ticket: its customer is the sweep's.
            .annotate(
                day=TruncDate("created_at", tzinfo=UTC), owner=Coalesce("ticket__customer_id", "sweep__customer_id")
            )
            .values("day", "owner", "state", "failure_kind")
            .annotate(n=Count("pk"))
        ):
            if r["day"] in wanted:
                runs[(r["day"], r["owner"], r["state"], r["failure_kind"])] = {"runs": r["n"]}
        _replace(DailyRunStats, chunk, runs, ("state", "failure_kind"))
        symptoms: dict[tuple, dict] = {}
        for m in (
            Match.objects.order_by()
            .filter(matched=True, run__created_at__gte=lo, run__created_at__lt=hi)
            .annotate(
                day=TruncDate("run__created_at", tzinfo=UTC),
                owner=Coalesce("run__ticket__customer_id", "run__sweep__customer_id"),
            )
            .values("day", "owner", "symptom_id")
            .annotate(n=Count("run", distinct=True))
        ):
            if m["day"] in wanted:
                symptoms[(m["day"], m["owner"], m["symptom_id"])] = {"runs": m["n"]}
        _replace(DailySymptomStats, chunk, symptoms, ("symptom_id",))


def recipe_days_recompute(days: Iterable[date]) -> None:
    """Recipe outcomes, on the days their tickets were opened."""
    for chunk in _chunks(sorted(set(days)), DAYS_PER_CHUNK):
        wanted = set(chunk)
        lo, hi = _day_range(chunk)
        rows: dict[tuple, dict] = {}
        for r in (
            RecipeOutcome.objects.order_by()
            .filter(ticket__created_at__gte=lo, ticket__created_at__lt=hi)
            .annotate(day=TruncDate("ticket__created_at", tzinfo=UTC))
            .values("day", "ticket__customer_id", "recipe_id", "kind")
            .annotate(n=Count("pk"))
        ):
            if r["day"] in wanted:
                rows[(r["day"], r["ticket__customer_id"], r["recipe_id"], r["kind"])] = {"tickets": r["n"]}
        _replace(DailyRecipeStats, chunk, rows, ("recipe_id", "kind"))


# --- Entry points ---------------------------------------------------------------


def _marks() -> dict[str, int]:
    """The newest ids now: the next refresh scans past them."""
    return {
        "event_id": TicketEvent.objects.aggregate(m=Max("pk"))["m"] or 0,
        "match_id": Match.objects.aggregate(m=Max("pk"))["m"] or 0,
        "outcome_id": RecipeOutcome.objects.aggregate(m=Max("pk"))["m"] or 0,
    }


def _locked_cursor() -> RollupCursor:
    RollupCursor.objects.get_or_create(pk=1)
    return RollupCursor.objects.select_for_update().get(pk=1)


def _days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@transaction.atomic
def reports_refresh(*, now: datetime | None = None) -> dict[str, int]:
    """Recompute the days touched since the previous refresh (see the module docstring).
    Returns how many days of each rollup were recomputed."""
    now = now or timezone.now()
    cursor = _locked_cursor()  # two refreshes at once take turns
    if cursor.started_at is None:
        return reports_rebuild(now=now)
    marks = _marks()
    since = cursor.previous_started_at or cursor.started_at

    ticket_ids = set(Ticket.objects.filter(updated_at__gte=since).values_list("pk", flat=True))
    ticket_ids |= set(
        TicketEvent.objects.filter(pk__gt=cursor.previous_event_id, kind=EventKind.SLA).values_list(
            "ticket_id", flat=True
        )
    )
    outcome_tickets = set(
        RecipeOutcome.objects.filter(pk__gt=cursor.previous_outcome_id).values_list("ticket_id", flat=True)
    )
    ticket_ids |= outcome_tickets
    ticket_days = facts_refresh(ticket_ids=ticket_ids)
    # Withdrawing an outcome deletes its row; the services record it on the timeline, which
    # bumps updated_at, so every touched ticket's day is recounted.
    recipe_days = {f.created_day for f in TicketFact.objects.filter(ticket_id__in=ticket_ids).only("created_day")}

    run_ids = set(Match.objects.filter(pk__gt=cursor.previous_match_id).values_list("run_id", flat=True))
    run_days = {
        utc_day(t)
        for t in CollectionRun.objects.filter(
            Q(created_at__gte=since) | Q(finished_at__gte=since) | Q(pk__in=run_ids)
        ).values_list("created_at", flat=True)
    }

    ticket_days_recompute(ticket_days)
    recipe_days_recompute(recipe_days)
    run_days_recompute(run_days)
    _advance(cursor, now=now, marks=marks)
    return {"ticket_days": len(ticket_days), "recipe_days": len(recipe_days), "run_days": len(run_days)}


def _advance(cursor: RollupCursor, *, now: datetime, marks: dict[str, int], rebuilt: bool = False) -> None:
    if rebuilt:
        cursor.previous_started_at = now
        cursor.previous_event_id, cursor.previous_match_id, cursor.previous_outcome_id = (
            marks["event_id"],
            marks["match_id"],
            marks["outcome_id"],
        )
    else:
        cursor.previous_started_at = cursor.started_at
        cursor.previous_event_id, cursor.previous_match_id, cursor.previous_outcome_id = (
            cursor.event_id,
            cursor.match_id,
            cursor.outcome_id,
        )
    cursor.started_at = now
    cursor.event_id, cursor.match_id, cursor.outcome_id = marks["event_id"], marks["match_id"], marks["outcome_id"]
    if rebuilt:
        cursor.rebuilt_at = now
    cursor.save()


@transaction.atomic
def reports_rebuild(*, since: date | None = None, now: datetime | None = None) -> dict[str, int]:
    """Rebuild every rollup (or those from day ``since`` on) from the raw tables.

    With ``since``, tickets created or updated since then get new facts, and every day from
    ``since`` to today is recomputed, plus any earlier day a changed ticket used to count on.
    """
    now = now or timezone.now()
    cursor = _locked_cursor()
    marks = _marks()
    today = utc_day(now)
    if since is None:
        facts_rebuild_all()
        for model in (DailyTicketStats, DailyRunStats, DailySymptomStats, DailyRecipeStats):
            model.objects.all().delete()
        firsts = [
            Ticket.objects.aggregate(m=Min("created_at"))["m"],
            CollectionRun.objects.aggregate(m=Min("created_at"))["m"],
        ]
        known = [utc_day(m) for m in firsts if m is not None]
        days = _days_between(min(known), max(today, *known)) if known else []
        ticket_days = set(days)
    else:
        changed = Ticket.objects.filter(Q(created_at__gte=day_start(since)) | Q(updated_at__gte=day_start(since)))
        ticket_days = facts_refresh(ticket_ids=changed.values_list("pk", flat=True))
        days = _days_between(since, max(today, since))
        ticket_days |= set(days)
    ticket_days_recompute(ticket_days)
    recipe_days_recompute(days)
    run_days_recompute(days)
    _advance(cursor, now=now, marks=marks, rebuilt=True)
    return {"ticket_days": len(ticket_days), "recipe_days": len(days), "run_days": len(days)}


def run_reports_rebuild() -> int:
    """Recompute every day of the run-based rollups: re-matching old runs after a
    knowledge-base change updates their matches in place, which no refresh can see."""
    first = CollectionRun.objects.aggregate(m=Min("created_at"))["m"]
    if first is None:
        return 0
    days = _days_between(utc_day(first), utc_day(timezone.now()))
    with transaction.atomic():
        run_days_recompute(days)
    return len(days)
