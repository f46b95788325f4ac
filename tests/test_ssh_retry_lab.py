"""Transient SSH faults are tried once more, bounded: a lab host whose firewall refuses the first
connection (a TCP reset, as a restarting sshd or a connection limit gives) and accepts the next.
A host that keeps refusing is tried exactly twice, and a fault that waited out its bound (dropped
SYNs) is not tried again (tests/test_collection_workers.py: their audit says one attempt).
"""

from __future__ import annotations

import re

import pytest

from diagnostics import services
from diagnostics.models import AuditEntry, Playbook, RunState
from tests.lab_servers import lab_server
from triage import services as desk

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

QUICK = [{"probe": "load", "params": {}}]
REFUSE = ["-p", "tcp", "--dport", "22", "--syn"]


@pytest.fixture
def ticket(customer, tech):
    return desk.ticket_create(
        subject="Login flaps", description="sometimes refused", customer=customer, created_by=tech
    )


def _collect(ticket, server):
    playbook = Playbook.objects.get_or_create(name="quick", defaults={"steps": QUICK})[0]
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    return services.run_execute(run_id=run.pk, worker="test")


def _rejected(host) -> int:
    """SYNs the host's firewall answered with a reset so far."""
    rules = host.run("iptables", "-w", "5", "-L", "INPUT", "-v", "-n", "-x").stdout
    return sum(int(line.split()[0]) for line in rules.splitlines() if re.search(r"\bREJECT\b", line))


def test_a_connection_refused_once_is_tried_again_and_the_run_succeeds(lab, customer, ticket):
    host = lab.add_host("flaky")
    # The first SYN is remembered and reset; a SYN from a remembered address is let through.
    host.run(
        "iptables", "-w", "5", "-A", "INPUT", *REFUSE, "-m", "recent", "--name", "seen", "--rcheck", "-j", "ACCEPT"
    )
    host.run(
        "iptables",
        "-w",
        "5",
        "-A",
        "INPUT",
        *REFUSE,
        "-m",
        "recent",
        "--name",
        "seen",
        "--set",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    )
    run = _collect(ticket, lab_server(customer, host))
    assert run.state == RunState.SUCCEEDED, run.reason
    assert _rejected(host) == 1
    assert AuditEntry.objects.get(run=run, action="connected").detail["attempts"] == 2


def test_a_host_that_keeps_refusing_is_tried_twice_then_fails_unreachable(lab, customer, ticket):
    host = lab.add_host("refusing")
    host.run("iptables", "-w", "5", "-A", "INPUT", *REFUSE, "-j", "REJECT", "--reject-with", "tcp-reset")
    run = _collect(ticket, lab_server(customer, host))
    assert run.state == RunState.FAILED and run.failure_kind == "unreachable", run.reason
    assert "Connection refused" in run.reason
    assert _rejected(host) == 2  # once, then once more: never a loop
    assert AuditEntry.objects.get(run=run, action="connect_failed").detail["attempts"] == 2
