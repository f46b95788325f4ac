"""A sweep's runs go to the collector in batches whose connects start at once (run_batches), against
real sshd hosts in the lab, and through the desk's real collector worker on a Redis of the test's own.

- A connection dialled ahead is what the login uses: the host starts dropping SYNs after the dial,
  and the run still succeeds over that connection. One dialled to another address is not used.
- Runs through a jump host are never dialled ahead (their address may be another machine from here).
- A process's run slots bound its batches' threads too; a run that finds none free goes back to the
  broker on its own, for a process with room.
- ``sweep_start`` through the real worker: batches of at most ``BATCH_SIZE`` runs, every run collected
  once, the unreachable one failed by its connect bound; with Redis down the runs wait, saying so.
"""

from __future__ import annotations

import pytest

from diagnostics import services, ssh
from diagnostics.models import CollectionRun, Playbook, RunState
from diagnostics.services import run_batches
from diagnostics.services.runs import QUEUE_DOWN
from diagnostics.services.sweeps import sweep_start
from tests.lab_servers import lab_server
from tests.worker_support import app_broker, wait_until
from triage.models import Customer, Server

QUICK = [{"probe": "load", "params": {}}, {"probe": "disk", "params": {}}]


@pytest.fixture
def playbook(db):
    return Playbook.objects.create(name="Quick", steps=QUICK)


def _queued_run(server: Server, playbook: Playbook, tech) -> CollectionRun:
    sweep = sweep_start(customer=server.customer, playbook=playbook, by=tech, enqueue=False)
    return sweep.runs.get(server=server)


@pytest.fixture
def bounded_slots():
    yield run_batches.bound_runs_per_process
    run_batches._slots = None  # outside a collector worker nothing is bounded


def test_runs_through_a_jump_host_or_with_no_credential_are_not_dialled_ahead(customer, playbook, tech):
    direct = Server.objects.create(customer=customer, name="web1", address="192.0.2.10")
    services.credential_set(customer=customer, kind="password", secret="pw")
    behind = Customer.objects.create(name="Behind a bastion", sla_tier=customer.sla_tier)
    services.credential_set(customer=behind, kind="password", secret="pw")
    stranger = Customer.objects.create(name="No credential", sla_tier=customer.sla_tier)
    nothing = Server.objects.create(customer=stranger, name="mx9", address="192.0.2.12")
    own_chain = Server.objects.create(customer=customer, name="web2", address="10.9.0.2")
    jump = services.jump_host_save(customer=customer, name="bastion1", address="192.0.2.1", username="jump")
    services.jump_chain_set(jump_hosts=[jump], server=own_chain)
    via_customer = Server.objects.create(customer=behind, name="db1", address="10.9.0.3", ssh_port=2222)
    services.jump_chain_set(
        jump_hosts=[services.jump_host_save(customer=behind, name="bastion2", address="192.0.2.2", username="jump")],
        customer=behind,
    )
    runs = {
        s.name: sweep_start(customer=s.customer, playbook=playbook, by=tech, enqueue=False).runs.get(server=s)
        for s in (direct, via_customer)
    }
    runs["web2"] = CollectionRun.objects.get(server=own_chain)
    runs["mx9"] = sweep_start(customer=stranger, playbook=playbook, by=tech, enqueue=False).runs.get(server=nothing)
    done = Server.objects.create(customer=behind, name="gone", address="192.0.2.11")
    runs["gone"] = sweep_start(customer=behind, playbook=playbook, by=tech, enqueue=False).runs.get(server=done)
    CollectionRun.objects.filter(pk=runs["gone"].pk).update(state=RunState.SUCCEEDED)

    routes = run_batches.direct_routes([run.pk for run in runs.values()])

    assert routes == {runs["web1"].pk: ("192.0.2.10", 22)}


def test_a_sweep_goes_in_batches_of_at_most_the_batch_size():
    assert run_batches.batches(list(range(1, 18))) == [list(range(1, 9)), list(range(9, 17)), [17]]
    assert run_batches.batches([]) == []


@pytest.mark.root
def test_the_login_uses_the_connection_dialled_ahead(transactional_db, lab, customer, playbook, tech):
    host = lab.add_host("dialled")
    run = _queued_run(lab_server(customer, host), playbook, tech)
    dialled = ssh.dial(host.address, 22, 5)
    # The dial runs on its own thread: drop SYNs only once its connect has ended (under load, dropping them
    # first made the dial itself time out, and the run with it).
    wait_until(lambda: dialled.seconds > 0, timeout=10, what="the connection dialled ahead")
    host.drop_syn()  # from now on only a connection made before can reach sshd

    services.run_execute(run_id=run.pk, worker="batch-test", dialled=dialled)

    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.reason
    assert run.connect_seconds == pytest.approx(dialled.seconds, abs=0.05)


@pytest.mark.root
def test_a_connection_dialled_to_another_address_is_closed_not_used(transactional_db, lab, customer, playbook, tech):
    right, wrong = lab.add_host("right"), lab.add_host("wrong")
    server = lab_server(customer, right)
    run = _queued_run(server, playbook, tech)
    dialled = ssh.dial(wrong.address, 22, 5)  # the server's address was edited after the batch read it

    services.run_execute(run_id=run.pk, worker="batch-test", dialled=dialled)

    run.refresh_from_db()
    # Over the wrong host's connection the pinned key would not match: success means a fresh connection.
    assert run.state == RunState.SUCCEEDED, run.reason
    with pytest.raises(ssh.SshError):
        dialled.take()  # closed by the run, not left open


# --- Through the real collector worker ----------------------------------------------------------


@pytest.mark.root
@pytest.mark.django_db(transaction=True)
def test_a_sweep_through_the_worker_collects_every_host_once_in_batches(
    lab, redis, collector, customer, playbook, tech
):
    hosts = [lab.add_host(f"fleet{n}") for n in range(run_batches.BATCH_SIZE + 2)]
    hosts[-1].drop_syn()
    for host in hosts:
        lab_server(customer, host)
    with app_broker(redis.url()):
        sweep = sweep_start(customer=customer, playbook=playbook, by=tech)

    wait_until(
        lambda: CollectionRun.objects.filter(sweep=sweep, diagnosed_at__isnull=True).count() == 0,
        timeout=60,
        what="every run of the sweep to be diagnosed",
    )
    runs = {run.server.name: run for run in CollectionRun.objects.filter(sweep=sweep).select_related("server")}
    assert all(run.enqueued_at is not None for run in runs.values())
    dead = runs.pop(hosts[-1].name)
    assert dead.state == RunState.FAILED and "timed out" in dead.reason, dead.reason
    assert dead.attempts == 1
    for run in runs.values():
        assert run.state == RunState.SUCCEEDED, run.reason
        assert run.attempts == 1 and run.evidence.exclude(probe="ssh_session").count() == len(QUICK)
    # Four threads: the ten runs went as two batches, each run holding one of the four slots.
    assert "collect_runs" in collector.log()
    assert collector.alive


@pytest.mark.root
@pytest.mark.django_db(transaction=True)
def test_a_batch_keeps_to_its_process_run_slots_and_sends_the_rest_back_to_the_broker(
    lab, redis, collector, customer, playbook, tech, bounded_slots
):
    servers = [lab_server(customer, lab.add_host(f"slot{n}")) for n in range(3)]
    sweep = sweep_start(customer=customer, playbook=playbook, by=tech, enqueue=False)
    bounded_slots(1)  # this process, full after one run

    with app_broker(redis.url()):
        run_batches.runs_execute_together(list(sweep.runs.values_list("pk", flat=True)), worker="batch-test")

    wait_until(
        lambda: not CollectionRun.objects.filter(sweep=sweep, diagnosed_at__isnull=True).exists(),
        timeout=60,
        what="the runs sent back to be collected by the worker",
    )
    runs = CollectionRun.objects.filter(server__in=servers)
    assert [r.state for r in runs] == [RunState.SUCCEEDED] * 3
    workers = [run.worker for run in runs]
    assert workers.count("batch-test") == 1 and sum(w.startswith("collector@") for w in workers) == 2, workers
    assert all(run.attempts == 1 for run in runs)


@pytest.mark.root
@pytest.mark.django_db(transaction=True)
def test_with_redis_down_a_sweeps_runs_wait_saying_so(lab, redis, collector, customer, playbook, tech):
    lab_server(customer, lab.add_host("waiting"))
    redis.kill()
    try:
        with app_broker(redis.url()):
            sweep = sweep_start(customer=customer, playbook=playbook, by=tech)
    finally:
        redis.start()
    [run] = CollectionRun.objects.filter(sweep=sweep)
    assert run.state == RunState.QUEUED and run.enqueued_at is None and run.reason == QUEUE_DOWN
