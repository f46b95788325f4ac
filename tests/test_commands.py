"""Operator entry points: roles, the first admin, the demo desk, the periodic tasks."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from triage import tasks
from triage.models import EventKind, Heartbeat, SlaTarget, Status, Ticket, TicketEvent


def run(*args, **kwargs) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_setup_roles_is_idempotent(db):
    run("setup_roles")
    run("setup_roles")
    from django.contrib.auth.models import Group

    assert sorted(Group.objects.values_list("name", flat=True)) == ["admin", "manager", "tech"]
    assert SlaTarget.objects.count() == 12


def test_create_admin_prints_a_generated_password_that_works(db, client):
    run("setup_roles")
    out = run("create_admin", username="root-admin", password="")
    password = re.search(r"password: (\S+)", out).group(1)
    assert client.login(username="root-admin", password=password)
    assert "already exists" in run("create_admin", username="root-admin", password="")


def test_create_admin_refuses_a_short_password(db):
    with pytest.raises(CommandError, match="at least 10"):
        run("create_admin", username="x", password="short")


def test_seed_demo_loads_a_living_desk_once(db):
    run("setup_roles")
    out = run("seed_demo", tickets=60, password="demo-pass-123")
    assert "60 tickets" in out
    assert Ticket.objects.count() == 60
    statuses = set(Ticket.objects.values_list("status", flat=True))
    assert {Status.CLOSED, Status.TRIAGING} <= statuses
    kinds = set(TicketEvent.objects.values_list("kind", flat=True))
    assert {EventKind.CREATED, EventKind.REPLY, EventKind.NOTE, EventKind.STATUS, EventKind.ASSIGNMENT} <= kinds
    # Timelines never run backwards and never run past now.
    for ticket in Ticket.objects.all()[:20]:
        times = list(ticket.events.values_list("created_at", flat=True))
        assert times == sorted(times) and times[0] == ticket.created_at
    assert "already loaded" in run("seed_demo", tickets=60)
    assert Ticket.objects.count() == 60
    assert get_user_model().objects.get(username="maria").groups.filter(name="manager").exists()


def test_the_periodic_tasks_do_their_work_when_called(customer, tech):
    from datetime import timedelta

    from django.utils import timezone

    from triage import services

    services.ticket_create(
        subject="late",
        description="d",
        customer=customer,
        priority=1,
        created_by=tech,
        now=timezone.now() - timedelta(days=2),
    )
    tasks.record_worker_heartbeat()
    assert Heartbeat.objects.get(name="worker").seen_at is not None
    assert tasks.flag_sla_breaches() == 2
    assert tasks.flag_sla_breaches() == 0
