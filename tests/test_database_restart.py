"""PostgreSQL restarted during a collection: a cluster of the test's own is stopped (every session
dropped) while a run's probes are still running on a lab host, and started again seconds later.
The run ends in a definite state, with each probe's evidence and audit entry stored once.

The collection runs in a separate process, the desk's (``services.run_execute``, what the worker's
task and ``manage.py collect`` call) on the test's cluster; the test watches it through its own
connection and restarts the cluster under it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg
import pytest

from tests import desk_template
from tests.worker_support import ROOT, PostgresCluster, wait_until, worker_env

pytestmark = pytest.mark.root

# Collect, then the probe that is still running while the database is down (strace watching sshd).
STEPS = [
    {"probe": "load", "params": {}},
    {"probe": "disk", "params": {}},
    {"probe": "memory", "params": {}},
    {"probe": "strace", "params": {"process": "sshd", "seconds": 3}},
]
OUTAGE = 6  # seconds: longer than the strace probe has left, so its evidence arrives while the database is down

COLLECT = r"""
import json, os, sys, types
from pathlib import Path
from diagnostics import services
from diagnostics.models import AuditEntry, CollectionRun, Playbook
from tests.lab_servers import lab_server
from triage import services as desk, users
from triage.models import Customer, EventKind, SlaTier

spec = json.loads(os.environ["LAB_HOST"])
host = types.SimpleNamespace(name=spec["name"], address=spec["address"], client_key_path=Path(spec["key"]),
                             host_public_key=spec["public_key"])
users.roles_ensure(); desk.sla_tiers_ensure()
customer = Customer.objects.create(name="Northwind", sla_tier=SlaTier.objects.first())
ticket = desk.ticket_create(subject="Slow mail", description="30 s", customer=customer)
playbook = Playbook.objects.create(name="busy", steps=json.loads(os.environ["STEPS"]))
run = services.run_request(ticket=ticket, server=lab_server(customer, host), playbook=playbook, by=None, enqueue=False)
print(json.dumps({"run": run.pk}), flush=True)
services.run_execute(run_id=run.pk, worker="restart-test")
run = CollectionRun.objects.get(pk=run.pk)
print(json.dumps({
    "state": run.state, "reason": run.reason, "attempts": run.attempts, "diagnosed": run.diagnosed_at is not None,
    "steps": list(run.evidence.exclude(probe="ssh_session").order_by("step").values_list("step", flat=True)),
    "finished": run.evidence.exclude(probe="ssh_session").exclude(exit_status=None).count(),
    "audited": AuditEntry.objects.filter(run=run, action="command").count(),
    "events": list(ticket.events.filter(kind=EventKind.COLLECTION).order_by("pk")
                   .values_list("data__state", flat=True)),
}), flush=True)
"""


@pytest.fixture
def cluster():
    with PostgresCluster() as pg:
        yield pg


def _evidence_count(url: str, run_id: int) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as db:
            return db.execute("SELECT count(*) FROM diagnostics_evidence WHERE run_id = %s", [run_id]).fetchone()[0]
    except psycopg.OperationalError:
        return 0


def _run_state(url: str, run_id: int) -> str:
    with psycopg.connect(url, connect_timeout=5) as db:
        return db.execute("SELECT state FROM diagnostics_collectionrun WHERE id = %s", [run_id]).fetchone()[0]


def test_a_postgresql_restart_during_a_collection_ends_the_run_once_with_all_its_evidence(lab, cluster, tmp_path):
    host = lab.add_host("dbfault", own_pids=True)
    env = worker_env(
        tmp_path,
        broker="memory://",
        database=cluster.url(),
        STEPS=json.dumps(STEPS),
        LAB_HOST=json.dumps(
            {
                "name": host.name,
                "address": host.address,
                "key": str(host.client_key_path),
                "public_key": host.host_public_key,
            }
        ),
    )
    desk_template.migrate(env, timeout=180)
    collect = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", COLLECT],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = collect.stdout.readline()
        run_id = json.loads(first)["run"]
        # The three quick probes are stored; strace is still watching.
        wait_until(lambda: _evidence_count(cluster.url(), run_id) >= 3, timeout=30, what="the quick probes' evidence")
        cluster.stop("fast")
        time.sleep(OUTAGE)
        cluster.start()
        out, err = collect.communicate(timeout=90)
    finally:
        if collect.poll() is None:
            collect.kill()
            collect.wait()
    assert collect.returncode == 0, f"run {_run_state(cluster.url(), run_id)} after: {err[-2000:]}"
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome["state"] == "succeeded", outcome
    assert outcome["steps"] == [0, 1, 2, 3] and outcome["finished"] == 4  # each probe's evidence, once
    assert outcome["audited"] == 4 and outcome["attempts"] == 1
    assert outcome["events"] == ["queued", "succeeded"] and outcome["diagnosed"]
    assert "lost the database" in err  # the write waited for the restart, and said so
