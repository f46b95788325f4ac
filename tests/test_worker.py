"""The worker really works: real Celery processes on the embedded filesystem broker
(what `make run` starts) and on Redis (what production runs), against a real database file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import redis_up
from tests.parallel import scratch_redis_db
from tests.worker_support import own_database, worker_env

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A desk process's environment with a migrated database of the test's own."""
    return worker_env(tmp_path, database=own_database(tmp_path, migrated=True), **extra)


def _manage(env, *args, timeout=120):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _wait_for_heartbeat(db_path: Path, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db_path) as db:
            if db.execute("SELECT count(*) FROM triage_heartbeat WHERE name = 'worker'").fetchone()[0]:
                return True
        time.sleep(0.3)
    return False


def _enqueue_heartbeat(env):
    _manage(env, "shell", "-c", "from triage.tasks import record_worker_heartbeat as t; t.delay()")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _children_alive(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "-g", str(pgid)], capture_output=True, text=True).stdout
    # Zombies hold nothing; they wait for an init that may not reap in a container.
    return [line for line in out.splitlines() if line.strip() and "<defunct>" not in line]


@pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379")
def test_a_worker_on_redis_runs_tasks(tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path, CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{scratch_redis_db()}")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "triage",
            "worker",
            "--concurrency=1",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            queue,
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _manage(
            env, "shell", "-c", f"from triage.tasks import record_worker_heartbeat as t; t.apply_async(queue={queue!r})"
        )
        assert _wait_for_heartbeat(tmp_path / "desk.sqlite3", timeout=60), "worker never ran the task"
    finally:
        _stop(worker)
