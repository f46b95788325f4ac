"""Least privilege against real sshd and real sudo: a login user that is not root, with sudo limited to the
sudoers lines the Access page generates (or with none at all, or behind a password)."""

from __future__ import annotations

import re
import subprocess
import threading

import pytest

from diagnostics import probes, services
from diagnostics.models import AuditEntry, Playbook, RunState
from diagnostics.probes import privilege
from tests.lab_servers import lab_server
from triage import services as desk

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

PCAP_MAGIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")  # little- and big-endian libpcap files
STEPS = [
    {"probe": "strace", "params": {"process": "sleep", "seconds": 1, "syscalls": "nanosleep,clock_nanosleep"}},
    {"probe": "tcpdump", "params": {"seconds": 1, "count": 5}},
    {"probe": "load", "params": {}},
    {"probe": "fd_usage", "params": {"process": "sleep"}},
    {"probe": "auth_log", "params": {"lines": 5}},
]
SECURE_LINE = "Dec  3 04:00:00 sudo sshd[4242]: Accepted publickey for ops from 192.0.2.7 port 50000 ssh2"
# Only the host's own sudo log (private /var/log), never the machine's syslog.
SUDO_LOG = "/var/log/sudo.log"


@pytest.fixture
def ticket(customer, tech):
    return desk.ticket_create(subject="Slow mail", description="30 s", customer=customer, created_by=tech)


@pytest.fixture
def sudo_host(lab):
    """A host with its own PID namespace and /var/log, a root-owned process to trace, and a root login
    nobody uses: collections log in as the lab's unprivileged user."""
    host = lab.add_host("sudo", own_pids=True, private_tmp=True)
    host.write_file("/var/log/secure", SECURE_LINE + "\n", mode=0o600)  # root's only, as on RHEL
    # Host._enter is the lab's argv prefix into a host's namespaces; the host's pid 1 reaps it on teardown.
    sleeper = subprocess.Popen(
        [*host._enter(), "sleep", "300"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    yield host
    sleeper.kill()
    sleeper.wait(timeout=5)
    lab.remove_host(host)


def _sudoers(host, *, allow: bool, password: bool = False) -> str:
    # timestamp_timeout=0: sudo asks for the password every time (the lab user and /run/sudo are the machine's,
    # so a cached sudo login from another test would otherwise let a run through without it).
    lines = [f"Defaults logfile={SUDO_LOG}, loglinelen=0, !syslog, timestamp_timeout=0", "root ALL=(ALL:ALL) ALL"]
    if allow:
        lines += privilege.sudoers_lines(user=host.user, tools=probes.root_tools(), password=password)
    return "\n".join(lines) + "\n"


def _server(customer, host, *, sudo_password: str = ""):
    server = lab_server(customer, host, key="none")
    # The lab's unprivileged user logs in by password (sshd reads key files as the user, and the lab's are root's).
    services.credential_set(
        server=server, kind="password", secret=host.password, username=host.user, sudo_password=sudo_password
    )
    return server


def _collect(ticket, server):
    playbook, _ = Playbook.objects.get_or_create(name="root probes", defaults={"steps": STEPS})
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    return services.run_execute(run_id=run.pk, worker="test")


def _assert_root_evidence(run):
    strace, tcpdump, load, fds, auth = run.evidence.order_by("step")[:5]
    assert strace.exit_status == 0, strace.text
    assert re.search(r"Process \d+ attached", strace.text), strace.text
    assert tcpdump.exit_status == 0, tcpdump.stderr
    assert bytes(tcpdump.output[:4]) in PCAP_MAGIC
    assert load.exit_status == 0 and "load average" in load.text
    # root's sleep process, whose fd directory only root may list
    assert fds.exit_status == 0 and re.search(r"^\d+ sleep [1-9]\d* \d+$", fds.text, re.M), fds.text
    assert auth.exit_status == 0 and SECURE_LINE in auth.text, auth.text


def test_a_non_root_login_with_the_generated_sudoers_gets_the_root_probes_evidence(sudo_host, customer, ticket):
    sudo_host.set_sudoers(_sudoers(sudo_host, allow=True))
    run = _collect(ticket, _server(customer, sudo_host))
    assert run.state == RunState.SUCCEEDED, run.reason
    _assert_root_evidence(run)
    # The collection logged in as the unprivileged user, and sudo ran exactly the probes' two commands.
    assert AuditEntry.objects.get(run=run, action="connected").address == f"{sudo_host.user}@{sudo_host.address}:22"
    log = sudo_host.read_file(SUDO_LOG)
    assert f"{sudo_host.user} :" in log
    assert "COMMAND=/usr/bin/strace -f -tt -T -e trace=nanosleep,clock_nanosleep -p " in log
    assert re.search(r"COMMAND=/usr/bin/find (/proc/\d+/fd )+-mindepth 1 -maxdepth 1", log)
    assert "COMMAND=/usr/bin/tail -n 5 /var/log/secure" in log
    assert "COMMAND=/usr/bin/tcpdump -i any -s 0 -U -w - -c 5 -- 'not (host " in log


def test_without_sudo_rights_root_probes_say_needs_root_and_the_rest_succeeds(sudo_host, customer, ticket):
    sudo_host.set_sudoers(_sudoers(sudo_host, allow=False))
    run = _collect(ticket, _server(customer, sudo_host))
    assert run.state == RunState.PARTIAL and run.failure_kind == "needs_root", run.reason
    assert "auth_log, fd_usage, strace, tcpdump needed root, which trlab could not get through sudo" in run.reason
    strace, tcpdump, load, fds, auth = run.evidence.order_by("step")[:5]
    for evidence, tool in (
        (strace, "strace"),
        (tcpdump, "tcpdump"),
        (fds, "fd_usage"),
        (auth, "reading /var/log/secure"),
    ):
        assert evidence.exit_status == privilege.NEEDS_ROOT
        assert evidence.needs_root.startswith(f"{tool} ") and f"{sudo_host.user} may not" in evidence.needs_root, (
            evidence.text
        )
        assert "Access page" in evidence.needs_root
    assert load.exit_status == 0 and "load average" in load.text


def test_a_sudo_password_goes_to_sudo_on_stdin_and_nowhere_else(sudo_host, customer, ticket):
    password = sudo_host.password
    sudo_host.set_sudoers(_sudoers(sudo_host, allow=True, password=True))
    server = _server(customer, sudo_host, sudo_password=password)
    # The host's whole process list, sampled through the run: no command line may carry the password.
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.extend(sudo_host.processes(re.escape(password)))
            done.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run = _collect(ticket, server)
    finally:
        done.set()
        watcher.join(timeout=10)
    assert run.state == RunState.SUCCEEDED, run.reason
    _assert_root_evidence(run)
    assert seen == []
    for evidence in run.evidence.all():
        stored = bytes(evidence.output) + bytes(evidence.stderr) + evidence.command.encode() + evidence.error.encode()
        assert password.encode() not in stored
    assert not any(password in (a.command + str(a.detail)) for a in AuditEntry.objects.filter(run=run))
    # sudo asked for it and got it (a sudo that needed none would prove nothing): the log has the commands,
    # and not the password.
    log = sudo_host.read_file(SUDO_LOG)
    assert "COMMAND=/usr/bin/strace" in log and password not in log


def test_a_wrong_sudo_password_is_needs_root_evidence_naming_sudo_s_refusal(sudo_host, customer, ticket):
    sudo_host.set_sudoers(_sudoers(sudo_host, allow=True, password=True))
    run = _collect(ticket, _server(customer, sudo_host, sudo_password="not-the-password"))
    strace = run.evidence.order_by("step").first()
    assert strace.exit_status == privilege.NEEDS_ROOT
    assert "incorrect password" in strace.needs_root, strace.text


REFUSED = [
    "strace -f -tt -T -e trace=connect -p 1 -o /etc/passwd",  # writes any file as root
    "strace -f -tt -T -e trace=connect /bin/sh",  # runs a command as root
    "tcpdump -i any -s 0 -U -w /etc/passwd -c 5",
    "tcpdump -i any -s 0 -U -w - -c 5 -z /bin/sh",
    "find /proc/1/fd -mindepth 1 -maxdepth 1 -exec /bin/sh ;",
    "tail -n 5 /etc/shadow",
    "tail -n 5 /var/log/secure /etc/shadow",
    "sshd -T -f /etc/shadow",  # sshd -T echoes the lines it cannot parse
    "sh -c id",
]


def test_the_generated_sudoers_allow_nothing_but_the_probes_shapes(sudo_host):
    sudo_host.set_sudoers(_sudoers(sudo_host, allow=True))
    allowed = "tail -n 5 /var/log/secure"
    for command in REFUSED:
        check = f"sudo -n -l -- {allowed} >/dev/null && ! sudo -n -l -- {command}"
        result = sudo_host.run("su", sudo_host.user, "-s", "/bin/sh", "-c", check, check=False)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
