"""Collections against real sshd hosts in network namespaces, with real faults.

Every test builds the product's objects (customer, server, credential, pinned
host key, ticket, playbook) and runs a collection through the same service the
Celery task calls, against a lab host that really has the fault.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
import time

import pytest
from django.db import connections

from diagnostics import services, ssh
from diagnostics.models import AuditEntry, CollectionRun, Evidence, HostKey, Playbook, RunState
from tests.lab_servers import lab_server
from tests.worker_support import wait_until
from triage import services as desk
from triage.models import EventKind

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

QUICK = [{"probe": "load", "params": {}}, {"probe": "disk", "params": {}}, {"probe": "memory", "params": {}}]


@pytest.fixture
def fast_timeouts(settings):
    settings.TRIAGE_SSH_TIMEOUTS = {"connect": 2, "banner": 2, "handshake": 3, "auth": 20}


def _collect(ticket, server, steps=QUICK, **execute) -> CollectionRun:
    playbook, _ = Playbook.objects.get_or_create(
        name=f"lab {len(steps)} {steps[0]['probe']}", defaults={"steps": steps}
    )
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    return services.run_execute(run_id=run.pk, worker="test", **execute)


@pytest.fixture
def ticket(customer, tech):
    return desk.ticket_create(subject="Mail is slow", description="30 s", customer=customer, created_by=tech)


def test_a_collection_stores_evidence_timings_timeline_and_audit(lab, customer, ticket):
    host = lab.add_host("ok")
    server = lab_server(customer, host, key="encrypted")
    run = _collect(ticket, server)
    assert run.state == RunState.SUCCEEDED, run.reason
    evidence = list(run.evidence.order_by("step"))
    assert [e.probe for e in evidence] == ["load", "disk", "memory", "ssh_session"]
    assert all(e.exit_status == 0 and e.command.startswith("LC_ALL=C timeout -k") for e in evidence[:3])
    assert "load average" in evidence[0].text
    assert run.connect_seconds is not None and run.auth_seconds >= run.banner_seconds >= run.connect_seconds
    # The login the product measured is evidence too, with the run's own numbers.
    assert f"\nauth {run.auth_seconds:.4f}\n" in evidence[3].text and f"{host.address}:22" in evidence[3].text
    events = list(ticket.events.filter(kind=EventKind.COLLECTION).values_list("data__state", flat=True))
    assert events == ["queued", "succeeded"]
    commands = AuditEntry.objects.filter(run=run, action="command")
    assert commands.count() == 3 and all(host.address in a.address for a in commands)


def test_syns_dropped_end_unreachable_within_the_bound(lab, customer, ticket, fast_timeouts):
    host = lab.add_host("nosyn")
    host.drop_syn(22)
    run = _collect(ticket, lab_server(customer, host))
    # The bound is the state: the connect timeout (2 s here, not the kernel's minutes of SYN retries) ended it.
    assert run.state == RunState.FAILED and run.failure_kind == "unreachable"
    assert run.reason == "Unreachable: connect timed out after 2 s."


def test_a_port_that_never_sends_a_banner_fails_within_the_banner_bound(lab, customer, ticket, fast_timeouts):
    host = lab.add_host("mute")
    host.serve_silence(2222)
    run = _collect(ticket, lab_server(customer, host, port=2222))
    assert run.failure_kind == "no_banner" and run.reason.startswith("No SSH banner within 2 s")


def test_a_banner_then_silence_is_bounded_by_the_handshake_timeout(lab, customer, ticket, fast_timeouts):
    host = lab.add_host("stall")
    host.serve_banner_then_silence(2223)
    run = _collect(ticket, lab_server(customer, host, port=2223))
    assert run.failure_kind == "handshake" and "did not finish within 3 s" in run.reason


def test_a_slow_login_from_dead_resolvers_succeeds_and_its_time_is_evidence(lab, customer, ticket):
    blackhole = lab.add_host("blackhole")
    blackhole.drop_dns()
    host = lab.add_host(
        "usedns",
        resolv_conf=f"nameserver {blackhole.address}\noptions timeout:2 attempts:1\n",
        sshd_options={"UseDNS": "yes"},
    )
    run = _collect(ticket, lab_server(customer, host))
    assert run.state == RunState.SUCCEEDED, run.reason
    assert run.auth_seconds - run.handshake_seconds >= 1.5, (run.handshake_seconds, run.auth_seconds)
    assert f"Login took {run.auth_seconds:.2f} s" in run.reason


def test_an_unknown_host_key_stops_the_run_with_its_fingerprint(lab, customer, ticket):
    host = lab.add_host("newkey")
    server = lab_server(customer, host, pin=False)
    run = _collect(ticket, server)
    assert run.failure_kind == "host_key_unknown" and host.host_key_fingerprint in run.reason
    offered = HostKey.objects.get(server=server)
    assert offered.status == HostKey.PENDING and offered.fingerprint == host.host_key_fingerprint
    assert not run.evidence.exists()
    services.host_key_trust(host_key=offered, by=None)
    again = _collect(ticket, server)
    assert again.state == RunState.SUCCEEDED


def test_a_changed_host_key_is_refused_and_the_server_flagged(lab, customer, ticket):
    host = lab.add_host("rekeyed")
    server = lab_server(customer, host)
    host.rotate_host_key()
    run = _collect(ticket, server)
    server.refresh_from_db()
    assert run.failure_kind == "host_key_changed" and "host key changed" in run.reason.lower()
    assert server.host_key_changed_at is not None
    assert HostKey.objects.filter(server=server, status=HostKey.PENDING, fingerprint=host.host_key_fingerprint).exists()
    assert not run.evidence.exists()


def test_refused_authentication_is_a_clear_terminal_error(lab, customer, ticket):
    host = lab.add_host("denied")
    server = lab_server(customer, host, key="none")
    services.credential_set(server=server, kind="password", secret="not-the-password")
    run = _collect(ticket, server)
    assert run.state == RunState.FAILED and run.failure_kind == "auth_failed"
    assert run.reason.startswith("Authentication refused for root")


def test_password_logins_work(lab, customer, ticket):
    host = lab.add_host("pw")
    server = lab_server(customer, host, key="none")
    server.ssh_user = host.user
    server.save()
    services.credential_set(server=server, kind="password", secret=host.password)
    run = _collect(ticket, server, steps=[{"probe": "load", "params": {}}])
    assert run.state == RunState.SUCCEEDED, run.reason


def _session(host, **timeouts) -> ssh.Session:
    key_type, key_b64 = host.host_public_key.split()[:2]
    return ssh.connect(
        address=host.address,
        port=22,
        username="root",
        secret=ssh.Secret(private_key=host.client_key_path.read_text()),
        pinned=[ssh.HostKey(key_type, key_b64)],
        timeouts=ssh.Timeouts(**timeouts),
    )


def test_a_probe_that_never_ends_is_killed_on_the_host_and_the_others_finish(lab):
    host = lab.add_host("hang", own_pids=True)
    specs = [
        ssh.CommandSpec("hang", "sleep 4242; echo never", timeout=2),
        ssh.CommandSpec("quick", "echo fine", timeout=5),
        ssh.CommandSpec("slower", "sleep 1; echo also fine", timeout=5),
    ]
    with _session(host) as session:
        hang, quick, slower = session.run_many(specs, concurrency=3)
    # Its own bound ended the hang (timed out, 124 from `timeout` on the host), and the others did not wait on it.
    assert hang.timed_out and hang.exit_status == 124
    assert quick.stdout == b"fine\n" and slower.stdout == b"also fine\n"
    assert not quick.timed_out and not slower.timed_out
    wait_until(lambda: host.processes("sleep 4242") == [], timeout=5, what="the hung probe to be killed on the host")


def test_an_output_flood_is_capped_and_memory_stays_bounded(lab):
    host = lab.add_host("flood", own_pids=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spec = ssh.CommandSpec("flood", "head -c 1200000000 /dev/zero; echo end", timeout=60, output_cap=64 << 10)
    with _session(host) as session:
        result = session.run(spec)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.truncated and len(result.stdout) < 70 << 10
    assert result.stdout_bytes >= spec.read_limit and "output flood" in result.error
    assert grown_mb < 100, f"worker memory grew by {grown_mb:.0f} MB"
    wait_until(lambda: host.processes("head -c 1200000000") == [], timeout=5, what="the flood to be killed on the host")


def test_megabytes_on_stderr_with_a_quiet_stdout_do_not_deadlock(lab):
    host = lab.add_host("stderr")
    spec = ssh.CommandSpec("noisy", "head -c 20000000 /dev/urandom >&2; echo done", timeout=30)
    with _session(host) as session:
        result = session.run(spec)
    assert result.exit_status == 0 and result.stdout == b"done\n"
    assert result.stderr_bytes == 20_000_000 and result.truncated


def test_a_dropped_connection_leaves_a_partial_run_with_what_was_gathered(lab, customer, ticket):
    host = lab.add_host("dropper")
    server = lab_server(customer, host)
    steps = [
        {"probe": "load", "params": {}},
        {"probe": "tcpdump", "params": {"seconds": 20, "interface": "lo", "count": 10, "bpf": "tcp port 9"}},
    ]

    def kill_after_first(evidence: Evidence) -> None:
        threading.Timer(0.3, host.kill_sshd).start()

    run = _collect(ticket, server, steps=steps, on_evidence=kill_after_first)
    assert run.state == RunState.PARTIAL and run.failure_kind == "dropped", run.reason
    assert "connection dropped" in run.reason.lower()
    stored = {e.probe: e for e in run.evidence.all()}
    assert stored["load"].exit_status == 0


def _execute_in_child(run_id: int) -> None:
    connections.close_all()  # the child must not share the parent's database socket
    services.run_execute(run_id=run_id, worker="doomed-worker")
    os._exit(0)


def test_a_run_whose_worker_was_killed_completes_on_redelivery_without_duplicates(lab, customer, ticket):
    host = lab.add_host("workerkill")
    server = lab_server(customer, host)
    steps = [
        {"probe": "load", "params": {}},
        {"probe": "tcpdump", "params": {"seconds": 30, "interface": "lo", "count": 10, "bpf": "tcp port 9"}},
    ]
    playbook = Playbook.objects.create(name="kill me", steps=steps)
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    connections.close_all()
    child = multiprocessing.get_context("fork").Process(target=_execute_in_child, args=(run.pk,))
    child.start()
    deadline = time.monotonic() + 20
    while not Evidence.objects.filter(run=run).exclude(probe="ssh_session").exists():
        assert time.monotonic() < deadline, "the worker never stored its first evidence"
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    run.refresh_from_db()
    assert run.state == RunState.RUNNING  # the dead worker left it active...

    # ...and the redelivered task may not take it while its heartbeat is fresh,
    assert services.run_execute(run_id=run.pk, worker="second") is None
    # but once the heartbeat is stale, redelivery (or the sweeper) finishes it.
    CollectionRun.objects.filter(pk=run.pk).update(heartbeat_at=run.heartbeat_at - services.STALE_AFTER * 2)
    finished = services.run_execute(run_id=run.pk, worker="second")
    assert finished.state in (RunState.SUCCEEDED, RunState.PARTIAL), finished.reason
    assert finished.attempts == 2
    assert sorted(finished.evidence.exclude(probe="ssh_session").values_list("step", flat=True)) == [0, 1]
    assert finished.evidence.filter(probe="ssh_session").count() == 1
    assert finished.evidence.filter(step=0).count() == 1


def test_a_finished_run_is_never_executed_twice(lab, customer, ticket):
    host = lab.add_host("twice")
    run = _collect(ticket, lab_server(customer, host))
    assert services.run_execute(run_id=run.pk, worker="again") is None
    assert run.evidence.count() == 3 + 1  # the playbook's three probes and the measured login


def test_the_collect_command_runs_synchronously_and_prints_results(lab, customer, ticket):
    from io import StringIO

    from django.core.management import call_command

    host = lab.add_host("cli")
    server = lab_server(customer, host)
    Playbook.objects.create(name="Quick look", steps=QUICK)
    out = StringIO()
    call_command("collect", str(ticket.pk), server.name, playbook="Quick look", stdout=out)
    text = out.getvalue()
    assert "== load [exit 0" in text and "load average" in text and "succeeded" in text
    assert "$ LC_ALL=C timeout -k" in text


def test_output_that_trails_the_exit_status_is_never_cut_short(lab):
    """sshd may send the exit status before the last output; every byte must still be kept."""
    host = lab.add_host("trailing")
    specs = [ssh.CommandSpec(str(i), "head -c 300000 /dev/zero; printf END", timeout=20) for i in range(200)]
    with _session(host) as session:
        results = session.run_many(specs, concurrency=8)
        assert session.alive
    short = [r.key for r in results if r.exit_status != 0 or r.stdout_bytes != 300_003 or not r.stdout.endswith(b"END")]
    assert short == [], f"{len(short)} of 200 runs lost output"
