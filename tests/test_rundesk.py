"""`manage.py rundesk` supervises the one-machine desk: real web, worker and mail listener
processes; a child that dies is restarted, one that cannot be kept up stops the desk."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from tests.test_worker import _children_alive, _enqueue_heartbeat, _env, _stop, _wait_for_heartbeat

ROOT = Path(__file__).resolve().parent.parent


def _start_desk(tmp_path: Path, port: int | None = None, **settings: str) -> tuple[subprocess.Popen, Path, int, dict]:
    env = _env(tmp_path, TRIAGE_MAIL_PORT=str(free_port()), **settings)
    port = port or free_port()
    log = tmp_path / "desk.log"
    with open(log, "wb") as out:
        desk = subprocess.Popen(
            [sys.executable, "manage.py", "rundesk", f"127.0.0.1:{port}", "--concurrency", "1"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return desk, log, port, env


def _wait_for(what: str, check, *, desk: subprocess.Popen, log: Path, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert desk.poll() is None, f"rundesk exited ({desk.returncode}) waiting for {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s:\n{log.read_text()[-4000:]}"
        time.sleep(0.3)


def _started_pids(log: Path, name: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"started {name} \(pid (\d+)\)", log.read_text())]


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - the test's own http URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _smtp_answers(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=3) as smtp:
            return smtp.noop()[0] == 250
    except OSError:
        return False


def _finish(desk: subprocess.Popen) -> tuple[int | None, list[str]]:
    """SIGTERM the desk as Ctrl-C would; its exit status and whatever it left running."""
    desk.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        desk.wait(timeout=40)
    leftovers = _children_alive(desk.pid)
    _stop(desk)
    return desk.returncode, leftovers


def test_rundesk_restarts_a_killed_worker_and_mail_listener_and_stops_everything_on_sigterm(tmp_path):
    desk, log, port, env = _start_desk(tmp_path, TRIAGE_DESK_BACKOFF_MS="200")
    mail_port = int(env["TRIAGE_MAIL_PORT"])
    try:
        _wait_for("dashboard", lambda: _http_status(f"http://127.0.0.1:{port}/login/") == 200, desk=desk, log=log)
        _wait_for("mail listener", lambda: _smtp_answers(mail_port), desk=desk, log=log)
        # No heartbeat yet: /healthz tells the truth about the worker.
        assert _http_status(f"http://127.0.0.1:{port}/healthz") == 503
        [worker] = _wait_for("worker", lambda: _started_pids(log, "worker"), desk=desk, log=log)
        [mailgate] = _started_pids(log, "mailgate")

        os.kill(worker, signal.SIGKILL)
        os.kill(mailgate, signal.SIGKILL)

        _wait_for("a new worker", lambda: len(_started_pids(log, "worker")) == 2, desk=desk, log=log)
        _wait_for("a new mail listener", lambda: len(_started_pids(log, "mailgate")) == 2, desk=desk, log=log)
        text = log.read_text()
        assert f"rundesk: worker (pid {worker}) killed by SIGKILL" in text
        assert f"rundesk: mailgate (pid {mailgate}) killed by SIGKILL" in text
        _wait_for("mail listener back", lambda: _smtp_answers(mail_port), desk=desk, log=log)
        _enqueue_heartbeat(env)
        assert _wait_for_heartbeat(tmp_path / "desk.sqlite3", timeout=60), "the restarted worker never ran the task"
        assert _http_status(f"http://127.0.0.1:{port}/healthz") == 200
    finally:
        status, leftovers = _finish(desk)
    assert status == 0, log.read_text()[-3000:]
    assert leftovers == [], f"processes left behind: {leftovers}"
    # A clean stop: each child is asked to stop and stops its own pool (Celery's warm shutdown), rather
    # than its pool processes being signalled under it, which Celery logs as errors on every stop.
    assert "exited with 'signal 15" not in log.read_text(), log.read_text()[-3000:]


def test_rundesk_gives_up_and_exits_non_zero_when_a_child_cannot_start(tmp_path):
    with socket.socket() as taken:
        # The dashboard's port is held by someone else: runserver fails at once, every time.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        desk, log, _, _ = _start_desk(
            tmp_path, port=taken.getsockname()[1], TRIAGE_DESK_MAX_RESTARTS="2", TRIAGE_DESK_BACKOFF_MS="50"
        )
        try:
            desk.wait(timeout=120)
        finally:
            leftovers = _children_alive(desk.pid)
            _stop(desk)
    text = log.read_text()
    assert desk.returncode == 1, text[-3000:]
    assert len(_started_pids(log, "web")) == 3
    assert "rundesk: web died 3 times within 120 s; giving up and stopping the desk" in text
    assert leftovers == [], f"processes left behind: {leftovers}"


def test_the_children_stop_when_rundesk_itself_is_killed(tmp_path):
    desk, log, port, _ = _start_desk(tmp_path)
    try:
        _wait_for("dashboard", lambda: _http_status(f"http://127.0.0.1:{port}/login/") == 200, desk=desk, log=log)
        _wait_for(
            "every child",
            lambda: all(_started_pids(log, name) for name in ("web", "worker", "mailgate")),
            desk=desk,
            log=log,
        )
        desk.kill()  # SIGKILL: no chance to stop anything itself
        desk.wait(timeout=10)
        deadline = time.monotonic() + 40
        while _children_alive(desk.pid) and time.monotonic() < deadline:
            time.sleep(0.3)
        leftovers = _children_alive(desk.pid)
    finally:
        _stop(desk)
        for line in _children_alive(desk.pid):  # only if the test failed: leave nothing running
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
    assert leftovers == [], f"processes left behind: {leftovers}"
