"""Collections through the desk's real workers: services.run_request -> Celery (a Redis of the
test's own) -> the worker processes the product runs (triage/worker_commands.py) -> lab hosts.

- Unreachable hosts must not starve reachable ones: hosts that drop SYNs and a tarpit that
  accepts TCP but never sends a banner hold their slots until their bounds, while a Collect on a
  live host, pressed after them, finishes first.
- A catastrophic regex in a signature: the run is diagnosed within its bound, genuine matches kept.
- A run past its time limit is recorded as a time limit (not "internal error"), on the collector's
  thread pool and on a prefork worker, where Celery's soft time limit fires.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connection

from diagnostics import services
from diagnostics.models import TERMINAL_STATES, AuditEntry, CollectionRun, Match, Playbook, RunState, Symptom
from tests.lab_servers import lab_server
from tests.worker_support import Worker, app_broker, running, wait_until, worker_env
from triage import services as desk
from triage import worker_commands

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

QUICK = [{"probe": "load", "params": {}}, {"probe": "disk", "params": {}}, {"probe": "memory", "params": {}}]
DEAD_BOUND = 6  # seconds: the connect and banner timeouts the workers run with here
TIME_LIMIT = 4  # seconds: TRIAGE_COLLECT_TIME_LIMIT of the workers here (it bounds the probes, not the connect)
TARPIT_PORT = 2222


@pytest.fixture(scope="module")
def desk_workers(redis, tmp_path_factory, django_db_setup, django_db_blocker):
    """The general worker (2 prefork slots, as `rundesk` starts it) and the collector, as the desk runs them."""
    tmp = tmp_path_factory.mktemp("workers")
    with django_db_blocker.unblock():
        env = worker_env(
            tmp,
            broker=redis.url(),
            TRIAGE_SSH_CONNECT_TIMEOUT=str(DEAD_BOUND),
            TRIAGE_SSH_BANNER_TIMEOUT=str(DEAD_BOUND),
            TRIAGE_COLLECT_TIME_LIMIT=str(TIME_LIMIT),
        )
    general = Worker(worker_commands.general_worker_argv(concurrency=2), env, tmp / "general.log")
    collector = Worker(worker_commands.collector_argv(), env, tmp / "collector.log")
    with running(general, collector):
        yield general, collector


@pytest.fixture
def ticket(customer, tech):
    return desk.ticket_create(
        subject="Collections stall", description="Collect stays queued", customer=customer, created_by=tech
    )


def _playbook(steps=QUICK, name="quick") -> Playbook:
    return Playbook.objects.get_or_create(name=name, defaults={"steps": steps})[0]


def _terminal(runs: list[CollectionRun]) -> bool:
    return all(
        run.state in TERMINAL_STATES and run.diagnosed_at
        for run in CollectionRun.objects.filter(pk__in=[r.pk for r in runs])
    )


def test_unreachable_hosts_do_not_hold_up_a_collect_on_a_live_host(lab, redis, desk_workers, customer, ticket, tech):
    general, collector = desk_workers
    dead = []
    for index in range(2):
        host = lab.add_host(f"nosyn{index}")
        host.drop_syn(22)
        dead.append(lab_server(customer, host))
        tarpit = lab.add_host(f"tarpit{index}")
        tarpit.serve_silence(TARPIT_PORT)
        dead.append(lab_server(customer, tarpit, port=TARPIT_PORT))
    live = lab_server(customer, lab.add_host("live"))
    with app_broker(redis.url()):
        dead_runs = [
            services.run_request(ticket=ticket, server=server, playbook=_playbook(), by=tech) for server in dead
        ]
        pressed = time.monotonic()
        live_run = services.run_request(ticket=ticket, server=live, playbook=_playbook(), by=tech)
    wait_until(lambda: _terminal([*dead_runs, live_run]), timeout=60, what="every run to end")

    live_run.refresh_from_db()
    assert live_run.state == RunState.SUCCEEDED, live_run.reason
    dead_runs = [CollectionRun.objects.get(pk=run.pk) for run in dead_runs]
    assert sorted(run.failure_kind for run in dead_runs) == ["no_banner", "no_banner", "unreachable", "unreachable"]
    first_dead_end = min(run.finished_at for run in dead_runs)
    assert live_run.finished_at < first_dead_end, (
        f"the live host's run waited for a dead host: finished {live_run.finished_at}, first dead run ended "
        f"{first_dead_end}; pressed {time.monotonic() - pressed:.1f} s ago"
    )
    for run in dead_runs:  # each dead host cost one bound, not two: a fault that waited out its bound is not retried
        assert AuditEntry.objects.get(run=run, action="connect_failed").detail["attempts"] == 1, run.reason
    assert general.alive and collector.alive
    # Threads hold no database connection of their own between tasks: what stays open is the
    # collector's pool (at most TRIAGE_COLLECT_DB_CONNECTIONS, closed after a minute idle).
    if connection.vendor == "postgresql":
        wait_until(
            lambda: _other_sessions() <= settings.TRIAGE_COLLECT_DB_CONNECTIONS,
            timeout=10,
            what="the workers' database connections to be given back",
        )


def _other_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_catastrophic_regex_in_a_signature_leaves_the_run_diagnosed_with_its_genuine_matches(
    lab, redis, desk_workers, customer, ticket, tech
):
    host = lab.add_host("logs", private_tmp=True)
    hostile = "a" * 4000 + "b"  # (a|aa)+$ backtracks ~2**2000 times on this in Python's re
    host.write_file("/var/log/syslog", f"Dec  3 04:00:00 logs kernel: Out of memory: Killed process 4242\n{hostile}\n")
    genuine = Symptom.objects.create(
        key="oom",
        title="OOM killer",
        threshold=0.5,
        signature={"probe": "system_log", "regex": r"Out of memory: Killed process"},
    )
    catastrophic = Symptom.objects.create(
        key="aa-run", title="Runs of a", threshold=0.5, signature={"probe": "system_log", "regex": r"^(a|aa)+$"}
    )
    # Saved before validation refused backreferences: straight into the table, as an old database holds it.
    unbounded = Symptom.objects.create(
        key="aa-backref",
        title="Stored before bounded matching",
        threshold=0.5,
        signature={"probe": "system_log", "regex": r"(a|aa)+\1c"},
    )
    book = _playbook([{"probe": "system_log", "params": {}}], name="logs")
    with app_broker(redis.url()):
        run = services.run_request(ticket=ticket, server=lab_server(customer, host), playbook=book, by=tech)
    wait_until(lambda: _terminal([run]), timeout=45, what="the run to be diagnosed")

    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.reason
    assert not run.diagnosis_note.startswith("Diagnosis failed"), run.diagnosis_note
    assert Match.objects.get(run=run, symptom=genuine).matched
    assert not Match.objects.filter(run=run, symptom=catastrophic, matched=True).exists()
    assert not Match.objects.filter(run=run, symptom=unbounded).exists()


def test_a_run_past_its_time_limit_on_the_collector_is_recorded_as_a_time_limit(
    lab, redis, desk_workers, customer, ticket, tech
):
    run = _slow_run(lab.add_host("slowthreads", own_pids=True), customer, ticket, tech, broker=redis.url())
    _assert_time_limited(run)
    assert all(worker.alive for worker in desk_workers)


def test_a_run_past_celerys_soft_time_limit_on_a_prefork_worker_is_recorded_as_a_time_limit(
    lab, redis, customer, ticket, tech, tmp_path
):
    # Another Redis database: the module's collector must not take this run.
    env = worker_env(tmp_path, broker=redis.url(db=1), TRIAGE_COLLECT_TIME_LIMIT=str(TIME_LIMIT))
    argv = [
        *worker_commands.CELERY,
        "--pool=prefork",
        "--concurrency=1",
        f"--queues={settings.TRIAGE_COLLECT_QUEUE}",
        "--loglevel=INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    with Worker(argv, env, tmp_path / "worker.log") as worker:
        run = _slow_run(lab.add_host("slowprefork", own_pids=True), customer, ticket, tech, broker=redis.url(db=1))
        assert worker.alive
    _assert_time_limited(run)
    assert f"run {run.pk}: stopped by the worker's soft time limit" in worker.log()  # Celery's, not the run's own


def _slow_run(host, customer, ticket, tech, *, broker: str) -> CollectionRun:
    # The host has its own PIDs: strace must attach to this host's sshd, not to another test's on the
    # machine, whose end (its host torn down) once ended the probe early and the run succeeded.
    steps = [*QUICK, {"probe": "strace", "params": {"process": "sshd", "seconds": 30}}]
    with app_broker(broker):
        run = services.run_request(
            ticket=ticket, server=lab_server(customer, host), playbook=_playbook(steps, name="slow"), by=tech
        )
    wait_until(lambda: _terminal([run]), timeout=40, what="the run to end")
    run.refresh_from_db()
    return run


def _assert_time_limited(run: CollectionRun) -> None:
    assert run.failure_kind == "time_limit", f"{run.state}: {run.reason}"
    assert run.state == RunState.PARTIAL
    assert run.reason.startswith(f"The run exceeded its time limit of {TIME_LIMIT} s and was stopped; 3 of 4 probes"), (
        run.reason
    )
    finished = run.evidence.exclude(exit_status=None).exclude(probe="ssh_session")
    assert sorted(finished.values_list("probe", flat=True)) == ["disk", "load", "memory"]
