"""The collector's database footprint does not grow with its slots.

- Many runs in flight on the real collector (triage/worker_commands.py, a Redis of the test's own,
  the test's PostgreSQL database): hosts that never send a banner hold their runs for the banner
  bound while live hosts' probes run and store; the collector never has more sessions open in
  ``pg_stat_activity`` than ``TRIAGE_COLLECT_DB_CONNECTIONS``, and every run still ends as it should.
- One heartbeat thread per process beats every active run in one UPDATE, and stops with the last run.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from diagnostics import services
from diagnostics.models import TERMINAL_STATES, CollectionRun, Playbook, RunState
from diagnostics.services import runs as run_services
from tests.lab_servers import lab_server
from tests.worker_support import RedisServer, Worker, app_broker, database_url, running, wait_until, worker_env
from triage import services as desk
from triage import worker_commands

pytestmark = [pytest.mark.django_db(transaction=True)]

DB_CONNECTIONS = 3  # the collector's bound here: far fewer than the runs in flight
SILENT = 8  # hosts that accept TCP and never send a banner: their runs wait out the banner bound
LIVE = 4
BANNER_BOUND = 6  # seconds
TARPIT_PORT = 2222
# A few seconds of probes on a live host (strace watching sshd), so its stores overlap the silent runs.
STEPS = [
    {"probe": "load", "params": {}},
    {"probe": "disk", "params": {}},
    {"probe": "memory", "params": {}},
    {"probe": "strace", "params": {"process": "sshd", "seconds": 2}},
]


class SessionSampler:
    """Counts the test database's sessions of one application (``application_name``, which libpq
    takes from ``PGAPPNAME`` in the process's environment), every 50 ms, from a thread. Only the
    collector's own sessions count: any other session on the database (this test's own, or one an
    earlier test in this pytest process left idle, as CI once saw) says nothing about the collector's
    bound."""

    def __init__(self, url: str, *, application: str):
        self.url, self.application = url, application
        self.stop = threading.Event()
        self.peak = 0
        self.at_peak: list[tuple] = []  # the sessions seen when the peak was sampled, for the failure message
        self.samples = 0
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            while not self.stop.is_set():
                sessions = db.execute(
                    "SELECT pid, application_name, state, backend_start, left(query, 60) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = %s",
                    [self.application],
                ).fetchall()
                if len(sessions) > self.peak:
                    self.peak, self.at_peak = len(sessions), sessions
                self.samples += 1
                self.stop.wait(0.05)

    def __enter__(self) -> SessionSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.mark.root
def test_many_runs_in_flight_never_hold_more_database_connections_than_the_bound(lab, customer, tech, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the pool and pg_stat_activity are PostgreSQL's (CI runs the suite on PostgreSQL)")
    silent = []
    for index in range(SILENT):
        host = lab.add_host(f"quiet{index}", own_pids=True)
        host.serve_silence(TARPIT_PORT)
        silent.append(lab_server(customer, host, port=TARPIT_PORT))
    live = [lab_server(customer, lab.add_host(f"busy{index}", own_pids=True)) for index in range(LIVE)]
    ticket = desk.ticket_create(subject="Fleet check", description="every server", customer=customer, created_by=tech)
    playbook = Playbook.objects.create(name="busy", steps=STEPS)
    application = f"collector-{uuid.uuid4().hex[:12]}"  # names every session the collector opens

    with RedisServer(tmp_path / "redis") as redis:
        env = worker_env(
            tmp_path,
            broker=redis.url(),
            TRIAGE_COLLECT_DB_CONNECTIONS=str(DB_CONNECTIONS),
            TRIAGE_SSH_BANNER_TIMEOUT=str(BANNER_BOUND),
            PGAPPNAME=application,
        )
        with (
            running(Worker(worker_commands.collector_argv(), env, tmp_path / "collector.log")) as (collector,),
            SessionSampler(database_url(), application=application) as sampler,
        ):
            with app_broker(redis.url()):
                runs = [
                    services.run_request(ticket=ticket, server=server, playbook=playbook, by=tech)
                    for server in [*silent, *live]
                ]
            # The bound means something only if more runs than connections were in flight at once.
            wait_until(
                lambda: (
                    CollectionRun.objects.filter(
                        pk__in=[r.pk for r in runs], state__in=[RunState.CONNECTING, RunState.RUNNING]
                    ).count()
                    >= SILENT
                ),
                timeout=30,
                what="the runs to be in flight",
            )
            wait_until(
                lambda: all(
                    run.state in TERMINAL_STATES and run.diagnosed_at
                    for run in CollectionRun.objects.filter(pk__in=[r.pk for r in runs])
                ),
                timeout=90,
                what="every run to be diagnosed",
            )
            assert collector.alive

    assert sampler.samples > 20
    # At least one: the sessions were seen, so they carry the collector's name.
    assert 1 <= sampler.peak <= DB_CONNECTIONS, f"{sampler.peak} sessions at once: {sampler.at_peak}"
    ended = {run.server_id: run for run in CollectionRun.objects.filter(pk__in=[r.pk for r in runs])}
    assert sorted(ended[s.pk].failure_kind for s in silent) == ["no_banner"] * SILENT
    for server in live:
        assert ended[server.pk].state == RunState.SUCCEEDED, ended[server.pk].reason
        assert ended[server.pk].evidence.exclude(probe="ssh_session").count() == len(STEPS)


def _run(ticket, server, *, state=RunState.RUNNING, beat_ago: float = 300) -> CollectionRun:
    return CollectionRun.objects.create(
        ticket=ticket,
        server=server,
        playbook_name="quick",
        steps=[],
        state=state,
        heartbeat_at=timezone.now() - timedelta(seconds=beat_ago),
    )


def test_one_heartbeat_thread_beats_every_active_run_and_stops_with_the_last(ticket, server):
    first, second = _run(ticket, server), _run(ticket, server)
    finished = _run(ticket, server, state=RunState.SUCCEEDED)
    before = {run.pk: run.heartbeat_at for run in (first, second, finished)}
    heartbeats = run_services._Heartbeats(every=0.05)
    # Another test's heartbeat thread in this worker process may still be finishing: count only new ones.
    earlier = {t for t in threading.enumerate() if t.name == "runs-heartbeat"}

    def beaten(run: CollectionRun) -> bool:
        return CollectionRun.objects.get(pk=run.pk).heartbeat_at > before[run.pk]

    with heartbeats.beating(first.pk):
        with heartbeats.beating(second.pk):
            threads = [t for t in threading.enumerate() if t.name == "runs-heartbeat" and t not in earlier]
            wait_until(lambda: beaten(first) and beaten(second), timeout=10, what="both runs to be beaten")
            assert len(threads) == 1
        # The second run is done: once a beat in flight has landed, only the first is beaten.
        _beaten_again(first)
        second_last = CollectionRun.objects.get(pk=second.pk).heartbeat_at
        _beaten_again(first)
        _beaten_again(first)
        assert CollectionRun.objects.get(pk=second.pk).heartbeat_at == second_last
    assert not beaten(finished)  # a terminal run is not kept alive
    wait_until(lambda: heartbeats.thread is None, timeout=10, what="the heartbeat thread to stop")
    # The sweeper's view: a beaten run is not stale, so it is not taken from its worker.
    assert services.runs_sweep()["requeued"] == 0
    assert CollectionRun.objects.get(pk=first.pk).state == RunState.RUNNING


def _beaten_again(run: CollectionRun) -> None:
    last = CollectionRun.objects.get(pk=run.pk).heartbeat_at
    wait_until(
        lambda: CollectionRun.objects.get(pk=run.pk).heartbeat_at > last,
        timeout=10,
        what=f"run {run.pk} to be beaten again",
    )
