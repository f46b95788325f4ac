"""The workers' sizes are settings that reach the running workers: `manage.py run_worker` (compose's
`worker` service) starts TRIAGE_WORKER_CONCURRENCY prefork processes, `manage.py run_collector`
TRIAGE_COLLECT_CONCURRENCY threads, as Celery's own start-up banner reports them."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import pytest
import yaml

from tests.worker_support import ROOT, RedisServer, Worker, running, wait_until, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_compose_runs_the_workers_through_the_commands_that_read_the_settings():
    services = yaml.safe_load((Path(ROOT) / "docker-compose.yml").read_text())["services"]

    assert services["worker"]["command"] == ["python", "manage.py", "run_worker"]
    assert services["collector"]["command"] == ["python", "manage.py", "run_collector"]
    assert not any("--concurrency" in word for word in services["worker"]["command"])


def test_each_worker_starts_with_the_concurrency_its_setting_names(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        env = worker_env(
            tmp_path,
            broker=redis.url(),
            TRIAGE_WORKER_CONCURRENCY="3",
            TRIAGE_COLLECT_CONCURRENCY="5",
            TRIAGE_COLLECT_PROCESSES="1",
        )
        manage = [sys.executable, str(Path(ROOT) / "manage.py")]
        general = Worker([*manage, "run_worker"], env, tmp_path / "general.log")
        collector = Worker([*manage, "run_collector"], env, tmp_path / "collector.log")
        with running(general, collector):
            assert re.search(r"concurrency: 3 \(prefork\)", general.log()), general.log()[-2000:]
            assert re.search(r"concurrency: 5 \(thread\)", collector.log()), collector.log()[-2000:]
            assert "celery@" in general.log() and "collector@" in collector.log()


def _ready_workers(log: str) -> set[str]:
    return set(re.findall(r"(collector\d+)@\S+ ready\.", log))


def test_the_collector_splits_its_threads_and_connections_over_its_processes_and_a_dead_one_is_seen(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        env = worker_env(tmp_path, broker=redis.url(), TRIAGE_COLLECT_CONCURRENCY="5", TRIAGE_COLLECT_PROCESSES="2")
        collector = Worker(
            [sys.executable, str(Path(ROOT) / "manage.py"), "run_collector"], env, tmp_path / "collector.log"
        )
        with running(collector):
            wait_until(
                lambda: _ready_workers(collector.log()) == {"collector1", "collector2"},
                timeout=60,
                what="both collector workers",
            )
            assert len(re.findall(r"concurrency: 3 \(thread\)", collector.log())) == 2, collector.log()[-3000:]
            workers = _children(collector.process.pid)
            assert len(workers) == 2, workers
            os.kill(workers[0], signal.SIGKILL)
            collector.process.wait(timeout=40)
            # Seen, said, and the collector exits non-zero, so its supervisor restarts it whole.
            assert collector.process.returncode == 1
            assert f"collector worker (pid {workers[0]}) exited with status -9" in collector.log()
            assert not any(_alive(pid) for pid in workers), "a collector worker outlived its collector"


def test_the_collector_stops_all_its_workers_on_sigterm(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        env = worker_env(tmp_path, broker=redis.url(), TRIAGE_COLLECT_CONCURRENCY="4", TRIAGE_COLLECT_PROCESSES="2")
        collector = Worker(
            [sys.executable, str(Path(ROOT) / "manage.py"), "run_collector"], env, tmp_path / "collector.log"
        )
        with running(collector):
            wait_until(lambda: len(_ready_workers(collector.log())) == 2, timeout=60, what="both collector workers")
            workers = _children(collector.process.pid)
            collector.process.send_signal(signal.SIGTERM)
            collector.process.wait(timeout=40)
            assert collector.process.returncode == 0, collector.log()[-3000:]
            assert not any(_alive(pid) for pid in workers)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
