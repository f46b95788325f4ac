"""The embedded broker (`make run`'s, no server) survives load: kombu's own filesystem
transport let a worker read a half-written message and die (kombu#1551)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kombu import Connection
from kombu.transport import filesystem

from tests.worker_support import own_database, worker_env
from triage.broker import transport_options

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 3000


def _env(tmp_path: Path) -> dict[str, str]:
    return worker_env(
        tmp_path,
        database=own_database(tmp_path),
        TRIAGE_STRESS_LEDGER=str(tmp_path / "ledger"),
        TRIAGE_BROKER_POLL_MS="20",
    )


def _publisher(env, numbers: range) -> subprocess.Popen:
    script = (
        "import django; django.setup()\n"
        "from celery import current_app\n"
        "from tests.broker_stress_tasks import note_message\n"
        "with current_app.producer_or_acquire() as producer:\n"
        f"    for n in range({numbers.start}, {numbers.stop}, {numbers.step}):\n"
        "        note_message.apply_async((n,), producer=producer)\n"
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env)


def _ledger(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_real_worker_consumes_thousands_of_messages_under_cpu_load_each_exactly_once(tmp_path):
    env = _env(tmp_path)
    log = tmp_path / "worker.log"
    # Busy loops so publishers, the worker and its pool fight for the CPU, which is what
    # opened the window between a message file's creation and its contents.
    loaders = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    worker = publishers = None
    try:
        with open(log, "wb") as out:
            # A deeper prefetch than the desk's only so 3000 tiny tasks fit the time budget;
            # the transport's read path is the same.
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "triage",
                    "worker",
                    "-I",
                    "tests.broker_stress_tasks",
                    "--concurrency=2",
                    "--prefetch-multiplier=20",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=WARNING",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        publishers = [_publisher(env, range(i, MESSAGES, 2)) for i in range(2)]
        deadline = time.monotonic() + 150
        while len(_ledger(tmp_path / "ledger")) < MESSAGES and worker.poll() is None:
            assert time.monotonic() < deadline, f"{len(_ledger(tmp_path / 'ledger'))} of {MESSAGES} in 150 s"
            time.sleep(0.2)
        assert [p.wait(timeout=60) for p in publishers] == [0, 0]
        assert worker.poll() is None, f"the worker died:\n{log.read_text()[-3000:]}"
        time.sleep(1)  # a duplicate delivery would land now
    finally:
        for p in loaders:
            p.kill()
            p.wait()
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    assert sorted(_ledger(tmp_path / "ledger")) == list(range(MESSAGES))
    assert "CRITICAL" not in log.read_text()
    assert os.listdir(tmp_path / "var" / "broker" / "broken") == []


def test_an_unreadable_message_file_is_set_aside_and_the_next_message_still_arrives(tmp_path, caplog):
    filesystem.Transport.global_state.clear()  # kombu keeps bindings per process; start clean
    options = transport_options(tmp_path, polling_interval=0.01)
    with Connection("filesystem://", transport="triage.broker:Transport", transport_options=options) as conn:
        queue = conn.SimpleQueue("desk")
        # What kombu's own transport can leave behind: a message file created but not yet written. Named
        # "0_…" so it sorts before any real message ("<monotonic ms>_…"; "1_…" sorted after "10…").
        (tmp_path / "queue" / "0_00000000-0000-0000-0000-000000000000.desk.msg").write_bytes(b"")
        queue.put({"n": 7})
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    assert message.payload == {"n": 7}
    assert os.listdir(tmp_path / "broken") == ["0_00000000-0000-0000-0000-000000000000.desk.msg"]
    assert "could not be read" in caplog.text
