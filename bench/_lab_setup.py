"""What the bench scripts share: the repository on sys.path, lab hosts, Django on a throwaway database,
OpenSSH command lines for the anchors, and the way figures are printed.

Importing this module puts the repository root on ``sys.path`` (the scripts run as ``bench/<name>.py``,
which puts only ``bench/`` there), so import it before ``tests`` or ``diagnostics``.
Nothing here imports Django at module level: ``django_setup`` sets the environment first, as the
settings module reads it on import.
"""

from __future__ import annotations

import logging
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diagnostics import ssh  # noqa: E402 - needs ROOT on sys.path
from tests.lab import Host, Lab, lab_available, openssh_argv  # noqa: E402, F401 - needs ROOT on sys.path; openssh_argv is the benches' anchor

# A host's resolver is its own loopback, where nothing listens: lookups fail at once and no query
# can leave the lab (hosts have no default route either, but this keeps the resolvers probe fast
# and the same on every machine).
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
LOG_LINES = 2000


def require_lab() -> None:
    """Stop (exit status 1, the reason on stderr) when this machine cannot build a lab: not root, no netns..."""
    available, reason = lab_available()
    if not available:
        raise SystemExit(f"bench: cannot build the SSH lab: {reason}")


def add_host(lab: Lab, name: str, **options) -> Host:
    """A lab host shaped like a small server: its own PID namespace (so `ps` and fd_usage see its
    processes, not this machine's), its own /tmp and /var/log, with a few thousand log lines to tail.
    `options` go to ``Lab.add_host`` (``network=`` for a host behind a bastion, ``also_on=``, ``sshd_options=``)."""
    host = lab.add_host(name, own_pids=True, private_tmp=True, resolv_conf=RESOLV_CONF, **options)
    syslog = "".join(
        f"Nov 21 10:{i // 60 % 60:02d}:{i % 60:02d} {name} app[{1000 + i % 97}]: request {i} served in {i % 250} ms\n"
        for i in range(LOG_LINES)
    )
    kern = "".join(
        f"Nov 21 10:{i // 60 % 60:02d}:{i % 60:02d} {name} kernel: [{i}.000000] eth0: link up, 1000 Mbps\n"
        for i in range(LOG_LINES)
    )
    host.write_file("/var/log/syslog", syslog)
    host.write_file("/var/log/kern.log", kern)
    return host


def pinned_key(host: Host) -> ssh.HostKey:
    key_type, key_b64 = host.host_public_key.split()[:2]
    return ssh.HostKey(key_type, key_b64)


def django_setup(var_dir: Path, *, channels: int | None = None, migrate: bool = True) -> None:
    """Configure the real settings module on a throwaway SQLite database under `var_dir`.

    The environment is forced (not defaulted) so a bench can never write to the desk's own
    database or broker, whatever the shell exports.
    """
    os.environ["DJANGO_SETTINGS_MODULE"] = "triage.settings"
    os.environ["TRIAGE_ENV"] = "development"
    os.environ["TRIAGE_VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    os.environ["CELERY_BROKER_URL"] = "filesystem://"
    if channels is not None:
        os.environ["TRIAGE_SSH_CHANNELS_PER_HOST"] = str(channels)
    import django
    from django.core.management import call_command

    django.setup()
    if migrate:
        call_command("migrate", verbosity=0)


def remote_commands(probe_commands) -> list[str]:
    """Each probe command exactly as the product runs it on the host (C locale, `timeout -k` wrapper)."""
    return [ssh.remote_wrapper(command.command, command.timeout) for command in probe_commands]


def run(
    argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a fixed argv of this machine's own tools (ssh, xargs) and capture its output."""
    return subprocess.run(  # noqa: S603 - argv built here from lab paths and probe commands, no shell
        list(argv),
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
        input=input.encode() if input is not None else None,
    )


def popen(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - argv built here from lab paths and probe commands, no shell
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def check_ok(result: subprocess.CompletedProcess[bytes], what: str) -> None:
    """Stop the bench (an error, not a missed target) when an anchor command itself failed."""
    if result.returncode != 0:
        raise SystemExit(f"bench: {what} exited {result.returncode}: {result.stderr.decode(errors='replace')[-500:]}")


class _KexRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Kex: "):
            self.seen.append(message.removeprefix("Kex: "))


def paramiko_kex(host: Host) -> str:
    """The key exchange paramiko negotiates with `host`, read from its own debug log over one connection."""
    logger = logging.getLogger("paramiko.transport")
    recorder = _KexRecorder()
    saved = logger.level, logger.propagate
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the record is for us, not for the console
    try:
        with ssh.connect(
            address=host.address,
            port=host.port,
            username="root",
            pinned=[pinned_key(host)],
            secret=ssh.Secret(private_key=host.client_key_path.read_text()),
        ):
            pass
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    return recorder.seen[0] if recorder.seen else "unknown"


def openssh_kex(argv: Sequence[str], destination: str) -> str:
    """The key exchange OpenSSH's client negotiates with `destination`, from ``ssh -v``."""
    result = run([*argv, "-v", destination, "true"], timeout=30)
    check_ok(result, "ssh -v host true")
    found = re.search(r"kex: algorithm: (\S+)", result.stderr.decode(errors="replace"))
    return found.group(1) if found else "unknown"


def machine() -> str:
    """CPUs and load: the lab's hosts run on this machine too, and so does anything else running now."""
    one, five, _ = os.getloadavg()
    return f"machine: {os.cpu_count()} CPUs, load average {one:.2f} (1 min), {five:.2f} (5 min)"


def summary(values: Sequence[float]) -> str:
    return f"median {statistics.median(values):.3f} s, max {max(values):.3f} s"


def verdict(met: bool) -> str:
    return "target met" if met else "target missed"
