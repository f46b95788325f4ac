"""Pressing Collect while the broker is down or hung: the page answers without waiting on the broker, the run
stays queued with a reason, and the sweeper sends it once the broker is back.

Runs the product in a subprocess so it is configured exactly as deployed, with the
broker URL pointing at a real peer on loopback: a closed port, or a listener that
accepts connections and never answers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import free_port, redis_up
from tests.parallel import scratch_redis_db
from tests.worker_support import own_database, worker_env

ROOT = Path(__file__).resolve().parent.parent

SCENE = r"""
import json, time
from django.contrib.auth import get_user_model
from django.test import Client
from triage import services as desk, users
from triage.models import Customer, Server, SlaTier
from diagnostics.models import CollectionRun, Playbook

users.roles_ensure(); desk.sla_tiers_ensure()
user = get_user_model().objects.create_user("tech1", password="x-very-long-pw")
users.user_set_roles(user=user, roles=["tech"])
customer = Customer.objects.create(name="C", sla_tier=SlaTier.objects.first())
server = Server.objects.create(customer=customer, name="mx1", address="192.0.2.1")
ticket = desk.ticket_create(subject="s", description="d", customer=customer, created_by=user)
playbook = Playbook.objects.create(name="Host health", steps=[{"probe": "load", "params": {}}])
client = Client(HTTP_HOST="localhost")
client.force_login(user)
started = time.monotonic()
response = client.post(f"/tickets/{ticket.pk}/collect/", {"server": server.pk, "playbook": playbook.pk})
elapsed = time.monotonic() - started
run = CollectionRun.objects.get()
print(json.dumps({"status": response.status_code, "elapsed": elapsed, "state": run.state, "reason": run.reason,
                  "enqueued": run.enqueued_at is not None}))
"""

SWEEP = r"""
import json
from datetime import timedelta
from django.utils import timezone
from diagnostics import services
from diagnostics.models import CollectionRun
result = services.runs_sweep(now=timezone.now() + timedelta(minutes=5))
run = CollectionRun.objects.get()
print(json.dumps({**result, "state": run.state, "enqueued": run.enqueued_at is not None, "reason": run.reason}))
"""


def _env(tmp_path: Path, broker: str, *, migrated: bool = False) -> dict[str, str]:
    """`migrated`: the test's own desk database starts afresh with the schema in it."""
    return worker_env(tmp_path, broker=broker, database=own_database(tmp_path, migrated=migrated))


def _shell(env, code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


class SilentListener:
    """Accepts TCP connections and never says a word: a hung Redis."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self):
        self.stop.set()
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("broker_state", ["refusing", "hung"])
def test_collect_answers_without_waiting_out_the_broker_when_it_is_down(tmp_path, broker_state):
    """The publish is bounded (CELERY_BROKER_CONNECTION_TIMEOUT, 2 s, no retries), so Collect answers with the run
    queued and the reason; without those bounds the request would wait on a broker that never answers (the
    subprocess's own timeout ends that). The seconds it took are printed, not asserted: a loaded machine adds
    seconds to any request, and bench/ is where speed is measured."""
    listener = SilentListener() if broker_state == "hung" else None
    port = listener.port if listener else free_port()
    env = _env(tmp_path, f"redis://127.0.0.1:{port}/0", migrated=True)
    try:
        outcome = _shell(env, SCENE)
    finally:
        if listener:
            listener.close()
    print(f"Collect answered in {outcome['elapsed']:.1f} s with the broker {broker_state}")
    assert outcome["status"] == 302
    assert outcome["state"] == "queued" and not outcome["enqueued"]
    assert "broker did not answer" in outcome["reason"]


@pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379")
def test_the_sweeper_sends_a_stranded_run_once_the_broker_is_back(tmp_path):
    env = _env(tmp_path, f"redis://127.0.0.1:{free_port()}/0", migrated=True)
    assert _shell(env, SCENE)["state"] == "queued"
    swept = _shell(_env(tmp_path, f"redis://127.0.0.1:6379/{scratch_redis_db()}"), SWEEP)
    assert swept["requeued"] == 1 and swept["enqueued"] and swept["reason"] == ""
    assert swept["state"] == "queued"  # sent, waiting for a worker to claim it
