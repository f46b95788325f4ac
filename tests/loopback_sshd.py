"""A real OpenSSH server on loopback that any user can start: no root, no namespaces.

sshd runs as the user running the tests, on a free high port of 127.0.0.1, with a host key
and an authorized key of its own in a temporary directory. It can only log that same user
in, which is all the collect -> evidence -> diagnosis path needs; the root lab (tests/lab.py)
stays for what needs namespaces: other addresses, firewalls, faults.
"""

from __future__ import annotations

import getpass
import os
import pwd
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
START_BOUND = 10.0  # seconds for sshd to answer with its banner


def _keypair(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True, timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _banner(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        return conn.recv(64)


@dataclass
class LoopbackSshd:
    """What lab_server() needs of a host (name, address, keys), plus the port and login user."""

    name: str
    address: str
    port: int
    user: str
    client_key_path: Path
    host_public_key: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


# Login shells that refuse every session (sshd runs each command through the user's shell).
NO_LOGIN_SHELLS = frozenset({"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"})


def unusable_shell() -> str | None:
    """Why sshd could run no command for the user running the tests, or None."""
    entry = pwd.getpwuid(os.getuid())
    if entry.pw_shell in NO_LOGIN_SHELLS or not os.access(entry.pw_shell or "/bin/sh", os.X_OK):
        return f"{entry.pw_name}'s login shell is {entry.pw_shell!r}: sshd would run no command for it"
    return None


def start(directory: Path, *, name: str = "loopback") -> LoopbackSshd:
    """Start sshd in `directory` and wait for its banner; raises if it dies or stays silent."""
    directory.mkdir(parents=True, exist_ok=True)
    _keypair(directory / "host_key")
    _keypair(directory / "client_key")
    authorized = directory / "authorized_keys"
    authorized.write_text((directory / "client_key.pub").read_text())
    authorized.chmod(0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # root's sshd wants its privilege-separation directory
    for _ in range(3):  # a free port can be taken between the probe and sshd's bind: try another
        port = _free_port()
        config = directory / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\nPidFile none\n"
            f"UsePAM no\nStrictModes no\nAuthorizedKeysFile {authorized}\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel INFO\n"
        )
        log = open(directory / "sshd.log", "ab")  # noqa: SIM115 - sshd writes to it for its whole life
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_BOUND
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if _banner(port).startswith(b"SSH-2.0-"):
                    key_type, key_b64 = (directory / "host_key.pub").read_text().split()[:2]
                    return LoopbackSshd(
                        name=name,
                        address="127.0.0.1",
                        port=port,
                        user=getpass.getuser(),
                        client_key_path=directory / "client_key",
                        host_public_key=f"{key_type} {key_b64}",
                        process=process,
                    )
            except OSError:
                time.sleep(0.05)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
    raise RuntimeError(f"sshd did not start: {(directory / 'sshd.log').read_text()[-2000:]}")
