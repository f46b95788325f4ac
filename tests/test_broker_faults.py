"""The broker dies: a Redis of the test's own, killed with SIGKILL and started again, under the
desk's real collector worker. Every run ends in a definite state, once: nothing lost, nothing
collected twice, and the worker carries on with the next Collect.

- Killed mid-task: kombu used to crash the worker while it restored the unacknowledged message
  (``AttributeError: 'NoneType' object has no attribute 'hostname'``, "Unrecoverable error");
  triage/redis_transport.py turns that into the connection error it is, so the worker reconnects.
- Killed at enqueue: Collect answers at once, the run waits with a reason, and the sweeper sends
  it when Redis is back.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from diagnostics import services
from diagnostics.models import TERMINAL_STATES, AuditEntry, CollectionRun, Playbook, RunState
from diagnostics.services.runs import REQUEUE_AFTER
from tests.lab_servers import lab_server
from tests.worker_support import app_broker, wait_until
from triage import services as desk
from triage.models import EventKind

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

QUICK = [{"probe": "load", "params": {}}, {"probe": "disk", "params": {}}, {"probe": "memory", "params": {}}]
# A probe that keeps the run busy for a few seconds on any lab host (strace watching sshd).
BUSY = [*QUICK, {"probe": "strace", "params": {"process": "sshd", "seconds": 4}}]


@pytest.fixture
def ticket(customer, tech):
    return desk.ticket_create(
        subject="Broker outage", description="Redis restarted", customer=customer, created_by=tech
    )


def _request(redis, ticket, server, tech, steps=QUICK, name="quick") -> CollectionRun:
    playbook = Playbook.objects.get_or_create(name=name, defaults={"steps": steps})[0]
    with app_broker(redis.url()):
        return services.run_request(ticket=ticket, server=server, playbook=playbook, by=tech)


def _settled(run: CollectionRun) -> CollectionRun | None:
    run = CollectionRun.objects.get(pk=run.pk)
    return run if run.state in TERMINAL_STATES and run.diagnosed_at else None


def _assert_collected_once(run: CollectionRun) -> None:
    assert run.state == RunState.SUCCEEDED, run.reason
    assert run.attempts == 1
    steps = list(run.evidence.exclude(probe="ssh_session").order_by("step").values_list("step", flat=True))
    assert steps == list(range(len(run.steps)))  # each step's evidence once
    assert AuditEntry.objects.filter(run=run, action="command").count() == len(run.steps)
    events = list(
        run.ticket.events.filter(kind=EventKind.COLLECTION, data__run=run.pk)
        .order_by("pk")
        .values_list("data__state", flat=True)
    )
    assert events == ["queued", "succeeded"]


def test_redis_killed_mid_task_the_worker_reconnects_and_the_run_ends_once(
    lab, redis, collector, customer, ticket, tech
):
    server = lab_server(customer, lab.add_host("busy", own_pids=True))
    run = _request(redis, ticket, server, tech, steps=BUSY, name="busy")
    wait_until(
        lambda: CollectionRun.objects.get(pk=run.pk).state == RunState.RUNNING, timeout=30, what="the run to be running"
    )
    redis.kill()
    time.sleep(1)
    redis.start()

    run = wait_until(lambda: _settled(run), timeout=40, what="the run to end")
    _assert_collected_once(run)
    # The worker reconnected: a Collect pressed after the restart is collected too.
    after = _request(redis, ticket, server, tech)
    after = wait_until(lambda: _settled(after), timeout=30, what="the run pressed after the restart to end")
    _assert_collected_once(after)
    assert collector.alive
    assert "Unrecoverable error" not in collector.log()


def test_redis_down_at_enqueue_the_run_waits_and_the_sweeper_sends_it_once(
    lab, redis, collector, customer, ticket, tech
):
    server = lab_server(customer, lab.add_host("later", own_pids=True))
    redis.kill()
    run = _request(redis, ticket, server, tech)
    run.refresh_from_db()
    # The bounded publish gave up (no wall-clock figure here: bench/ measures how long Collect takes).
    assert run.state == RunState.QUEUED and run.enqueued_at is None
    assert "broker did not answer" in run.reason

    redis.start()
    later = timezone.now() + REQUEUE_AFTER + timedelta(seconds=1)
    with app_broker(redis.url()):
        assert services.runs_sweep(now=later)["requeued"] == 1
    run = wait_until(lambda: _settled(run), timeout=40, what="the swept run to end")
    _assert_collected_once(run)
    with app_broker(redis.url()):  # a later sweep finds nothing to send again
        assert services.runs_sweep(now=timezone.now() + REQUEUE_AFTER * 2)["requeued"] == 0
    assert collector.alive
