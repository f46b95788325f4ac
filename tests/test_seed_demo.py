"""The demo desk tells a story: six months of tickets with collections (some failed the ways real
runs fail), evidence from recorded probe outputs, the real matcher's matches at the simulated
time, and techs' verdicts on the fixes, so every manager chart has data on the first run."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime, time

import pytest
from django.core.management import call_command, get_commands
from django.db.models import Q
from django.utils import timezone

from composition.management.commands import seed_demo
from diagnostics.models import CollectionRun, Evidence, Match, RecipeOutcome, RunState
from triage.models import EventKind, Status, Ticket

TICKETS = 150


def _seed(*, tickets: int = TICKETS, **options) -> str:
    out = io.StringIO()
    call_command("seed_demo", tickets=tickets, days=90, password="demo-pass-123", stdout=out, **options)
    return out.getvalue()


def _fingerprint() -> list:
    return [
        (
            t.subject,
            t.customer.name,
            t.status,
            t.assignee.username if t.assignee else None,
            tuple(t.collection_runs.order_by("created_at", "id").values_list("state", "failure_kind")),
            tuple(sorted(t.recipe_outcomes.values_list("recipe__key", "kind"))),
        )
        for t in Ticket.objects.select_related("customer", "assignee").order_by("created_at", "id")
    ]


@pytest.fixture
def demo(kb, roles):
    return _seed()


def test_the_demo_evidence_ships_with_the_product_not_the_tests():
    assert "tests" not in seed_demo.EVIDENCE_DIR.relative_to(seed_demo.EVIDENCE_DIR.parents[1]).parts
    scenarios = {s for problem in seed_demo.PROBLEMS for s in problem[5]} | {seed_demo.HEALTHY}
    for scenario in scenarios:
        assert seed_demo.scenario_outputs(scenario), f"{scenario} has no recorded outputs"


def _collections_hold_recorded_evidence_and_some_fail_for_real_reasons(demo):
    runs = CollectionRun.objects.all()
    assert runs.count() >= TICKETS // 3
    assert set(runs.values_list("state", flat=True)) == {RunState.SUCCEEDED, RunState.FAILED}
    failed = runs.filter(state=RunState.FAILED)
    assert 0.05 < failed.count() / runs.count() < 0.4
    assert set(failed.values_list("failure_kind", flat=True)) <= set(seed_demo.FAILURES)
    assert len(set(failed.values_list("failure_kind", flat=True))) >= 3
    assert not failed.filter(reason="").exists() and not failed.filter(evidence__isnull=False).exists()
    assert len(set(failed.values_list("ticket__customer", flat=True))) >= 3
    succeeded = runs.filter(state=RunState.SUCCEEDED)
    assert not succeeded.filter(evidence__isnull=True).exists()
    ident = Evidence.objects.filter(probe="strace").first()
    assert ident is not None and "connect(" in ident.text and ident.command.startswith("LC_ALL=C")
    for run in runs:
        assert run.created_at <= run.started_at < run.finished_at <= timezone.now()
        assert run.requested_by == run.ticket.assignee


def _the_real_matcher_ran_at_the_simulated_time(demo):
    matched = Match.objects.filter(matched=True).select_related("run", "symptom")
    assert len({m.symptom.key for m in matched}) >= 8
    assert all(m.created_at == m.run.finished_at for m in matched)
    suggested = RecipeOutcome.objects.filter(kind=RecipeOutcome.SUGGESTED)
    assert suggested.exists()
    finished = {
        t: set(CollectionRun.objects.filter(ticket=t).values_list("finished_at", flat=True))
        for t in suggested.values_list("ticket", flat=True)
    }
    assert all(o.at in finished[o.ticket_id] for o in suggested)


def _most_resolved_tickets_with_suggestions_record_what_fixed_them(demo):
    resolved = Ticket.objects.filter(status__in=(Status.RESOLVED, Status.CLOSED))
    with_fixes = resolved.filter(recipe_outcomes__kind=RecipeOutcome.SUGGESTED).distinct()
    verdicts = with_fixes.filter(recipe_outcomes__kind__in=(RecipeOutcome.ACCEPTED, RecipeOutcome.FIXED)).distinct()
    assert verdicts.count() > with_fixes.count() / 2
    fixed = RecipeOutcome.objects.filter(kind=RecipeOutcome.FIXED).select_related("ticket")
    assert fixed.count() > with_fixes.count() / 3
    for outcome in fixed:
        assert outcome.ticket.status in (Status.RESOLVED, Status.CLOSED)
        assert outcome.at <= outcome.ticket.resolved_at
        assert outcome.by == outcome.ticket.assignee
    assert RecipeOutcome.objects.filter(kind=RecipeOutcome.REJECTED).exists()
    assert Counter(fixed.values_list("by__username", flat=True)).keys() >= {"alice", "bob", "carol", "dave"} - {""}
    weeks = {o.at.isocalendar()[:2] for o in fixed}
    assert len(weeks) >= 6


def _every_chart_has_data_and_timelines_stay_in_order(demo):
    assert "breached an SLA target" in demo
    tickets = Ticket.objects.all()
    assert tickets.filter(first_response_breached=True).exists() and tickets.filter(resolution_breached=True).exists()
    assert tickets.filter(~Q(first_response_at=None), ~Q(resolved_at=None)).count() > TICKETS / 2
    assert tickets.filter(status__in=(Status.NEW, Status.TRIAGING, Status.WAITING)).exists()
    assert len(set(tickets.values_list("assignee", flat=True))) >= 4
    now = timezone.now()
    for ticket in tickets:
        times = list(ticket.events.order_by("id").values_list("created_at", flat=True))
        assert times == sorted(times) and times[0] == ticket.created_at and times[-1] <= now
    assert tickets.filter(events__kind=EventKind.SLA).exists()
    assert tickets.filter(events__kind=EventKind.COLLECTION).exists()
    if "rebuild_reports" in get_commands():
        assert "Rebuilt reports" in demo or "rebuild" in demo.lower()


def _the_standard_tier_runs_on_office_hours(demo):
    from triage.models import SlaTier

    standard = SlaTier.objects.get(name="Standard")
    assert standard.calendar.name == "Berlin office" and SlaTier.objects.get(name="Gold").calendar is None
    # No Standard ticket is due at night, over lunch or at the weekend in Berlin.
    for due in Ticket.objects.filter(customer__sla_tier=standard).values_list("first_response_due", flat=True):
        local = due.astimezone(standard.calendar.schedule().zone)
        assert _due_inside_berlin_office_hours(local), local


def _due_inside_berlin_office_hours(local: datetime) -> bool:
    """Whether a deadline can fall here under 08:00-12:00, 13:00-17:00 on weekdays.

    A target runs out after some working time has passed, so it is never due at a span's opening
    instant, and one that runs out at a span's end is due then (12:00, 17:00). Seconds count: a
    deadline at 08:00:53 is inside the morning span.
    """
    at = local.time()
    in_morning = time(8, 0) < at <= time(12, 0)
    in_afternoon = time(13, 0) < at <= time(17, 0)
    return local.weekday() < 5 and (in_morning or in_afternoon)


def test_the_office_hours_check_counts_seconds_and_the_lunch_break():
    # CI once failed on a real deadline at 08:00:53, which a check on (hour, minute) called 08:00.
    wednesday = datetime(2026, 10, 28)
    assert _due_inside_berlin_office_hours(wednesday.replace(hour=8, second=53))
    assert _due_inside_berlin_office_hours(wednesday.replace(hour=12))
    assert _due_inside_berlin_office_hours(wednesday.replace(hour=17))
    assert not _due_inside_berlin_office_hours(wednesday.replace(hour=8))
    assert not _due_inside_berlin_office_hours(wednesday.replace(hour=12, minute=30))
    assert not _due_inside_berlin_office_hours(wednesday.replace(hour=17, second=1))
    assert not _due_inside_berlin_office_hours(datetime(2026, 10, 31, 10))  # a Saturday


def test_six_months_of_tickets_come_with_collections_matches_and_verdicts(demo):
    # One load checked from every side: loading it is the slow part.
    _collections_hold_recorded_evidence_and_some_fail_for_real_reasons(demo)
    _the_real_matcher_ran_at_the_simulated_time(demo)
    _most_resolved_tickets_with_suggestions_record_what_fixed_them(demo)
    _every_chart_has_data_and_timelines_stay_in_order(demo)
    _the_standard_tier_runs_on_office_hours(demo)


def test_the_demo_is_the_same_every_time_for_a_seed(kb, roles):
    _seed(tickets=60)
    first = _fingerprint()
    Ticket.objects.all().delete()
    _seed(tickets=60, force=True)
    assert _fingerprint() == first
