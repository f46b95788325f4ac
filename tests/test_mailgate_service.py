"""`manage.py run_mailgate` as a deployment runs it: a real process on a loopback
port, against a real database file, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import free_port
from tests.mailgate_support import mail

ROOT = Path(__file__).resolve().parent.parent


def test_run_mailgate_turns_mail_into_a_ticket_and_stops_on_sigterm(tmp_path):
    port = free_port()
    db = tmp_path / "desk.sqlite3"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TRIAGE_ENV", "DJANGO_SETTINGS_MODULE")}
    env.update(TRIAGE_VAR_DIR=str(tmp_path / "var"), DATABASE_URL=f"sqlite:///{db}",
               DJANGO_SETTINGS_MODULE="triage.settings", TRIAGE_MAIL_ADDRESS="help@desk.test",
               TRIAGE_MAIL_PORT=str(port))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    subprocess.run([*manage, "setup_roles"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    subprocess.run([*manage, "shell", "-c", "from triage.models import *; Customer.objects.create(name='Northwind', "
                    "sla_tier=SlaTier.objects.get(name='Gold'), contact_email='ops@northwind.test')"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    service = subprocess.Popen([*manage, "run_mailgate"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert service.poll() is None, service.stdout.read().decode()
                assert time.monotonic() < deadline, "the listener did not come up within 30 s"
                time.sleep(0.2)
        with smtp:
            smtp.send_message(mail(to="help@desk.test", subject="Queue stuck"), to_addrs=["help@desk.test"])
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT subject FROM triage_ticket").fetchall() == [("Queue stuck",)]
            assert conn.execute("SELECT count(*) FROM triage_heartbeat WHERE name = 'mailgate'").fetchone() == (1,)
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait()
    assert service.returncode == 0, service.stdout.read().decode()
