"""Every log line names its time, level and logger; LOG_FORMAT=json makes each record one
JSON object per line. Run in a subprocess: LOGGING is applied once, when Django starts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

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
        cwd=REPO, env=clean_env(TRIAGE_VAR_DIR=str(tmp_path), **env), capture_output=True, text=True, timeout=120,
    )


def test_text_lines_start_with_time_level_and_logger(tmp_path):
    result = log_output(tmp_path)
    assert result.returncode == 0, result.stderr

    starts = [line for line in result.stderr.splitlines() if re.match(TIME, line)]
    assert [line.split(" ", 3)[1:3] for line in starts] == [
        ["ERROR", "django.request:"], ["INFO", "django.server:"], ["WARNING", "diagnostics.tasks:"],
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
        ("ERROR", "django.request"), ("INFO", "django.server"), ("WARNING", "diagnostics.tasks"),
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
