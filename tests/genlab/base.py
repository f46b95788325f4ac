"""What every generalisation-lab scenario shares: contained hosts, background programs, the lab's DNS server,
the shipped playbooks with short capture windows, and one collection through the product's own path.

Contained hosts: every host has its own PID namespace (ps, fd_usage and strace see only its processes), its
own /tmp and /var/log, and, as LXCFS gives a container, its own /proc/loadavg and /proc/vmstat and its own
kernel ring buffer (``dmesg`` reads a file of this host). Without that a collection would read the test
machine's load average, swap and OOM counters and kernel messages, which are global across namespaces: a
healthy-host test once failed because the machine was busy. Nothing a scenario asserts on depends on the
machine's load or on a process outside its lab.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tests.fixtures.capture import DNS_SERVER
from tests.lab import HOST_PYTHON, Host, Lab

# The shipped playbooks as a tech runs them, with capture windows cut so CI stays fast; `seconds` only
# bounds how long strace and tcpdump watch, every other parameter is the shipped one.
CAPTURE_SECONDS = 3
PLAYBOOK_NAMES = (
    "Mail is slow to send", "Connections piling up", "Slow logins", "Host health", "Mail scanner broken",
    "Network interface down", "Mail queue growing",
)  # fmt: skip


@dataclass
class Scenario:
    """One host to collect from and what a senior tech expects of it.

    recipe: the right fix (None: a healthy decoy that must get no suggestion); playbook: the shipped
    playbook meant for this complaint; evidence: the shipped playbooks that collect this fault's evidence
    (the right fix must be in their list); capture: strace/tcpdump window for this host; xfail: why a
    decoy is known to fail until another helper's work lands (strict); forbidden: for a decoy with a real
    but different finding, the only recipes it must not get (None: it must get nothing at all).
    """

    name: str
    story: str
    host: Host
    subject: str
    recipe: str | None = None
    playbook: str = "Host health"
    evidence: tuple[str, ...] = ()
    capture: int = CAPTURE_SECONDS
    xfail: str | None = None
    forbidden: frozenset[str] | None = None

    @property
    def healthy(self) -> bool:
        return self.recipe is None

    @property
    def playbooks(self) -> tuple[str, ...]:
        """The shipped playbooks to run here: all of them on a decoy, those that collect its evidence else."""
        return PLAYBOOK_NAMES if self.healthy else tuple(p for p in PLAYBOOK_NAMES if p in self.evidence)


@dataclass
class Env:
    """One lab plus what its scenarios share: the DNS server every host resolves through, and every
    background program started in a host (killed by process group on close)."""

    lab: Lab
    spawned: list[subprocess.Popen] = field(default_factory=list)
    _dns: Host | None = None

    @property
    def dns(self) -> Host:
        if self._dns is None:
            self._dns = self.lab.add_host("dns", private_tmp=True)
            self._dns.write_file("/tmp/dns.py", DNS_SERVER)
            background(self, self._dns, HOST_PYTHON, "-I", "-S", "/tmp/dns.py")
            wait_until(lambda: ":53 " in self._dns.run("ss", "-lun").stdout, what="the lab DNS server")
        return self._dns

    def resolv_conf(self, *, extra: str = "") -> str:
        return f"search lab.test\nnameserver {self.dns.address}\n{extra}options timeout:1 attempts:1\n"

    def close(self) -> None:
        for process in self.spawned:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.spawned.clear()


def background(env: Env, host: Host, *argv: str) -> subprocess.Popen:
    """Start a program inside a host, in its own process group (Host._enter is what Host.run uses)."""
    process = subprocess.Popen(
        [*host._enter(), *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    env.spawned.append(process)
    return process


def wait_until(condition: Callable[[], bool], *, what: str, timeout: float = 20) -> None:
    """Wait for a state of the lab (never asserts on how long it took; gives up loudly)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"lab: gave up waiting for {what}")
        time.sleep(0.1)


def contained_host(
    env: Env, name: str, *, kernel_log: str = "", resolv_conf: str | None = None, start_sshd: bool = True, **options
) -> Host:
    """A host with its own processes, /tmp, /var/log, load average, vm counters and kernel ring buffer."""
    host = env.lab.add_host(
        name,
        own_pids=True,
        private_tmp=True,
        start_sshd=False,
        resolv_conf=env.resolv_conf() if resolv_conf is None else resolv_conf,
        **options,
    )
    host.contain(kernel_log)
    if start_sshd:
        host.start_sshd()
    return host


def set_kernel_log(host: Host, text: str) -> None:
    (host.dir / "kmsg").write_text(text)


def rename_interface(host: Host, new: str, *, old: str = "eth0") -> None:
    """Give the host's NIC another name (ens18, enp3s0f1...), as udev's predictable names do."""
    host.run("ip", "link", "set", old, "down")
    host.run("ip", "link", "set", old, "name", new)
    host.run("ip", "link", "set", new, "up")


def syslog_time(moment: datetime) -> str:
    return f"{moment:%b} {moment.day:>2} {moment:%H:%M:%S}"


CHATTER = (
    "CRON[{pid}]: (root) CMD (/usr/lib/sa/sa1 1 1)",
    "systemd[1]: Started Session {n} of user root.",
    "postfix/qmgr[{pid}]: {queue}: removed",
    "postfix/smtpd[{pid}]: connect from unknown[198.51.100.{o}]",
    "dhclient[{pid}]: bound to 203.0.113.{o} -- renewal in {n} seconds.",
    "sshd[{pid}]: Accepted publickey for deploy from 198.51.100.{o} port {port} ssh2",
    "ntpd[{pid}]: adjusting local clock by 0.00{n}s",
)


def chatter(hostname: str, start: datetime, count: int, *, step: int = 97) -> list[tuple[datetime, str]]:
    """Ordinary syslog chatter as (time, "program[pid]: text"), deterministic so failures reproduce."""
    lines = []
    for i in range(count):
        moment = start + timedelta(seconds=step * i)
        text = CHATTER[i % len(CHATTER)].format(
            pid=300 + 37 * i % 60000,
            n=2 + 13 * i % 900,
            o=2 + 7 * i % 248,
            port=1024 + 331 * i % 64000,
            queue=f"{0xA1B2C3 + i:010X}",
        )
        lines.append((moment, text))
    return lines


def bsd_lines(hostname: str, entries: list[tuple[datetime, str]]) -> str:
    """RFC 3164 lines as rsyslog writes them: ``Mar  4 10:11:12 host prog[pid]: text``."""
    return "".join(f"{syslog_time(when)} {hostname} {text}\n" for when, text in sorted(entries))
