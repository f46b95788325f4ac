"""Every log line names its time, level and logger; LOG_FORMAT=json makes each record one
JSON object per line. Run in a subprocess: LOGGING is applied once, when Django starts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from tests.test_deployment import clean_env

REPO = Path(__file__).resolve().parent.parent

# Records from Django's own loggers (which ship their own handlers), ours, a multi-line
# message with an extra field, and an exception with its traceback.
SCRIPT = """
import logging
logging.getLogger("django.request").error("Internal Server Error: %s", "/queue/")
logging.getLogger("django.server").info('"GET /healthz HTTP/1.1" 200 2')
logging.getLogger("diagnostics.tasks").warning("first line\\nsecond line", extra={"run": 42})
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("mailgate.smtp").exception("session failed")
"""
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def log_output(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", SCRIPT],
        cwd=REPO,
        env=clean_env(TRIAGE_VAR_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_text_lines_start_with_time_level_and_logger(tmp_path):
    result = log_output(tmp_path)
    assert result.returncode == 0, result.stderr

    starts = [line for line in result.stderr.splitlines() if re.match(TIME, line)]
    assert [line.split(" ", 3)[1:3] for line in starts] == [
        ["ERROR", "django.request:"],
        ["INFO", "django.server:"],
        ["WARNING", "diagnostics.tasks:"],
        ["ERROR", "mailgate.smtp:"],
    ]
    assert "ZeroDivisionError: division by zero" in result.stderr
    # Django's own handlers are gone: nothing is printed twice.
    assert result.stderr.count("Internal Server Error: /queue/") == 1


def test_json_lines_are_one_object_per_record(tmp_path):
    result = log_output(tmp_path, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr

    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(r["level"], r["logger"]) for r in records] == [
        ("ERROR", "django.request"),
        ("INFO", "django.server"),
        ("WARNING", "diagnostics.tasks"),
        ("ERROR", "mailgate.smtp"),
    ]
    assert all(re.fullmatch(TIME, r["time"]) for r in records)
    assert records[2]["message"] == "first line\nsecond line"
    assert records[2]["run"] == 42
    assert records[3]["exception"].endswith("ZeroDivisionError: division by zero")


def test_an_unknown_log_format_is_refused_by_name(tmp_path):
    result = log_output(tmp_path, LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json, got 'xml'" in result.stderr


def test_gunicorn_logs_its_own_lines_and_the_access_log_in_the_same_format(tmp_path):
    """The image's server (Dockerfile CMD) with its config: its error and access lines too."""
    port = free_port()
    env = clean_env(TRIAGE_VAR_DIR=str(tmp_path), LOG_FORMAT="json")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "triage.wsgi",
            "--config",
            "python:triage.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            "-",
            "--no-control-socket",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page", timeout=5)
            except urllib.error.HTTPError as exc:
                assert exc.code == 404
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
    finally:
        server.terminate()
        lines = server.communicate(timeout=30)[0].splitlines()

    records = [json.loads(line) for line in lines]  # every line is one JSON record
    loggers = {r["logger"] for r in records}
    assert {"gunicorn.error", "gunicorn.access", "django.request"} <= loggers
    access = next(r for r in records if r["logger"] == "gunicorn.access")
    assert '"GET /no-such-page HTTP/1.1" 404' in access["message"]
    assert all(re.fullmatch(TIME, r["time"]) and r["level"] for r in records)
