"""The desk tells the truth about its worker: /healthz, a banner for staff, and queued runs
that say they wait for a worker instead of showing probes "running…"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import CollectionRun, RunState
from tests.conftest import login
from triage.models import Heartbeat

BANNER = "No worker is running"


def _beat(seconds_ago: float) -> None:
    Heartbeat.objects.update_or_create(
        name="worker", defaults={"seen_at": timezone.now() - dt.timedelta(seconds=seconds_ago)}
    )


@pytest.fixture
def queued_run(ticket, server):
    steps = [{"probe": "load", "params": {}}, {"probe": "sockets", "params": {}}]
    return CollectionRun.objects.create(
        ticket=ticket,
        server=server,
        playbook_name="Host health",
        steps=steps,
        state=RunState.QUEUED,
        enqueued_at=timezone.now(),
    )


def test_healthz_is_503_with_the_reason_when_no_worker_ever_reported(client, db):
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["database"] == "ok"
    assert "no worker has reported" in response.json()["worker"]


@override_settings(TRIAGE_WORKER_HEARTBEAT_MAX_AGE=90)
def test_healthz_is_503_when_the_worker_heartbeat_is_older_than_the_bound(client, db):
    _beat(seconds_ago=120)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["worker"].startswith("no worker heartbeat for 1")  # 120 s and a little
    assert response.json()["worker_max_age_seconds"] == 90


@override_settings(TRIAGE_WORKER_HEARTBEAT_MAX_AGE=90)
def test_healthz_is_ok_when_the_worker_heartbeat_is_fresh(client, db):
    _beat(seconds_ago=60)
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["worker"] == "ok"


def test_every_staff_role_sees_the_banner_when_no_worker_is_alive(client, tech, manager, admin_user):
    _beat(seconds_ago=3600)
    for user, page in ((tech, "queue"), (manager, "overview"), (admin_user, "kb")):
        login(client, user)
        body = client.get(reverse(page)).content.decode()
        assert BANNER in body, (user, page)


def test_the_banner_is_gone_while_a_worker_is_alive(client, tech):
    _beat(seconds_ago=5)
    login(client, tech)
    assert BANNER not in client.get(reverse("queue")).content.decode()


def test_someone_without_a_role_is_not_told_about_workers(client, outsider):
    login(client, outsider)
    assert BANNER not in client.get(reverse("login"), follow=True).content.decode()
    assert BANNER not in client.get(reverse("home")).content.decode()


def test_a_queued_run_says_it_waits_for_a_worker_not_that_its_probes_run(client, tech, queued_run):
    login(client, tech)
    body = client.get(reverse("run", kwargs={"run_id": queued_run.pk})).content.decode()
    assert "Waiting for a worker since" in body
    assert "running…" not in body


def test_the_ticket_page_says_a_queued_run_waits_for_a_worker(client, tech, ticket, queued_run):
    login(client, tech)
    body = client.get(reverse("ticket", kwargs={"ticket_id": ticket.pk})).content.decode()
    assert "waiting for a worker since" in body
    assert "running…" not in body


def test_a_running_run_still_shows_its_pending_probes_running(client, tech, queued_run):
    CollectionRun.objects.filter(pk=queued_run.pk).update(state=RunState.RUNNING, started_at=timezone.now())
    login(client, tech)
    body = client.get(reverse("run", kwargs={"run_id": queued_run.pk})).content.decode()
    assert "running…" in body
    assert "Waiting for a worker" not in body
