"""Collections through jump hosts, end to end (services.run_execute) against real sshd in the lab: the
server's or its customer's chain is used, the audit shows the path, and a jump host's key problems land
on the jump host, never on the server."""

from __future__ import annotations

import pytest

from diagnostics import services
from diagnostics.models import AuditEntry, CollectionRun, HostKey, JumpHostKey, Playbook, RunState
from tests.lab_servers import lab_jump_host, lab_server
from triage import services as desk

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

LOAD = [{"probe": "load", "params": {}}]


@pytest.fixture(scope="module")
def net(lab):
    private = lab.add_private_network()
    bastion = lab.add_host("bastion1", also_on=private)
    inner = lab.add_host("inner", network=private)
    return private, bastion, inner


@pytest.fixture
def ticket(customer, tech):
    return desk.ticket_create(subject="Behind a bastion", description="jump", customer=customer, created_by=tech)


def _collect(ticket, server) -> CollectionRun:
    playbook, _ = Playbook.objects.get_or_create(name="jump load", defaults={"steps": LOAD})
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    return services.run_execute(run_id=run.pk, worker="test")


def test_a_private_host_is_collected_through_the_customers_bastion_and_not_without_it(net, customer, ticket):
    private, bastion, inner = net
    server = lab_server(customer, inner)
    direct = _collect(ticket, server)
    assert direct.state == RunState.FAILED and direct.failure_kind == "unreachable"

    jump = lab_jump_host(customer, bastion)
    services.jump_chain_set(customer=customer, jump_hosts=[jump])  # the default for servers that set none
    run = _collect(ticket, server)
    assert run.state == RunState.SUCCEEDED, run.reason
    assert "load average" in run.evidence.get(probe="load").text
    path = f"root@{inner.address}:22 via bastion1"
    connected = AuditEntry.objects.get(run=run, action="connected")
    assert connected.address == path and connected.detail["jump_hosts_seconds"] > 0
    assert AuditEntry.objects.filter(run=run, action="command", address=path).exists()
    assert path in run.evidence.get(probe="ssh_session").text
    assert f"Accepted publickey for root from {bastion.address_on[private.bridge]} " in inner.sshd_log()


def test_a_servers_own_chain_overrides_the_customers_and_can_have_two_hops(lab, net, customer, ticket):
    private, bastion, _ = net
    deeper = lab.add_private_network()
    second = lab.add_host("bastion2", network=private, also_on=deeper)
    deep = lab.add_host("deep", network=deeper)
    try:
        first_hop, second_hop = lab_jump_host(customer, bastion), lab_jump_host(customer, second)
        services.jump_chain_set(customer=customer, jump_hosts=[first_hop])
        server = lab_server(customer, deep)
        run = _collect(ticket, server)  # the customer's one-hop chain cannot reach the deeper network
        assert run.state == RunState.FAILED and run.reason.startswith(
            f"Jump host bastion1 could not reach {deep.address} port 22"
        ), run.reason
        services.jump_chain_set(server=server, jump_hosts=[first_hop, second_hop])
        run = _collect(ticket, server)
        assert run.state == RunState.SUCCEEDED, run.reason
        assert AuditEntry.objects.filter(
            run=run, action="connected", address=f"root@{deep.address}:22 via bastion1, bastion2"
        ).exists()
    finally:
        lab.remove_host(deep)
        lab.remove_host(second)


def test_an_unknown_bastion_key_is_kept_on_the_jump_host_for_an_admin_to_trust(net, customer, ticket, admin_user):
    _, bastion, inner = net
    server = lab_server(customer, inner)
    jump = lab_jump_host(customer, bastion, pin=False)
    services.jump_chain_set(server=server, jump_hosts=[jump])
    run = _collect(ticket, server)
    assert run.state == RunState.FAILED and run.failure_kind == "host_key_unknown", run.reason
    assert run.reason.startswith(f"Jump host bastion1: unknown host key {bastion.host_key_fingerprint}")
    offered = JumpHostKey.objects.get(jump_host=jump)
    assert offered.status == HostKey.PENDING and offered.fingerprint == bastion.host_key_fingerprint
    assert not HostKey.objects.filter(server=server, status=HostKey.PENDING).exists()  # the server's keys untouched
    server.refresh_from_db()
    assert server.host_key_changed_at is None

    services.jump_host_key_decide(key=offered, trust=True, by=admin_user)
    run = _collect(ticket, server)
    assert run.state == RunState.SUCCEEDED, run.reason


def test_a_bastion_with_its_own_password_credential_and_one_without_any(lab, net, customer, ticket):
    private, _, inner = net
    bastion = lab.add_host("pwbastion", also_on=private)
    try:
        bastion.set_authorized_keys("root", "")  # only the password user gets in here
        server = lab_server(customer, inner)
        jump = lab_jump_host(customer, bastion, credential="none", username=bastion.user)
        services.jump_chain_set(server=server, jump_hosts=[jump])
        run = _collect(ticket, server)
        assert run.state == RunState.FAILED and run.failure_kind == "bad_credential"
        assert run.reason == (
            "Jump host pwbastion has no credential stored; an admin can add one on the server's Access page."
        )
        services.jump_host_credential_set(jump_host=jump, kind="password", secret=bastion.password)
        run = _collect(ticket, server)
        assert run.state == RunState.SUCCEEDED, run.reason
        assert f"Accepted password for {bastion.user}" in bastion.sshd_log()
    finally:
        lab.remove_host(bastion)


def test_a_bastion_that_drops_syns_fails_the_run_by_name_within_its_own_connect_bound(lab, net, customer, ticket):
    private, _, inner = net
    bastion = lab.add_host("mute", also_on=private)
    try:
        bastion.drop_syn()
        server = lab_server(customer, inner)
        jump = lab_jump_host(customer, bastion, bounds={"connect": 2})  # the servers' default is 5 s
        services.jump_chain_set(server=server, jump_hosts=[jump])
        run = _collect(ticket, server)
        assert run.state == RunState.FAILED and run.failure_kind == "unreachable"
        assert run.reason == "Jump host mute: unreachable: connect timed out after 2 s."
        failed = AuditEntry.objects.get(run=run, action="connect_failed")
        assert failed.address == f"root@{inner.address}:22 via mute" and failed.detail["kind"] == "unreachable"
    finally:
        lab.remove_host(bastion)
