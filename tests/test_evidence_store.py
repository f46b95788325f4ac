"""Storing a run's probe results: a batch in a handful of statements (a fleet's runs all store at once through
the collector's small connection pool), each row audited once, and a batch delivered again stores nothing twice."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from diagnostics import ssh
from diagnostics.models import AuditEntry, CollectionRun, Evidence, RunState
from diagnostics.services import runs

pytestmark = pytest.mark.django_db


def _result(step: int, text: bytes) -> ssh.CommandResult:
    return ssh.CommandResult(
        key=str(step),
        command=f"LC_ALL=C timeout -k 3 10 sh -c 'probe {step}'",
        exit_status=0,
        stdout=text,
        stderr=b"",
        duration=0.01 * step,
        truncated=False,
        timed_out=False,
        stdout_bytes=len(text),
        stderr_bytes=0,
    )


def test_a_batch_of_results_is_stored_in_a_few_statements_and_never_twice(ticket, server):
    steps = [
        {"probe": probe, "params": {}}
        for probe in ("load", "memory", "disk", "processes", "mounts", "fd_usage", "kernel_log", "system_log")
    ]
    run = CollectionRun.objects.create(
        ticket=ticket, server=server, playbook_name="Host health", steps=steps, state=RunState.RUNNING
    )
    batch = [_result(step, f"output of {step}\n".encode()) for step in range(8)]

    with CaptureQueriesContext(connection) as queries:
        stored = runs._store_evidence(run, batch, binary_steps={5})
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(writes) <= 6, writes  # heartbeat, what is there already, the rows, their audit entries

    assert [e.step for e in stored] == list(range(8)) and all(e.pk for e in stored)
    row = Evidence.objects.get(run=run, step=5)
    assert row.probe == "fd_usage" and row.binary and bytes(row.output) == b"output of 5\n"
    assert AuditEntry.objects.filter(run=run, action="command").count() == 8

    # Delivered again (a redelivered run re-sends what finished): nothing new, nothing audited twice.
    assert runs._store_evidence(run, [*batch[:3], _result(2, b"other")], binary_steps=set()) == []
    assert Evidence.objects.filter(run=run).count() == 8
    assert AuditEntry.objects.filter(run=run, action="command").count() == 8
    assert bytes(Evidence.objects.get(run=run, step=2).output) == b"output of 2\n"
