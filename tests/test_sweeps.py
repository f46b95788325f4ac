"""Fleet sweeps: one playbook across a customer's servers, results grouped by symptom, one ticket per
symptom (deduplicated), unreachable hosts listed with their reasons, and schedules started by beat.

The first tests sweep recorded evidence (each run holds the system log a real host would return) and
diagnose it as the worker does; the lab test at the end collects from real sshd hosts, one of which
drops SYNs.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import timezone

from diagnostics.knowledge.diagnosis import run_diagnose, ticket_findings
from diagnostics.models import CollectionRun, Evidence, Playbook, RunState, Sweep, SweepFinding, SweepSchedule
from diagnostics.selectors import suggested_fixes
from diagnostics.services import run_execute
from diagnostics.services.sweeps import (
    schedule_save,
    sweep_file_tickets,
    sweep_start,
    sweeps_start_due,
)
from diagnostics.sweep_selectors import sweep_results
from tests.lab_servers import lab_server
from triage import services as desk
from triage.models import EventKind, Server, ServerRole, Status, Ticket

CONNTRACK = "Dec  3 02:00:01 {host} kernel: [81234.5] nf_conntrack: table full, dropping packet\n"
OOM = "Dec  3 02:10:07 {host} kernel: [81834.1] Out of memory: Killed process 4242 (mysqld) total-vm:8123456kB\n"
QUIET = "Dec  3 02:00:00 {host} systemd[1]: Started Daily apt upgrade and clean activities.\n"
STEPS = [{"probe": "system_log", "params": {}}]


@pytest.fixture
def playbook(db):
    return Playbook.objects.create(name="Logs", steps=STEPS)


@pytest.fixture
def fleet(customer):
    """Four web servers and a database server of the customer."""
    web, _ = ServerRole.objects.get_or_create(name="web")
    database, _ = ServerRole.objects.get_or_create(name="db")
    servers = {}
    for index, name in enumerate(["web1", "web2", "web3", "web4", "db1"]):
        server = Server.objects.create(customer=customer, name=name, address=f"192.0.2.{20 + index}")
        server.roles.add(database if name == "db1" else web)
        servers[name] = server
    return servers


def play(sweep: Sweep, logs: dict[str, str | None]) -> None:
    """Each run of the sweep ends as a worker would leave it: the host's system log as evidence (or, for
    None, a failed connection), then the diagnosis step, which settles the sweep after the last run."""
    for run in sweep.runs.select_related("server"):
        text = logs[run.server.name]
        now = timezone.now()
        if text is None:
            CollectionRun.objects.filter(pk=run.pk).update(
                state=RunState.FAILED,
                failure_kind="unreachable",
                finished_at=now,
                reason="Unreachable: connect timed out after 5 s.",
            )
        else:
            text = text.format(host=run.server.name)
            Evidence.objects.create(
                run=run,
                step=0,
                probe="system_log",
                command="tail",
                exit_status=0,
                output=f"==> /var/log/messages <==\n{text}".encode(),
                output_bytes=len(text),
            )
            CollectionRun.objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED, finished_at=now)
        run_diagnose(run_id=run.pk)


FLEET_LOGS = {"web1": CONNTRACK, "web2": CONNTRACK + OOM, "web3": QUIET, "web4": CONNTRACK, "db1": None}


def test_a_sweep_queues_one_run_per_server_with_the_role(fleet, customer, playbook, tech):
    sweep = sweep_start(
        customer=customer, playbook=playbook, role=ServerRole.objects.get(name="web"), by=tech, enqueue=False
    )
    runs = list(sweep.runs.select_related("server").order_by("server__name"))
    assert [run.server.name for run in runs] == ["web1", "web2", "web3", "web4"]
    assert all(run.ticket_id is None and run.state == RunState.QUEUED and run.steps == STEPS for run in runs)
    everything = sweep_start(customer=customer, playbook=playbook, by=tech, enqueue=False)
    assert everything.runs.count() == 5


def test_a_sweep_of_a_role_no_server_has_is_refused(fleet, customer, playbook, tech):
    nobody, _ = ServerRole.objects.get_or_create(name="mail")
    with pytest.raises(ValidationError, match="no server with the role mail"):
        sweep_start(customer=customer, playbook=playbook, role=nobody, by=tech, enqueue=False)
    assert not Sweep.objects.exists()


def test_the_results_group_symptoms_across_hosts_with_their_lines_and_list_the_unreachable(
    kb, fleet, customer, playbook, tech
):
    sweep = sweep_start(customer=customer, playbook=playbook, by=tech, enqueue=False)
    play(sweep, FLEET_LOGS)
    sweep.refresh_from_db()
    assert sweep.finished_at is not None
    results = sweep_results(sweep=sweep)
    headlines = [group.headline for group in results.groups]
    assert headlines[0] == "3 of 5 hosts: Netfilter connection tracking table full: new connections are dropped"
    assert headlines[1:] == ["1 of 5 hosts: The kernel's OOM killer is killing processes"]
    conntrack = results.groups[0]
    assert [host.server_name for host in conntrack.hosts] == ["web1", "web2", "web4"]
    for host in conntrack.hosts:
        assert any("nf_conntrack: table full" in c.text and c.line == 2 for c in host.citations), host
    assert [(u.server.name, u.kind) for u in results.unreached] == [("db1", "Unreachable")]
    assert results.unreached[0].reason == "Connect timed out after 5 s."
    assert {row.server.name: row.symptoms for row in results.hosts} == {
        "db1": 0,
        "web1": 1,
        "web2": 2,
        "web3": 0,
        "web4": 1,
    }


def test_a_sweep_is_not_finished_while_a_host_is_still_going(kb, fleet, customer, playbook, tech):
    sweep = sweep_start(customer=customer, playbook=playbook, by=tech, enqueue=False)
    play(sweep, FLEET_LOGS)
    late = sweep_start(customer=customer, playbook=playbook, by=tech, enqueue=False)
    run = late.runs.first()
    Evidence.objects.create(run=run, step=0, probe="system_log", command="tail", exit_status=0, output=b"x")
    CollectionRun.objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED, finished_at=timezone.now())
    run_diagnose(run_id=run.pk)
    late.refresh_from_db()
    assert late.finished_at is None
    with pytest.raises(ValidationError, match="still running"):
        sweep_file_tickets(sweep=late, by=tech)


def test_filing_opens_one_ticket_per_symptom_that_shows_its_fixes_and_filing_again_files_nothing(
    kb, fleet, customer, playbook, tech
):
    sweep = sweep_start(customer=customer, playbook=playbook, by=tech, enqueue=False)
    play(sweep, FLEET_LOGS)
    sweep.refresh_from_db()
    filed = sweep_file_tickets(sweep=sweep, by=tech)
    assert [opened for _, opened in filed] == [True, True]
    conntrack = filed[0][0]
    assert conntrack.subject == ("Netfilter connection tracking table full: new connections are dropped (3 of 5 hosts)")
    assert sorted(conntrack.servers.values_list("name", flat=True)) == ["web1", "web2", "web4"]
    assert "web2 (run " in conntrack.description and "nf_conntrack: table full" in conntrack.description
    # The ticket's diagnosis is the sweep's runs, for its own symptom only (web2's OOM is the other ticket's).
    findings = ticket_findings(ticket=conntrack).findings
    assert sorted((f.server.name, f.symptom.key) for f in findings) == [
        ("web1", "conntrack-table-full"),
        ("web2", "conntrack-table-full"),
        ("web4", "conntrack-table-full"),
    ]
    fixes = suggested_fixes(ticket=conntrack)
    assert fixes and all(fix.symptoms[0].title.startswith("Netfilter connection tracking") for fix in fixes)
    assert any("nf_conntrack: table full" in c.text for c in fixes[0].citations)

    assert sweep_file_tickets(sweep=sweep, by=tech) == []
    assert Ticket.objects.count() == 2
    assert SweepFinding.objects.count() == 4  # 3 conntrack hosts + 1 OOM host


def test_a_later_sweep_adds_to_the_open_ticket_and_a_closed_one_gets_a_new_ticket(kb, fleet, customer, playbook, tech):
    first = sweep_start(customer=customer, playbook=playbook, by=tech, open_tickets=True, enqueue=False)
    play(first, FLEET_LOGS)  # the last run's diagnosis settles the sweep, which files its tickets
    assert Ticket.objects.count() == 2
    conntrack = (
        Ticket.objects.filter(sweep_findings__symptom__key="conntrack-table-full", sweep_findings__sweep=first)
        .distinct()
        .get()
    )

    # Tonight web3 has it too, and web1 no longer does.
    second = sweep_start(customer=customer, playbook=playbook, by=tech, open_tickets=True, enqueue=False)
    play(second, {**FLEET_LOGS, "web1": QUIET, "web3": CONNTRACK})
    assert Ticket.objects.count() == 2
    note = conntrack.events.filter(kind=EventKind.NOTE).get()
    assert note.body == f"Seen again on 3 of 5 hosts (sweep #{second.pk}): web2, web3, web4."
    assert sorted(conntrack.servers.values_list("name", flat=True)) == ["web1", "web2", "web3", "web4"]
    assert {f.server.name for f in ticket_findings(ticket=conntrack).findings} >= {"web2", "web3", "web4"}

    desk.ticket_change_status(ticket=conntrack, status=Status.RESOLVED, by=tech)
    third = sweep_start(customer=customer, playbook=playbook, by=tech, open_tickets=True, enqueue=False)
    play(third, FLEET_LOGS)
    assert Ticket.objects.count() == 3
    reopened = Ticket.objects.filter(sweep_findings__sweep=third, sweep_findings__symptom__key="conntrack-table-full")
    assert reopened.distinct().get().pk != conntrack.pk


def test_another_customers_open_ticket_for_the_symptom_is_not_reused(kb, fleet, customer, playbook, tech):
    other = type(customer).objects.create(name="Contoso", sla_tier=customer.sla_tier)
    elsewhere = Server.objects.create(customer=other, name="edge1", address="192.0.2.99")
    theirs = sweep_start(customer=other, playbook=playbook, by=tech, open_tickets=True, enqueue=False)
    play(theirs, {"edge1": CONNTRACK})
    ours = sweep_start(customer=customer, playbook=playbook, by=tech, open_tickets=True, enqueue=False)
    play(ours, FLEET_LOGS)
    assert Ticket.objects.filter(customer=other).count() == 1
    assert Ticket.objects.filter(customer=customer).count() == 2
    assert elsewhere.pk not in set(Ticket.objects.filter(customer=customer).values_list("servers", flat=True))


def test_two_sweeps_filing_at_once_open_one_ticket_per_symptom(transactional_db, kb, fleet, customer, playbook, tech):
    sweeps = [sweep_start(customer=customer, playbook=playbook, by=tech, enqueue=False) for _ in range(2)]
    for sweep in sweeps:
        play(sweep, FLEET_LOGS)
        sweep.refresh_from_db()
    barrier = threading.Barrier(2)
    filed: list[tuple[int, bool]] = []

    def file(sweep: Sweep) -> None:
        try:
            barrier.wait(timeout=10)
            filed.extend((ticket.pk, opened) for ticket, opened in sweep_file_tickets(sweep=sweep, by=tech))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=file, args=(sweep,)) for sweep in sweeps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert Ticket.objects.count() == 2  # conntrack and OOM, once each
    assert sorted(opened for _, opened in filed) == [False, False, True, True]
    assert len({pk for pk, _ in filed}) == 2


# --- Schedules ------------------------------------------------------------------------


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_beat_starts_a_due_schedule_exactly_once_per_due_time(fleet, customer, playbook, admin_user):
    schedule = schedule_save(
        schedule=SweepSchedule(customer=customer, playbook=playbook, hour=2, minute=30, created_by=admin_user),
        now=at(3, 1),
    )
    assert sweeps_start_due(now=at(3, 2, 29)) == []
    started = sweeps_start_due(now=at(3, 2, 31))
    assert len(started) == 1 and started[0].schedule_id == schedule.pk and started[0].runs.count() == 5
    assert started[0].open_tickets is True and started[0].requested_by == admin_user
    assert sweeps_start_due(now=at(3, 2, 31)) == []  # the next beat, or a retried task
    assert sweeps_start_due(now=at(3, 23, 59)) == []
    assert len(sweeps_start_due(now=at(4, 2, 30))) == 1  # tomorrow's
    assert Sweep.objects.filter(schedule=schedule).count() == 2


def test_a_new_schedule_waits_for_its_next_due_time(fleet, customer, playbook):
    schedule_save(schedule=SweepSchedule(customer=customer, playbook=playbook, hour=2), now=at(3, 9))
    assert sweeps_start_due(now=at(3, 9, 1)) == []  # 02:00 today had passed when it was saved
    assert len(sweeps_start_due(now=at(4, 2, 0))) == 1


def test_two_beats_at_once_start_one_sweep(transactional_db, customer, fleet, playbook):
    schedule_save(schedule=SweepSchedule(customer=customer, playbook=playbook, hour=2), now=at(3, 1))
    barrier = threading.Barrier(2)
    started: list[int] = []

    def beat() -> None:
        try:
            barrier.wait(timeout=10)
            started.extend(sweep.pk for sweep in sweeps_start_due(now=at(3, 2, 1)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(started) == 1
    assert Sweep.objects.count() == 1


def test_beat_calls_the_due_sweeps_task_every_minute_and_the_task_starts_them(fleet, customer, playbook):
    from django.conf import settings

    from diagnostics import tasks
    from triage.celery import app

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.start_due_sweeps.name)
    assert entry["schedule"] <= 60 and tasks.start_due_sweeps.name in app.tasks
    due = timezone.now() - timedelta(minutes=5)
    schedule = schedule_save(
        schedule=SweepSchedule(customer=customer, playbook=playbook, hour=due.hour, minute=due.minute),
        now=due - timedelta(minutes=1),
    )
    assert tasks.start_due_sweeps() == 1
    assert tasks.start_due_sweeps() == 0
    assert Sweep.objects.get().schedule == schedule


def test_a_disabled_schedule_starts_nothing(fleet, customer, playbook):
    schedule_save(schedule=SweepSchedule(customer=customer, playbook=playbook, hour=2, enabled=False), now=at(3, 1))
    assert sweeps_start_due(now=at(3, 3)) == []


# --- Real hosts -----------------------------------------------------------------------


@pytest.mark.root
def test_a_sweep_collects_from_real_hosts_and_an_unreachable_one_holds_up_none(
    transactional_db, lab, kb, customer, tech
):
    web, _ = ServerRole.objects.get_or_create(name="web")
    hosts = {name: lab.add_host(name, private_tmp=True) for name in ("web1", "web2", "web3", "db1")}
    hosts["web1"].write_file("/var/log/messages", CONNTRACK.format(host="web1"))
    hosts["web2"].write_file("/var/log/messages", QUIET.format(host="web2") + CONNTRACK.format(host="web2"))
    hosts["web3"].write_file("/var/log/messages", QUIET.format(host="web3"))
    hosts["db1"].drop_syn()
    for host in hosts.values():
        lab_server(customer, host).roles.add(web)
    playbook = Playbook.objects.create(name="Logs", steps=STEPS)
    sweep = sweep_start(customer=customer, playbook=playbook, role=web, by=tech, open_tickets=True, enqueue=False)

    # The collector's thread pool: each host on its own thread, as the Celery tasks would run them.
    errors: list[BaseException] = []

    def work(run_id: int) -> None:
        try:
            run_execute(run_id=run_id, worker="sweep-test")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(pk,)) for pk in sweep.runs.values_list("pk", flat=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(thread.is_alive() for thread in threads)

    sweep.refresh_from_db()
    assert sweep.finished_at is not None
    results = sweep_results(sweep=sweep)
    states = {row.server.name: row.run.state for row in results.hosts}
    assert states == {
        "db1": RunState.FAILED,
        "web1": RunState.SUCCEEDED,
        "web2": RunState.SUCCEEDED,
        "web3": RunState.SUCCEEDED,
    }
    assert [g.headline for g in results.groups] == [
        "2 of 4 hosts: Netfilter connection tracking table full: new connections are dropped"
    ]
    assert [(u.server.name, u.kind) for u in results.unreached] == [("db1", "Unreachable")]
    assert "timed out" in results.unreached[0].reason
    ticket = Ticket.objects.filter(sweep_findings__sweep=sweep).distinct().get()
    assert sorted(ticket.servers.values_list("name", flat=True)) == ["web1", "web2"]
    assert ticket.collection_runs.count() == 0  # the runs are the sweep's; the ticket reads them by finding
    assert {f.server.name for f in ticket_findings(ticket=ticket).findings} == {"web1", "web2"}


# --- API ------------------------------------------------------------------------------


def test_one_api_call_starts_a_sweep_and_the_sweep_reads_back_grouped(kb, fleet, customer, playbook, tech):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(tech)
    response = client.post(
        f"/api/v1/customers/{customer.pk}/sweeps/",
        {"playbook": playbook.pk, "role": "web", "open_tickets": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"].endswith(f"/api/v1/sweeps/{body['id']}/")
    assert body["total"] == 4 and body["finished"] is False and body["open_tickets"] is True
    assert [host["server"]["name"] for host in body["hosts"]] == ["web1", "web2", "web3", "web4"]
    assert {host["state"] for host in body["hosts"]} == {"queued"}

    play(Sweep.objects.get(pk=body["id"]), FLEET_LOGS)
    body = client.get(f"/api/v1/sweeps/{body['id']}/").json()
    assert body["finished"] is True and body["settled"] == 4
    conntrack = body["groups"][0]
    assert (conntrack["symptom"], conntrack["count"], conntrack["total"]) == ("conntrack-table-full", 3, 4)
    assert [h["server"]["name"] for h in conntrack["hosts"]] == ["web1", "web2", "web4"]
    assert "nf_conntrack: table full" in conntrack["hosts"][0]["citations"][0]["text"]
    assert len(conntrack["tickets"]) == 1
    assert Ticket.objects.get(pk=conntrack["tickets"][0]).customer == customer
    # A sweep's run reads like any other, with no ticket.
    run_id = conntrack["hosts"][0]["run"]
    run = client.get(f"/api/v1/runs/{run_id}/").json()
    assert (run["ticket"], run["sweep"], run["state"]) == (None, body["id"], "succeeded")
    matches = client.get(f"/api/v1/runs/{run_id}/matches/").json()
    assert matches["diagnosed"] and matches["fixes"] and matches["symptoms"][0]["title"].startswith("Netfilter")


def test_the_api_names_the_field_it_refuses(fleet, customer, playbook, tech, manager):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(tech)
    url = f"/api/v1/customers/{customer.pk}/sweeps/"
    assert client.post(url, {"playbook": playbook.pk, "role": "nope"}, format="json").json() == {
        "role": ["No such role."]
    }
    ServerRole.objects.create(name="mail")
    refused = client.post(url, {"playbook": playbook.pk, "role": "mail"}, format="json")
    assert refused.status_code == 400 and "no server with the role mail" in refused.json()["role"][0]
    assert client.post(url, {"playbook": 99999}, format="json").status_code == 400
    assert client.get("/api/v1/sweeps/99999/").status_code == 404
    client.force_authenticate(manager)
    assert client.post(url, {"playbook": playbook.pk}, format="json").status_code == 403
    assert not Sweep.objects.exists()


# --- Pages ----------------------------------------------------------------------------


def test_an_admin_schedules_a_nightly_sweep_on_the_customer_page_and_removes_it(
    client, fleet, customer, playbook, admin_user, tech
):
    from tests.conftest import login

    login(client, admin_user)
    web = ServerRole.objects.get(name="web")
    response = client.post(
        f"/customers/{customer.pk}/sweep-schedules/",
        {
            "schedule-playbook": playbook.pk,
            "schedule-role": web.pk,
            "schedule-hour": 2,
            "schedule-minute": 30,
            "schedule-open_tickets": "on",
        },
    )
    assert response.status_code == 302
    schedule = SweepSchedule.objects.get()
    assert (
        schedule.customer,
        schedule.playbook,
        schedule.role,
        schedule.hour,
        schedule.minute,
        schedule.open_tickets,
        schedule.created_by,
    ) == (customer, playbook, web, 2, 30, True, admin_user)
    assert schedule.last_due_at is not None  # it waits for its next 02:30
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    assert 'Logs on <span class="tag">web</span> daily at 02:30 UTC, opening tickets' in page
    refused = client.post(
        f"/customers/{customer.pk}/sweep-schedules/",
        {"schedule-playbook": playbook.pk, "schedule-hour": 24, "schedule-minute": 0},
    )
    assert refused.status_code == 400 and SweepSchedule.objects.count() == 1

    login(client, tech)  # techs sweep, but do not schedule
    assert "sweep-schedules/" not in client.get(f"/customers/{customer.pk}/").content.decode()
    assert client.post(f"/sweep-schedules/{schedule.pk}/delete/").status_code == 403
    login(client, admin_user)
    assert client.post(f"/sweep-schedules/{schedule.pk}/delete/").status_code == 302
    assert not SweepSchedule.objects.exists()


def test_a_sweeps_run_page_leads_back_to_the_sweep(client, kb, fleet, customer, playbook, tech):
    from tests.conftest import login

    sweep = sweep_start(customer=customer, playbook=playbook, by=tech, enqueue=False)
    play(sweep, FLEET_LOGS)
    login(client, tech)
    run = sweep.runs.get(server__name="web1")
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert f'href="/sweeps/{sweep.pk}/"' in page and "nf_conntrack: table full" in page
    assert f'href="/sweeps/{sweep.pk}/">Sweep #{sweep.pk}</a>' in client.get("/").content.decode()  # my runs


def test_a_sweep_started_from_the_customer_page_lands_on_its_page(client, fleet, customer, playbook, tech):
    from tests.conftest import login

    login(client, tech)
    web = ServerRole.objects.get(name="web")
    response = client.post(f"/customers/{customer.pk}/sweeps/", {"playbook": playbook.pk, "role": web.pk})
    sweep = Sweep.objects.get()
    assert response["Location"] == f"/sweeps/{sweep.pk}/"
    assert (sweep.role, sweep.open_tickets, sweep.requested_by, sweep.runs.count()) == (web, False, tech, 4)
    page = client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in page and page.count('class="sweep-host"') == 4
    fragment = client.get(f"/sweeps/{sweep.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith("<section") and "<html" not in fragment
    # Filing before every host finished is refused with a message, and files nothing.
    client.post(f"/sweeps/{sweep.pk}/tickets/")
    assert not Ticket.objects.exists()
