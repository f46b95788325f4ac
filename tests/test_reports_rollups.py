"""The dashboard's rollups say what a direct count over the raw tables says.

A seeded random desk (tickets replied to, resolved, closed, reopened, SLA sweeps, runs
that fail for various reasons, matches, recipe outcomes incl. withdrawn fixes) is built
with the desk's own services; every chart's table from the rollups is compared with the
same table computed here straight from tickets, runs, matches and outcomes, after a
full rebuild and after incremental refreshes.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command

from diagnostics.models import CollectionRun, FixRecipe, Match, RecipeOutcome, RunState, Symptom
from reports import histograms, rollups, selectors
from reports.models import DailyRecipeStats, DailyRunStats, DailySymptomStats, DailyTicketStats
from reports.selectors import Filters
from tests.conftest import make_user
from triage import access, services
from triage.models import OPEN_STATUSES, Customer, Priority, Server, SlaTier, Status, Ticket

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
FAILURES = ["auth", "host_key_changed", "timeout", ""]


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


class Desk:
    """A random desk built through the services, with its clock moving forwards."""

    def __init__(self, seed: int, manager):
        self.rng = random.Random(seed)
        tiers = list(SlaTier.objects.all())
        self.customers = [
            Customer.objects.create(name=f"Customer {i}", sla_tier=self.rng.choice(tiers)) for i in range(4)
        ]
        self.servers = {c.pk: Server.objects.create(customer=c, name="s1", address="192.0.2.1") for c in self.customers}
        self.techs = [make_user(f"tech{i}", access.TECH) for i in range(3)]
        self.symptoms = [Symptom.objects.create(key=f"sym-{i}", title=f"Symptom {i}") for i in range(5)]
        self.recipes = [FixRecipe.objects.create(key=f"rec-{i}", title=f"Recipe {i}") for i in range(4)]
        self.manager = manager

    def minutes(self, low: float, high: float) -> timedelta:
        # Log-uniform, so durations land in many histogram buckets.
        return timedelta(minutes=10 ** self.rng.uniform(low, high))

    def new_ticket(self, at: datetime) -> Ticket:
        customer = self.rng.choice(self.customers)
        return services.ticket_create(
            subject="Slow mail",
            description="It is slow.",
            customer=customer,
            priority=self.rng.choice(Priority.values),
            created_by=self.techs[0],
            now=at,
            assignee=self.rng.choice([None, *self.techs]),
        )

    def work(self, ticket: Ticket, start: datetime, end: datetime) -> None:
        """Random work on a ticket between start and end (never past end)."""
        at = start
        for _ in range(self.rng.randint(0, 4)):
            at += self.minutes(0, 4)
            if at >= end:
                return
            ticket.refresh_from_db()
            move = self.rng.random()
            tech = self.rng.choice(self.techs)
            if move < 0.35:
                services.ticket_reply(ticket=ticket, author=tech, body="On it.", now=at)
            elif move < 0.45:
                services.ticket_add_note(ticket=ticket, author=tech, body="note", now=at)
            else:
                options = {
                    Status.NEW: [Status.TRIAGING, Status.RESOLVED, Status.WAITING],
                    Status.TRIAGING: [Status.WAITING, Status.RESOLVED],
                    Status.WAITING: [Status.TRIAGING, Status.RESOLVED],
                    Status.RESOLVED: [Status.CLOSED, Status.TRIAGING],
                    Status.CLOSED: [Status.TRIAGING],
                }[ticket.status]
                services.ticket_change_status(ticket=ticket, status=self.rng.choice(options), by=tech, now=at)
            if self.rng.random() < 0.1:
                services.flag_sla_breaches(now=at)

    def runs(self, ticket: Ticket, start: datetime, end: datetime) -> None:
        for _ in range(self.rng.randint(0, 2)):
            created = start + (end - start) * self.rng.random()
            state = self.rng.choice([RunState.SUCCEEDED, RunState.FAILED, RunState.PARTIAL, RunState.QUEUED])
            run = CollectionRun.objects.create(
                ticket=ticket,
                server=self.servers[ticket.customer_id],
                playbook_name="p",
                state=state,
                failure_kind=self.rng.choice(FAILURES) if state == RunState.FAILED else "",
                created_at=created,
                finished_at=None if state == RunState.QUEUED else created + timedelta(minutes=1),
            )
            if state != RunState.SUCCEEDED:
                continue
            for symptom in self.rng.sample(self.symptoms, self.rng.randint(0, 3)):
                Match.objects.create(
                    run=run,
                    symptom=symptom,
                    score=0.7,
                    confidence="high",
                    matched=self.rng.random() < 0.8,
                    symptom_version=1,
                    created_at=created,
                )
            for recipe in self.rng.sample(self.recipes, self.rng.randint(0, 2)):
                RecipeOutcome.objects.get_or_create(ticket=ticket, recipe=recipe, kind=RecipeOutcome.SUGGESTED)
                if self.rng.random() < 0.5:
                    RecipeOutcome.objects.get_or_create(ticket=ticket, recipe=recipe, kind=RecipeOutcome.ACCEPTED)
                if self.rng.random() < 0.3:
                    # One fixing recipe per ticket, as the outcome services keep it; the withdrawal
                    # is recorded on the timeline as they record it.
                    RecipeOutcome.objects.filter(ticket=ticket, kind=RecipeOutcome.FIXED).delete()
                    RecipeOutcome.objects.create(ticket=ticket, recipe=recipe, kind=RecipeOutcome.FIXED)
                    services.ticket_record_event(ticket=ticket, kind="fix", body="fixed", now=created)

    def period(self, start: datetime, end: datetime, *, new: int, touched: int) -> None:
        for _ in range(new):
            at = start + (end - start) * self.rng.random() * 0.5
            ticket = self.new_ticket(at)
            self.work(ticket, at, end)
            self.runs(ticket, at, end)
        existing = list(Ticket.objects.filter(created_at__lt=start).order_by("pk"))
        for ticket in self.rng.sample(existing, min(touched, len(existing))):
            at = start + (end - start) * self.rng.random() * 0.5
            self.work(ticket, at, end)
            if self.rng.random() < 0.3:
                self.runs(ticket, at, end)
        services.flag_sla_breaches(now=end - timedelta(seconds=1))


# --- The direct computation -------------------------------------------------------


def _in(filters: Filters, moment: datetime | None) -> bool:
    return moment is not None and filters.start <= day_of(moment) <= filters.end


def _tickets(filters: Filters):
    qs = Ticket.objects.all()
    return qs.filter(customer_id=filters.customer_id) if filters.customer_id else qs


def _cells(fr: list[float], res: list[float]) -> tuple:
    def hours(values, q):
        value = histograms.percentile(histograms.histogram(values), q)
        return None if value is None else round(value / 3600, 3)

    return (len(fr), hours(fr, 0.5), hours(fr, 0.9), len(res), hours(res, 0.5), hours(res, 0.9))


def _weeks(filters: Filters) -> list[date]:
    week = filters.start - timedelta(days=filters.start.weekday())
    weeks = []
    while week <= filters.end:
        weeks.append(week)
        week += timedelta(days=7)
    return weeks


def direct(filters: Filters) -> dict[str, list[tuple]]:
    tickets = list(_tickets(filters))
    week = lambda moment: day_of(moment) - timedelta(days=day_of(moment).weekday())  # noqa: E731
    tables = {}

    opened = Counter(day_of(t.created_at) for t in tickets if _in(filters, t.created_at))
    resolved = Counter(day_of(t.resolved_at) for t in tickets if _in(filters, t.resolved_at))
    days = [filters.start + timedelta(days=i) for i in range((filters.end - filters.start).days + 1)]
    tables["opened-resolved"] = [(d, opened[d], resolved[d]) for d in days]

    fr_by_week, res_by_week = defaultdict(list), defaultdict(list)
    fr_by_customer, res_by_customer = defaultdict(list), defaultdict(list)
    for t in tickets:
        if _in(filters, t.first_response_at):
            seconds = (t.first_response_at - t.created_at).total_seconds()
            fr_by_week[week(t.first_response_at)].append(seconds)
            fr_by_customer[t.customer_id].append(seconds)
        if _in(filters, t.resolved_at):
            seconds = (t.resolved_at - t.created_at).total_seconds()
            res_by_week[week(t.resolved_at)].append(seconds)
            res_by_customer[t.customer_id].append(seconds)
    tables["response-weekly"] = [(w, *_cells(fr_by_week[w], res_by_week[w])) for w in _weeks(filters)]
    names = dict(Customer.objects.values_list("pk", "name"))
    busy = sorted(
        (c for c in set(fr_by_customer) | set(res_by_customer)),
        key=lambda c: (-(len(fr_by_customer[c]) + len(res_by_customer[c])), c),
    )[: selectors.TOP]
    tables["response-customers"] = [(names[c], *_cells(fr_by_customer[c], res_by_customer[c])) for c in busy]

    opened_w, breached_w = Counter(), Counter()
    for t in tickets:
        if _in(filters, t.created_at):
            opened_w[week(t.created_at)] += 1
            breached_w[week(t.created_at)] += t.first_response_breached or t.resolution_breached
    tables["sla-breaches"] = [
        (w, opened_w[w], breached_w[w], round(100 * breached_w[w] / opened_w[w], 2) if opened_w[w] else None)
        for w in _weeks(filters)
    ]

    open_tickets = [t for t in tickets if t.status in OPEN_STATUSES]
    backlog = Counter((t.status, t.priority) for t in open_tickets)
    tables["backlog"] = [(Status(s).label, f"P{p}", backlog[(s, p)]) for s in OPEN_STATUSES for p in Priority.values]

    runs = [
        r
        for r in CollectionRun.objects.select_related("ticket")
        if _in(filters, r.created_at) and filters.customer_id in (None, r.ticket.customer_id)
    ]
    run_ids = {r.pk for r in runs}
    matched = Counter(m.symptom_id for m in Match.objects.filter(matched=True) if m.run_id in run_ids)
    titles = dict(Symptom.objects.values_list("pk", "title"))
    tables["symptoms"] = [
        (titles[pk], n) for pk, n in sorted(matched.items(), key=lambda kv: (-kv[1], kv[0]))[: selectors.TOP]
    ]

    kinds = [k for k, _ in RecipeOutcome.KINDS]
    outcomes = defaultdict(Counter)
    for o in RecipeOutcome.objects.select_related("ticket"):
        if _in(filters, o.ticket.created_at) and filters.customer_id in (None, o.ticket.customer_id):
            outcomes[o.recipe_id][o.kind] += 1
    recipes = dict(FixRecipe.objects.values_list("pk", "title"))
    order = sorted(outcomes, key=lambda pk: (*(-outcomes[pk][k] for k in reversed(kinds)), pk))[: selectors.TOP]
    tables["recipes"] = [(recipes[pk], *(outcomes[pk][k] for k in kinds)) for pk in order]

    failed = [r for r in runs if r.state == RunState.FAILED]
    reasons = Counter(r.failure_kind for r in failed)
    tables["failures-reason"] = [
        (k or "unspecified", n) for k, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    per_customer = Counter(r.ticket.customer_id for r in runs)
    failed_customer = Counter(r.ticket.customer_id for r in failed)
    tables["failures-customer"] = [
        (names[c], per_customer[c], n, round(100 * n / per_customer[c], 2))
        for c, n in sorted(failed_customer.items(), key=lambda kv: (-kv[1], kv[0]))[: selectors.TOP]
    ]

    users = dict(Ticket.assignee.field.related_model.objects.values_list("pk", "username"))
    load = defaultdict(Counter)
    for t in open_tickets:
        load[t.assignee_id][t.priority] += 1
    order = sorted(load, key=lambda pk: (pk is None, -sum(load[pk].values()), users.get(pk, "")))
    tables["workload"] = [
        (users[pk] if pk else "(unassigned)", *(load[pk][p] for p in Priority.values), sum(load[pk].values()))
        for pk in order
    ]
    return tables


def random_filters(rng: random.Random, desk: Desk, *, end: date) -> list[Filters]:
    filters = [Filters(start=end - timedelta(days=89), end=end)]
    for _ in range(3):
        start = end - timedelta(days=rng.randint(0, 120))
        stop = start + timedelta(days=rng.randint(0, 60))
        filters.append(Filters(start=start, end=stop, customer_id=rng.choice([None, *(c.pk for c in desk.customers)])))
    return filters


def assert_rollups_match_raw(manager, desk: Desk, *, end: date) -> None:
    for filters in random_filters(desk.rng, desk, end=end):
        got = {name: selectors.chart_table(user=manager, name=name, filters=filters).rows for name in selectors.CHARTS}
        assert got == direct(filters), filters


def rollup_rows() -> dict:
    models = (DailyTicketStats, DailyRunStats, DailySymptomStats, DailyRecipeStats)
    return {
        model.__name__: sorted(
            (tuple(v for k, v in row.items() if k != "id") for row in model.objects.values()), key=repr
        )
        for model in models
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_rollups_after_a_rebuild_equal_a_direct_count(manager, seed):
    desk = Desk(seed, manager)
    desk.period(T0 - timedelta(days=100), T0, new=70, touched=0)
    rollups.reports_rebuild(now=T0)
    assert_rollups_match_raw(manager, desk, end=day_of(T0))


@pytest.mark.parametrize("seed", [3, 4])
def test_incremental_refreshes_keep_the_rollups_equal_to_a_direct_count(manager, seed):
    desk = Desk(seed, manager)
    desk.period(T0 - timedelta(days=60), T0, new=40, touched=0)
    rollups.reports_rebuild(now=T0)
    moment = T0
    for _ in range(3):
        # Replies, resolutions, reopenings and closes of old tickets move their counts between days.
        later = moment + timedelta(days=4)
        desk.period(moment, later, new=8, touched=15)
        rollups.reports_refresh(now=later)
        moment = later
    assert_rollups_match_raw(manager, desk, end=day_of(moment))
    incremental = rollup_rows()
    rollups.reports_rebuild(now=moment)
    assert rollup_rows() == incremental


def test_a_partial_rebuild_since_a_day_equals_a_full_one(manager):
    desk = Desk(5, manager)
    desk.period(T0 - timedelta(days=40), T0, new=30, touched=0)
    rollups.reports_rebuild(now=T0)
    # Changes the refresh never saw (as if the beat had been down and the cursor lost).
    desk.period(T0, T0 + timedelta(days=3), new=5, touched=10)
    call_command("rebuild_reports", "--since", (T0 - timedelta(days=1)).date().isoformat(), stdout=None)
    partial = rollup_rows()
    call_command("rebuild_reports")
    assert rollup_rows() == partial


def test_a_refresh_before_any_rebuild_builds_everything(manager):
    desk = Desk(6, manager)
    desk.period(T0 - timedelta(days=20), T0, new=10, touched=0)
    rollups.reports_refresh(now=T0)
    assert_rollups_match_raw(manager, desk, end=day_of(T0))


@pytest.mark.parametrize("seconds", [0, 59.9, 60, 61, 3600, 86400 * 3, 86400 * 400, -5])
def test_a_percentile_is_exact_to_its_bucket(seconds):
    durations = [seconds] * 9 + [10**9]
    counts = histograms.histogram(durations)
    assert histograms.percentile_bucket(counts, 0.5) == histograms.bucket_of(seconds)
    value = histograms.percentile(counts, 0.5)
    if 60 <= seconds < histograms.EDGES[-1]:
        assert abs(value - seconds) / seconds < 0.19
    assert histograms.percentile([0] * histograms.NUM_BUCKETS, 0.5) is None
