"""`manage.py run_mailgate` as a deployment runs it: a real process on a loopback
port, against a real database file, stopped by SIGTERM or killed by SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
from email.policy import SMTP
from pathlib import Path

import pytest

from tests import desk_template
from tests.conftest import free_port
from tests.mailgate_support import mail

ROOT = Path(__file__).resolve().parent.parent
DESK = "help@desk.test"
MANAGE = [sys.executable, "manage.py"]


@pytest.fixture(scope="module")
def migrated_desk(tmp_path_factory) -> Path:
    """A database file with the schema, the roles and one customer, made once per module."""
    folder = tmp_path_factory.mktemp("desk-template")
    env = _env(folder, desk_template.copy_to(folder / "desk.sqlite3"), port=free_port())
    subprocess.run(
        [
            *MANAGE,
            "shell",
            "-c",
            "from django.core.management import call_command; call_command('setup_roles'); "
            "from triage.models import *; Customer.objects.create(name='Northwind', "
            "sla_tier=SlaTier.objects.get(name='Gold')).contacts.create(email='ops@northwind.test')",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return folder / "desk.sqlite3"


@pytest.fixture
def desk(migrated_desk, tmp_path) -> tuple[dict, Path]:
    db = tmp_path / "desk.sqlite3"
    shutil.copyfile(migrated_desk, db)
    return _env(tmp_path, db, port=free_port()), db


def _env(folder: Path, db: Path, *, port: int) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TRIAGE_ENV", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        TRIAGE_VAR_DIR=str(folder / "var"),
        DATABASE_URL=f"sqlite:///{db}",
        DJANGO_SETTINGS_MODULE="triage.settings",
        TRIAGE_MAIL_ADDRESS=DESK,
        TRIAGE_MAIL_PORT=str(port),
    )
    return env


def start_listener(env: dict) -> tuple[subprocess.Popen, smtplib.SMTP]:
    """`run_mailgate` in its own session, and a client connected to it once it listens."""
    service = subprocess.Popen(
        [*MANAGE, "run_mailgate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            return service, smtplib.SMTP("127.0.0.1", int(env["TRIAGE_MAIL_PORT"]), timeout=10)
        except OSError:
            assert service.poll() is None, service.stdout.read().decode()
            assert time.monotonic() < deadline, "the listener did not come up within 30 s"
            time.sleep(0.2)


def stop_listener(service: subprocess.Popen) -> None:
    service.send_signal(signal.SIGTERM)
    try:
        service.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(service.pid, signal.SIGKILL)
        service.wait()


def rows(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def test_run_mailgate_turns_mail_into_a_ticket_and_stops_on_sigterm(desk):
    env, db = desk
    service, smtp = start_listener(env)
    try:
        with smtp:
            smtp.send_message(mail(to=DESK, subject="Queue stuck"), to_addrs=[DESK])
        assert rows(db, "SELECT subject FROM triage_ticket") == [("Queue stuck",)]
        assert rows(db, "SELECT count(*) FROM triage_heartbeat WHERE name = 'mailgate'") == [(1,)]
    finally:
        stop_listener(service)
    assert service.returncode == 0, service.stdout.read().decode()


def _finish_data(smtp: smtplib.SMTP, rest: bytes) -> int | None:
    """Send the rest of the message and its final dot; the reply code, or None when the line is dead."""
    try:
        smtp.send(rest + b"\r\n.\r\n")
        return smtp.getreply()[0]
    except (smtplib.SMTPServerDisconnected, OSError):
        return None


def test_a_listener_killed_mid_data_stores_nothing_and_the_resend_is_stored_once(desk):
    env, db = desk
    raw = mail(
        to=DESK, subject="Queue stuck", body="exim queue at 5000\n" * 200, message_id="<killed@northwind.test>"
    ).as_bytes(policy=SMTP)
    service, smtp = start_listener(env)
    try:
        smtp.ehlo()
        assert smtp.mail("ops@northwind.test")[0] == 250 and smtp.rcpt(DESK)[0] == 250
        assert smtp.docmd("DATA")[0] == 354
        smtp.send(raw[: len(raw) // 2])  # half the message is on the wire when the listener dies

        os.killpg(service.pid, signal.SIGKILL)
        service.wait(timeout=20)

        assert _finish_data(smtp, raw[len(raw) // 2 :]) is None  # the sender never saw a 250: it keeps the mail
        smtp.close()
        assert rows(db, "SELECT count(*) FROM mailgate_inboundmessage") == [(0,)]
        assert rows(db, "SELECT count(*) FROM triage_ticket") == [(0,)]
    finally:
        if service.poll() is None:
            stop_listener(service)

    # Restarted on the same port, the sender's retry is taken; a second retry (its 250 lost) is recognised.
    service, smtp = start_listener(env)
    try:
        with smtp:
            assert smtp.sendmail("ops@northwind.test", [DESK], raw) == {}
            assert smtp.sendmail("ops@northwind.test", [DESK], raw) == {}
    finally:
        stop_listener(service)
    assert rows(db, "SELECT outcome, redeliveries FROM mailgate_inboundmessage") == [("created", 1)]
    assert rows(db, "SELECT subject FROM triage_ticket") == [("Queue stuck",)]
