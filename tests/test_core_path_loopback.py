"""The core path without root: a ticket's collection logs in to a real sshd on loopback (run by
whoever runs the tests), stores the probe's evidence, and the diagnosis names the fault with the
line that proves it; a healthy decoy beside it gets nothing.

The fault is real and the test's own: a process it starts with a small open-files limit and
nearly all of it in use. The playbook asks about that process by name, so nothing else on the
machine (other users, other tests, the load) enters the evidence. CI runs this file again as an
unprivileged user (.ci/run), so the path is known to work for a contributor without root.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import pytest

from diagnostics import services
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import Evidence, Playbook, RunState
from tests import loopback_sshd
from tests.lab_servers import lab_server
from triage import services as desk

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("kb"),
    pytest.mark.skipif(not loopback_sshd.SSHD.exists(), reason="no OpenSSH server installed"),
    # Without a shell every probe would end without an exit status: say why instead (a skip fails CI).
    pytest.mark.skipif(loopback_sshd.unusable_shell() is not None, reason=str(loopback_sshd.unusable_shell())),
]

SYMPTOM = "open-files-limit-reached"

# Names itself (what /proc/<pid>/comm and the probe's `process` parameter see), lowers its own
# soft open-files limit, holds `open_files` descriptors in all, says so, and waits for stdin to close.
HOLDER = textwrap.dedent("""
    import os, resource, sys
    name, limit, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open("/proc/self/comm", "w") as comm:
        comm.write(name)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    held = []
    while len(os.listdir("/proc/self/fd")) - 1 < total:  # listdir's own descriptor is gone when it returns
        held.append(os.open("/dev/null", os.O_RDONLY))
    print("ready", flush=True)
    sys.stdin.read()
""")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = loopback_sshd.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def holders():
    started: list[subprocess.Popen] = []

    def hold(name: str, *, limit: int, open_files: int) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, name, str(limit), str(open_files)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout.readline().strip() == "ready", f"holder {name} exited with {process.wait()}"
        return process

    yield hold
    for process in started:
        process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def _collect(ticket, server, process_name: str):
    playbook = Playbook.objects.create(
        name=f"open files of {process_name}", steps=[{"probe": "fd_usage", "params": {"process": process_name}}]
    )
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    return services.run_execute(run_id=run.pk, worker="loopback")


def _server(customer, sshd, name: str):
    server = lab_server(customer, sshd, port=sshd.port)
    server.name, server.ssh_user = name, sshd.user
    server.save(update_fields=["name", "ssh_user"])
    return server


def test_a_process_at_its_open_files_limit_is_diagnosed_over_ssh_and_a_healthy_one_is_not(
    sshd, holders, customer, tech, client
):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    limit = rng.randrange(48, 400)
    faulty_name = f"qd{rng.randrange(10**6)}"
    healthy_name = f"qh{rng.randrange(10**6)}"
    faulty = holders(faulty_name, limit=limit, open_files=limit - 1 - rng.randrange(0, max(1, limit // 25)))
    healthy = holders(healthy_name, limit=limit, open_files=rng.randrange(8, limit // 2))
    context = f"seed {seed}: limit {limit}"

    ticket = desk.ticket_create(
        subject="Connections refused under load", description="new logins hang", customer=customer, created_by=tech
    )
    server = _server(customer, sshd, "app1")
    run = _collect(ticket, server, faulty_name)
    evidence = Evidence.objects.get(run=run, probe="fd_usage")
    # Without root the probe counts only the login user's own processes, which hold the fault here,
    # and the run says it is partial for that reason; as root it reads every process.
    expected = RunState.SUCCEEDED if os.geteuid() == 0 else RunState.PARTIAL
    assert run.state == expected, f"{context}: {run.reason}\n{evidence.text[:2000]}"
    assert f"{faulty.pid} {faulty_name} " in evidence.text, context

    fixes = ranked_fixes(run=run)
    assert [m.symptom.key for fix in fixes for m in fix.matches] == [SYMPTOM], context
    # The proof shown beside the fix is the faulty process's own line.
    citations = [c.get("text", "") for c in fixes[0].citations]
    assert any(f"{faulty.pid} {faulty_name} " in text for text in citations), f"{context}: {citations}"

    # What the tech sees: the ticket page names the symptom.
    client.force_login(tech)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert fixes[0].matches[0].symptom.title.replace('"', "&quot;") in page, context

    decoy_ticket = desk.ticket_create(
        subject="Connections refused under load", description="new logins hang", customer=customer, created_by=tech
    )
    decoy_run = _collect(decoy_ticket, _server(customer, sshd, "app2"), healthy_name)
    decoy_evidence = Evidence.objects.get(run=decoy_run, probe="fd_usage")
    assert f"{healthy.pid} {healthy_name} " in decoy_evidence.text, context
    assert ranked_fixes(run=decoy_run) == [], context
