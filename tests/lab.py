"""A network lab for SSH tests: real hosts in miniature.

Each host is a network namespace on a private Linux bridge, with its own sshd (own config, own host key), its
own UTS name and mount namespace, and on request its own /tmp and /var/log (tmpfs) and its own PID namespace.
Every host has its own empty /root (unless HOST_PYTHON lives there), so the test machine's root dotfiles and
secrets never reach a session: here ~/.bashrc runs `pyenv init`, which bash sources even for `ssh host cmd` and
which forks ~100 processes per command.
The root namespace reaches every host over the bridge; hosts reach each other and the bridge address; hosts
have no default route, so nothing a host does can leave the lab.

    with Lab() as lab:
        web = lab.add_host("web", private_tmp=True, own_pids=True)
        web.write_file("/var/log/messages", "kernel: oops\\n")
        known_hosts = web.write_known_hosts(tmp_path / "known_hosts")
        subprocess.run(web.ssh_argv("cat", "/var/log/messages", known_hosts=known_hosts), check=True)
        web.drop_syn()  # from now on connects to port 22 time out

A private network (``lab.add_private_network()``) is a second bridge whose /24 the root namespace has no address
on and no route to: hosts added with ``network=private`` are reachable only through a host that also sits on it
(``add_host("bastion", also_on=private)``), as customers' hosts behind a bastion are.

Names: every lab has a prefix ``trl`` + owner pid + counter (10 characters, because interface names stop at 15),
and everything it creates carries it: namespaces ``<prefix>-<host>``, bridge ``<prefix>br``, veths
``<prefix>h<n>``, files under /run/trlab/<prefix>, /etc/netns/<prefix>-<host>. Parallel pytest-xdist workers
therefore never collide, and ``cleanup_stale()`` can remove what a crashed run left behind without touching
labs whose owner is still alive.

PYTEST_DONT_REWRITE: test modules import this file before pytest can register it as a plugin (which would
rewrite its asserts and warn that it came too late); it uses no asserts that need rewriting.

Left behind on purpose (harmless, reused by the next run): the system user ``trlab`` for password logins, and
/run/trlab with its lock file and that user's password (shared because concurrent labs would otherwise reset
each other's password).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import itertools
import os
import random
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import pytest

GLOBAL_PREFIX = "trl"
STATE_DIR = Path("/run/trlab")
SUPERNET = ipaddress.ip_network("10.213.0.0/16")
# Private networks of a lab whose main /24 is 10.213.N.0 are 10.214.N.0/24, 10.215.N.0/24, ...: distinct between
# live labs because their main /24s are, and never routed from the root namespace.
PRIVATE_SUPERNETS = [ipaddress.ip_network(f"10.{second}.0.0/16") for second in range(214, 218)]
SSHD = "/usr/sbin/sshd"
PASSWORD_USER = "trlab"
FAKE_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
_BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
# Helpers that run inside hosts (reaper, listeners) need an interpreter the host's private /root does not hide
# (this machine's venv python lives under /root/.pyenv); they use only the standard library.
HOST_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
_HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_lab_counter = itertools.count()


def openssh_argv(
    *, key: Path, known_hosts: Path, connect_timeout: float, port: int = 22, options: Sequence[str] = ()
) -> list[str]:
    """An OpenSSH client command line up to (not including) the destination: pinned host keys, batch
    mode, no user config or agent, the given connect timeout; `options` are extra ``-o``/``-S`` words.
    The lab's own logins (Host.ssh_argv) and the benches' OpenSSH anchors use it."""
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={connect_timeout:g}",
        "-p",
        str(port),
        *options,
    ]


def variant_name(rng: random.Random, stem: str, taken: Collection[str] = ()) -> str:
    """A host name such as `ns-38c` drawn from `rng`, so variants differ in their details, and redrawn while
    it is in `taken` (pass `lab.hosts`): hosts of earlier tests stay in a module's lab, and a name drawn
    twice would be refused."""
    while True:
        name = f"{stem}{rng.choice(['', '-'])}{rng.randrange(1, 99)}{rng.choice('abcdxyz')}"
        if name not in taken:
            return name


# pid 1 of a host's PID namespace: reaps orphans (sessions that daemonised) so they never linger as zombies.
_REAPER = """
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    signal.sigwaitinfo({signal.SIGCHLD})
"""

# Runs inside the host's fresh namespaces, then becomes the reaper; the namespaces live as long as it does.
_ANCHOR = """
set -eu
echo "$TRLAB_HOSTNAME" > /proc/sys/kernel/hostname
if [ -n "$TRLAB_PRIVATE_ROOT" ]; then
    mount -t tmpfs -o mode=0700 trlab-root /root
fi
if [ -n "$TRLAB_TMP_OPTS" ]; then
    mount -t tmpfs -o "$TRLAB_TMP_OPTS" trlab-tmp /tmp
    mount -t tmpfs -o mode=0755,nosuid,nodev trlab-log /var/log
fi
echo ready
exec "$TRLAB_PYTHON" -I -S "$TRLAB_REAPER" "$TRLAB_HOSTNAME" >/dev/null
"""

# Accepts and holds every connection, never reads; in "banner" mode writes one SSH banner first.
_LISTENER = """
import socket, sys
mode, port, banner = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", port))
server.listen(128)
held = []
while True:
    conn, _ = server.accept()
    if mode == "banner":
        conn.sendall(banner)
    held.append(conn)
"""


class LabError(RuntimeError):
    """The lab could not be built or torn down."""


def _run(
    argv: list[str], *, check: bool = True, input: str | None = None, timeout: float = 10
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode:
        raise LabError(f"{shlex.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def _b36(number: int, width: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return digits.rjust(width, "0")


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a process, None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _children(pid: int) -> list[int]:
    # /proc/<pid>/task/<tid>/children is not compiled into every kernel (it is not here); scan instead.
    return [other for other in _all_pids() if (stat := _stat(other)) and stat[0] == pid and stat[1] != "Z"]


def _descendants(pid: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for other in _all_pids():
        if (stat := _stat(other)) and stat[1] != "Z":
            parents.setdefault(stat[0], []).append(other)
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _ns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _pids_in(kind: str, inode: int | None) -> list[int]:
    """Live processes whose `kind` namespace ("net", "pid") has this inode (zombies have no namespaces)."""
    if inode is None:
        return []
    return [pid for pid in _all_pids() if _ns_inode(f"/proc/{pid}/ns/{kind}") == inode]


def _kill(pids: set[int] | list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _kill_netns(namespace: str, *, timeout: float = 5) -> None:
    """SIGKILL everything in a network namespace, including what sessions daemonised, until it is empty."""
    inode = _ns_inode(f"/run/netns/{namespace}")
    deadline = time.monotonic() + timeout
    killed: set[int] = set()
    while (pids := _pids_in("net", inode)) and time.monotonic() < deadline:
        _kill(pids, signal.SIGKILL)
        killed.update(pids)
        time.sleep(0.01)
    # A dying process leaves its namespaces before it is gone; wait until it is really dead (or a zombie).
    while (pids := [pid for pid in killed if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.01)
    if pids:
        raise LabError(f"processes survive in {namespace}: {pids}")


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] not in "ZX"


def _listening(pid: int, address: str, port: int) -> bool:
    """Whether a TCP socket listens on address:port in the network namespace of `pid` (firewall-independent)."""
    wanted = {f"{_hex_ipv4(address)}:{port:04X}", f"00000000:{port:04X}"}
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(fields[1] in wanted and fields[3] == "0A" for fields in (line.split() for line in lines))


def _listening6(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on `port` over IPv6 in the network namespace of `pid`."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp6").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(fields[1].endswith(f":{port:04X}") and fields[3] == "0A" for fields in (line.split() for line in lines))


def _hex_ipv4(address: str) -> str:
    return ipaddress.IPv4Address(address).packed[::-1].hex().upper()


def _wait(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@contextlib.contextmanager
def _global_lock() -> Iterator[None]:
    """Serialises subnet choice, user setup and stale cleanup across processes (xdist workers)."""
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(STATE_DIR / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _owner_alive(lab_dir: Path) -> bool:
    try:
        pid, start = (int(part) for part in (lab_dir / "owner").read_text().split())
    except (OSError, ValueError):
        return False
    stat = _stat(pid)
    return stat is not None and stat[2] == start and _alive(pid)


def _keygen(path: Path, comment: str) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def fingerprint(public_key_line: str) -> str:
    """The ``SHA256:...`` fingerprint OpenSSH prints for an OpenSSH public key line."""
    blob = base64.b64decode(public_key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _password_user() -> str:
    """Create (once) the password-login account and return its password; call under the global lock."""
    stored = STATE_DIR / f"{PASSWORD_USER}.password"
    if _run(["id", "-u", PASSWORD_USER], check=False).returncode:
        _run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--create-home",
                "--home-dir",
                f"/var/lib/{PASSWORD_USER}",
                "--shell",
                "/bin/sh",
                PASSWORD_USER,
            ]
        )
        stored.unlink(missing_ok=True)
    if not stored.exists():
        password = secrets.token_urlsafe(18)
        _run(["chpasswd"], input=f"{PASSWORD_USER}:{password}\n")
        stored.touch(mode=0o600)
        stored.write_text(password)
    return stored.read_text()


def _forward_needs_rule() -> bool:
    """With br_netfilter on, traffic between bridge ports crosses the root FORWARD chain; an empty chain with
    policy ACCEPT lets it through, anything else might not."""
    try:
        if _BRIDGE_NF.read_text().strip() != "1":
            return False
    except OSError:
        return False
    rules = _run(["iptables", "-w", "5", "-S", "FORWARD"], check=False).stdout.split("\n")
    return [rule for rule in rules if rule.strip()] != ["-P FORWARD ACCEPT"]


def _pick_subnet(seed: int) -> ipaddress.IPv4Network:
    """A /24 of SUPERNET that no interface address or route on this machine overlaps; call under the lock."""
    taken: list[ipaddress.IPv4Network] = []
    for line in _run(["ip", "-4", "-o", "addr", "show"]).stdout.splitlines():
        taken.append(ipaddress.ip_interface(line.split()[3]).network)
    for line in _run(["ip", "-4", "route", "show", "table", "all"]).stdout.splitlines():
        with contextlib.suppress(ValueError):
            taken.append(ipaddress.ip_network(line.split()[0]))
    candidates = list(SUPERNET.subnets(new_prefix=24))
    for offset in range(len(candidates)):
        subnet = candidates[(seed + offset) % len(candidates)]
        if not any(subnet.overlaps(other) for other in taken if other.prefixlen > 0):
            return subnet
    raise LabError(f"no free /24 left in {SUPERNET}")


def lab_available() -> tuple[bool, str]:
    """(True, "") if this process can build labs: root, network namespaces, sshd and the tools; else the reason."""
    if os.geteuid() != 0:
        return False, "the SSH lab needs root (network namespaces, bridges, iptables)"
    for tool in ("ip", "unshare", "nsenter", "iptables", "ssh-keygen", "ssh", SSHD):
        if shutil.which(tool) is None:
            return False, f"the SSH lab needs {tool}"
    probe = f"{GLOBAL_PREFIX}probe{os.getpid()}"
    added = _run(["ip", "netns", "add", probe], check=False)
    _run(["ip", "netns", "del", probe], check=False)
    if added.returncode:
        return False, f"ip netns add does not work here: {added.stderr.strip()}"
    return True, ""


def cleanup_stale(prefix: str = GLOBAL_PREFIX) -> list[str]:
    """Remove leftovers of labs whose owning process is gone (crashed runs): processes, namespaces, links,
    iptables rules, /etc/netns entries and lab directories named with `prefix`. Returns what it removed.
    Labs whose owner is alive (other xdist workers, this process) are left alone."""
    with _global_lock():
        return _cleanup_stale_locked(prefix)


def _cleanup_stale_locked(prefix: str) -> list[str]:
    removed: list[str] = []
    live = [d.name for d in STATE_DIR.iterdir() if d.is_dir() and _owner_alive(d)]

    def stale(name: str) -> bool:
        return name.startswith(prefix) and not any(name.startswith(owner) for owner in live)

    stale_dirs = [str(d) for d in STATE_DIR.iterdir() if d.is_dir() and stale(d.name)]
    for pid in _all_pids():
        if any(f"{d}/" in _cmdline(pid) for d in stale_dirs):
            _kill([pid], signal.SIGKILL)
            removed.append(f"process {pid}")
    for line in _run(["ip", "netns", "list"]).stdout.splitlines():
        if line.split() and stale(namespace := line.split()[0]):
            with contextlib.suppress(LabError):
                _kill_netns(namespace)
            _run(["ip", "netns", "del", namespace], check=False)
            removed.append(f"netns {namespace}")
    for line in _run(["ip", "-o", "link", "show"]).stdout.splitlines():
        if stale(link := line.split(":")[1].strip().split("@")[0]):
            _run(["ip", "link", "del", link], check=False)
            removed.append(f"link {link}")
    rules = [
        rule
        for chain in ("FORWARD", "OUTPUT")
        for rule in _run(["iptables", "-w", "5", "-S", chain], check=False).stdout.splitlines()
    ]
    for rule in rules:
        if (found := re.search(r"--comment \"?trlab:(\w+)", rule)) and stale(found.group(1)):
            _run(["iptables", "-w", "5", *shlex.split(rule.replace("-A", "-D", 1))], check=False)
            removed.append(f"iptables {rule}")
    netns_etc = Path("/etc/netns")
    for directory in [*STATE_DIR.iterdir(), *(netns_etc.iterdir() if netns_etc.is_dir() else [])]:
        if directory.is_dir() and stale(directory.name):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(f"dir {directory}")
    return removed


def leftovers(prefix: str) -> list[str]:
    """Namespaces, links and processes still carrying `prefix` (empty after a clean teardown)."""
    found = [
        f"netns {line.split()[0]}"
        for line in _run(["ip", "netns", "list"]).stdout.splitlines()
        if line.startswith(prefix)
    ]
    found += [
        f"link {line.split(':')[1].strip()}"
        for line in _run(["ip", "-o", "link"]).stdout.splitlines()
        if line.split(":")[1].strip().startswith(prefix)
    ]
    found += [
        f"process {pid} {_cmdline(pid)}"
        for pid in _all_pids()
        if pid != os.getpid() and f"{STATE_DIR}/{prefix}" in _cmdline(pid)
    ]
    return found


class Lab:
    """A bridge, a /24 and the hosts on it; a context manager, and everything it created goes on teardown."""

    def __init__(self, name_prefix: str | None = None):
        self.prefix = name_prefix or f"{GLOBAL_PREFIX}{_b36(os.getpid(), 5)}{_b36(next(_lab_counter), 2)}"
        if not re.fullmatch(r"[a-z][a-z0-9]{0,9}", self.prefix):
            raise ValueError(f"lab prefix {self.prefix!r}: 1-10 of [a-z0-9] (interface names stop at 15)")
        self.dir = STATE_DIR / self.prefix
        self.bridge = f"{self.prefix}br"
        self.hosts: dict[str, Host] = {}
        self.private_networks: list[PrivateNetwork] = []
        self._host_counter = itertools.count()
        self._forward_rule: list[str] | None = None
        self._private_rules: list[list[str]] = []
        self._torn_down = False
        with _global_lock():  # so no other process's cleanup_stale sees this lab without its owner file
            _cleanup_stale_locked(GLOBAL_PREFIX)
            self.dir.mkdir(mode=0o700, parents=True)
            stat = _stat(os.getpid())
            assert stat is not None
            (self.dir / "owner").write_text(f"{os.getpid()} {stat[2]}")
        try:
            self._build()
        except BaseException:
            with contextlib.suppress(LabError):
                self.teardown()
            raise

    def _build(self) -> None:
        with _global_lock():
            self.password = _password_user()
            self.subnet = _pick_subnet(os.getpid() + 7 * int(self.prefix[-2:], 36))
            self.bridge_address = str(self.subnet[1])
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
            _run(["ip", "addr", "add", f"{self.bridge_address}/24", "dev", self.bridge])
            _run(["ip", "link", "set", self.bridge, "up"])
            # IPv6 for hosts added with ipv6=True: a ULA /64 named after the /24, so parallel labs differ.
            self.subnet6 = ipaddress.ip_network(f"fd00:213:0:{self.subnet.network_address.packed[2]:x}::/64")
            self.bridge_address6 = str(self.subnet6[1])
            _run(["sysctl", "-q", "-w", f"net.ipv6.conf.{self.bridge}.disable_ipv6=0"], check=False)
            _run(["ip", "-6", "addr", "add", f"{self.bridge_address6}/64", "dev", self.bridge, "nodad"])
            if _forward_needs_rule():
                self._forward_rule = [
                    "FORWARD",
                    "-i",
                    self.bridge,
                    "-o",
                    self.bridge,
                    "-m",
                    "comment",
                    "--comment",
                    f"trlab:{self.prefix}",
                    "-j",
                    "ACCEPT",
                ]
                _run(["iptables", "-w", "5", "-I", *self._forward_rule])
        self.password_user = PASSWORD_USER
        self.client_key_path = self.dir / "client_ed25519"
        _keygen(self.client_key_path, f"trlab-client-{self.prefix}")
        self.client_public_key = self.client_key_path.with_name("client_ed25519.pub").read_text().strip()
        self.client_key_passphrase = secrets.token_urlsafe(12)
        self.client_key_encrypted_path = self.dir / "client_ed25519_encrypted"
        shutil.copy(self.client_key_path, self.client_key_encrypted_path)
        _run(
            [
                "ssh-keygen",
                "-q",
                "-p",
                "-P",
                "",
                "-N",
                self.client_key_passphrase,
                "-f",
                str(self.client_key_encrypted_path),
            ]
        )
        (self.dir / "reaper.py").write_text(_REAPER)
        (self.dir / "listener.py").write_text(_LISTENER)
        # sshd's privilege separation directory; Debian creates it from the service unit, which never ran here.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def add_private_network(self) -> PrivateNetwork:
        """A second bridge and /24 for hosts reachable only through a host on both (see the module docstring).
        The bridge has no address: the root namespace cannot reach the subnet, nor route to it."""
        if self._torn_down:
            raise LabError("this lab has been torn down")
        number = len(self.private_networks)
        if number >= len(PRIVATE_SUPERNETS):
            raise LabError(f"at most {len(PRIVATE_SUPERNETS)} private networks per lab")
        third = self.subnet.network_address.packed[2]
        subnet = ipaddress.ip_network(
            f"{PRIVATE_SUPERNETS[number].network_address.packed[0]}."
            f"{PRIVATE_SUPERNETS[number].network_address.packed[1]}.{third}.0/24"
        )
        network = PrivateNetwork(bridge=f"{self.prefix}p{number}", subnet=subnet)
        with _global_lock():
            for line in _run(["ip", "-4", "route", "show", "table", "all"]).stdout.splitlines():
                with contextlib.suppress(ValueError):
                    if (taken := ipaddress.ip_network(line.split()[0])).prefixlen and taken.overlaps(subnet):
                        raise LabError(f"private network {subnet} overlaps a route of this machine: {line}")
            _run(["ip", "link", "add", network.bridge, "type", "bridge"])
            self.private_networks.append(network)
            _run(["ip", "link", "set", network.bridge, "up"])
            # Without a route here, a direct attempt from this namespace would follow the machine's default
            # route out of the machine: refuse it locally instead (the test's traffic stays in the lab).
            refuse = [
                "OUTPUT",
                "-d",
                str(subnet),
                "-m",
                "comment",
                "--comment",
                f"trlab:{self.prefix}",
                "-j",
                "REJECT",
                "--reject-with",
                "icmp-net-unreachable",
            ]
            _run(["iptables", "-w", "5", "-I", *refuse])
            self._private_rules.append(refuse)
            if _forward_needs_rule():
                rule = [
                    "FORWARD",
                    "-i",
                    network.bridge,
                    "-o",
                    network.bridge,
                    "-m",
                    "comment",
                    "--comment",
                    f"trlab:{self.prefix}",
                    "-j",
                    "ACCEPT",
                ]
                _run(["iptables", "-w", "5", "-I", *rule])
                self._private_rules.append(rule)
        return network

    def add_host(
        self,
        name: str,
        *,
        private_tmp: bool = False,
        tmp_noexec: bool = False,
        own_pids: bool = False,
        sshd_options: dict[str, str] | None = None,
        start_sshd: bool = True,
        resolv_conf: str | None = None,
        port: int = 22,
        ipv6: bool = False,
        user_password_login: bool = True,
        rsa_host_key: bool = False,
        network: PrivateNetwork | None = None,
        also_on: PrivateNetwork | None = None,
    ) -> Host:
        """Add a host at the next free address and (unless start_sshd=False) return once its sshd listens.

        private_tmp: tmpfs on /tmp and /var/log seen only by this host; tmp_noexec: the same, /tmp mounted
        noexec,nosuid,nodev; own_pids: a PID namespace, so the host's process list is its own sshd tree;
        sshd_options: sshd_config keywords overriding the defaults (e.g. {"UseDNS": "yes"});
        resolv_conf: the host's /etc/resolv.conf (via /etc/netns/<namespace>/resolv.conf); without it the host
        sees the machine's resolvers, which it cannot reach (hosts have no route out), so lookups fail fast.
        port: the port sshd listens on; ipv6: the host also gets an IPv6 address (`address6`, on a ULA /64 shared
        with the bridge) and sshd listens there too; user_password_login=False drops the `Match User` block that
        lets the password user in by password (for hosts that should take keyboard-interactive only);
        rsa_host_key: sshd also has an RSA host key (for hosts offering only ssh-rsa); network: put the host on a
        private network instead of the lab's bridge (only hosts on that network reach it); also_on: a second
        interface (eth1, address `address_on[network]`) on a private network, for a bastion (sshd listens on the
        lab side only; it forwards TCP unless sshd_options say AllowTcpForwarding no)."""
        if self._torn_down:
            raise LabError("this lab has been torn down")
        if not _HOST_NAME.fullmatch(name) or name in self.hosts:
            raise ValueError(f"host name {name!r}: [a-z][a-z0-9-]*, unique in the lab")
        index = next(self._host_counter)
        host = Host(
            self,
            name,
            index,
            private_tmp=private_tmp or tmp_noexec,
            tmp_noexec=tmp_noexec,
            own_pids=own_pids,
            sshd_options=sshd_options or {},
            resolv_conf=resolv_conf,
            network=network,
            also_on=also_on,
        )
        host.port, host.user_password_login, host.rsa_host_key = port, user_password_login, rsa_host_key
        if ipv6:
            host.address6 = str(self.subnet6[10 + index])
        self.hosts[name] = host
        try:
            host._create()
            if start_sshd:
                host.start_sshd()
        except BaseException:
            self.remove_host(host)
            raise
        return host

    def remove_host(self, host: Host) -> None:
        """Kill everything in the host and delete its namespace, veth and files."""
        self.hosts.pop(host.name, None)
        host._destroy()

    def teardown(self) -> None:
        """Remove everything this lab created; safe to call twice. Raises LabError if anything survives."""
        if self._torn_down:
            return
        self._torn_down = True
        problems: list[str] = []
        for host in list(self.hosts.values()):
            try:
                self.remove_host(host)
            except (LabError, OSError, subprocess.SubprocessError) as error:  # keep tearing down; report at the end
                problems.append(f"{host.name}: {error}")
        _run(["ip", "link", "del", self.bridge], check=False)
        for network in self.private_networks:
            _run(["ip", "link", "del", network.bridge], check=False)
        if self._forward_rule:
            _run(["iptables", "-w", "5", "-D", *self._forward_rule], check=False)
        for rule in self._private_rules:
            _run(["iptables", "-w", "5", "-D", *rule], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        problems += leftovers(self.prefix)
        if problems:
            raise LabError(f"lab {self.prefix} teardown left: {problems}")

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.teardown()
        except LabError:
            if exc_type is None:
                raise


class PrivateNetwork:
    """A bridge and a /24 of a lab that the root namespace cannot reach (Lab.add_private_network)."""

    def __init__(self, *, bridge: str, subnet: ipaddress.IPv4Network):
        self.bridge, self.subnet = bridge, subnet

    def __repr__(self) -> str:
        return f"<PrivateNetwork {self.bridge} {self.subnet}>"


class Host:
    """One machine of the lab: a network namespace with its own sshd at `address`:22.

    Root logs in with the lab's client key (`client_key_path`, or the passphrase-protected copy
    `client_key_encrypted_path` + `client_key_passphrase`); `user`/`password` log in by password."""

    port = 22

    def __init__(
        self,
        lab: Lab,
        name: str,
        index: int,
        *,
        private_tmp: bool,
        tmp_noexec: bool,
        own_pids: bool,
        sshd_options: dict[str, str],
        resolv_conf: str | None,
        network: PrivateNetwork | None = None,
        also_on: PrivateNetwork | None = None,
    ):
        self.lab, self.name = lab, name
        self.namespace = f"{lab.prefix}-{name}"
        self.network, self.also_on = network, also_on
        self.address = str((network.subnet if network else lab.subnet)[10 + index])
        self.veth = f"{lab.prefix}h{_b36(index, 1)}"
        # The bastion's leg on a private network: its address there (the lab's hosts index every subnet alike).
        self.address_on: dict[str, str] = {also_on.bridge: str(also_on.subnet[10 + index])} if also_on else {}
        self.veth_also = f"{lab.prefix}x{_b36(index, 1)}"
        self.private_tmp, self.tmp_noexec, self.own_pids = private_tmp, tmp_noexec, own_pids
        self.sshd_options, self.resolv_conf = sshd_options, resolv_conf
        self.dir = lab.dir / name
        self.host_key_path = self.dir / "ssh_host_ed25519_key"
        self.rsa_host_key_path = self.dir / "ssh_host_rsa_key"
        self.address6: str | None = None
        self.user_password_login = True
        self.rsa_host_key = False
        self.host_certificate_path: Path | None = None
        self.client_key_path = lab.client_key_path
        self.client_key_encrypted_path = lab.client_key_encrypted_path
        self.client_key_passphrase = lab.client_key_passphrase
        self.user, self.password = lab.password_user, lab.password
        self._anchor: subprocess.Popen[bytes] | None = None
        self._anchor_pid = 0
        self._sshd: subprocess.Popen[bytes] | None = None
        self._sshd_pid = 0
        self._listeners: dict[int, subprocess.Popen[bytes]] = {}

    # -- life cycle -------------------------------------------------------------------------------------------

    def _create(self) -> None:
        (self.dir / "authorized_keys").mkdir(parents=True)
        for account in ("root", self.user):
            (self.dir / "authorized_keys" / account).write_text(self.lab.client_public_key + "\n")
        _keygen(self.host_key_path, f"trlab-host-{self.name}")
        if self.resolv_conf is not None:
            etc = Path("/etc/netns") / self.namespace
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(self.resolv_conf)
        _run(["ip", "netns", "add", self.namespace])
        _run(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.namespace])
        _run(["ip", "link", "set", self.veth, "master", self.network.bridge if self.network else self.lab.bridge, "up"])
        _run(["ip", "-n", self.namespace, "addr", "add", f"{self.address}/24", "dev", "eth0"])
        _run(["ip", "-n", self.namespace, "link", "set", "eth0", "up"])
        if self.also_on:
            _run(["ip", "link", "add", self.veth_also, "type", "veth", "peer", "name", "eth1", "netns", self.namespace])
            _run(["ip", "link", "set", self.veth_also, "master", self.also_on.bridge, "up"])
            _run(
                ["ip", "-n", self.namespace, "addr", "add", f"{self.address_on[self.also_on.bridge]}/24", "dev", "eth1"]
            )
            _run(["ip", "-n", self.namespace, "link", "set", "eth1", "up"])
        _run(["ip", "-n", self.namespace, "link", "set", "lo", "up"])
        if self.address6:
            _run(["ip", "netns", "exec", self.namespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=0"])
            _run(["ip", "-n", self.namespace, "-6", "addr", "add", f"{self.address6}/64", "dev", "eth0", "nodad"])
        if self.rsa_host_key:
            self.rsa_host_key_path.unlink(missing_ok=True)
            _run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "rsa",
                    "-b",
                    "2048",
                    "-N",
                    "",
                    "-C",
                    f"trlab-host-{self.name}",
                    "-f",
                    str(self.rsa_host_key_path),
                ]
            )
        self._start_anchor()

    def _start_anchor(self) -> None:
        tmp_opts = ""
        if self.private_tmp:
            tmp_opts = "mode=1777,noexec,nosuid,nodev" if self.tmp_noexec else "mode=1777"
        unshare = ["unshare", "--mount", "--uts", "--propagation", "private"]
        if self.own_pids:
            unshare += ["--pid", "--fork", "--mount-proc"]
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "TRLAB_HOSTNAME": self.name,
            "TRLAB_TMP_OPTS": tmp_opts,
            "TRLAB_PRIVATE_ROOT": "" if os.path.realpath(HOST_PYTHON).startswith("/root/") else "1",
            "TRLAB_PYTHON": HOST_PYTHON,
            "TRLAB_REAPER": str(self.lab.dir / "reaper.py"),
        }
        with open(self.dir / "anchor.log", "ab") as log:
            self._anchor = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *unshare, "/bin/sh", "-c", _ANCHOR],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd="/",
                start_new_session=True,
            )
        assert self._anchor.stdout is not None
        ready, _, _ = select.select([self._anchor.stdout], [], [], 10)
        line = self._anchor.stdout.readline() if ready else b""
        self._anchor.stdout.close()
        if line != b"ready\n":
            raise LabError(f"host {self.name} did not start: {(self.dir / 'anchor.log').read_text()[-2000:]}")
        if self.own_pids:  # unshare --fork: the namespaces belong to its child, pid 1 inside
            _wait(lambda: _children(self._anchor.pid), timeout=5, what=f"{self.name}'s pid 1")
            self._anchor_pid = _children(self._anchor.pid)[0]
        else:
            self._anchor_pid = self._anchor.pid

    def _enter(self) -> list[str]:
        """argv prefix that runs a program in this host's namespaces (the ones its sshd and sessions see)."""
        argv = ["nsenter", f"--target={self._anchor_pid}", "--net", "--mount", "--uts", "--wd=/"]
        return [*argv, "--pid", "--"] if self.own_pids else [*argv, "--"]

    def _destroy(self) -> None:
        wrappers = [process for process in (self._anchor, self._sshd, *self._listeners.values()) if process]
        if self.own_pids and self._anchor_pid:
            # Killing pid 1 kills the whole PID namespace. The nsenter/unshare wrappers outside it are left to
            # reap their children: orphaned there, they would wait for this machine's init to reap them, and the
            # namespace's pid 1 (and so the teardown) with them, for seconds.
            _kill([self._anchor_pid], signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                for process in wrappers:
                    process.wait(timeout=2)
        _kill_netns(self.namespace)
        for process in wrappers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
        self._anchor = self._sshd = None
        self._listeners.clear()
        _run(["ip", "netns", "del", self.namespace], check=False)
        _run(["ip", "link", "del", self.veth], check=False)  # normally gone with the namespace
        if self.also_on:
            _run(["ip", "link", "del", self.veth_also], check=False)
        shutil.rmtree(Path("/etc/netns") / self.namespace, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- sshd -------------------------------------------------------------------------------------------------

    def _sshd_config(self) -> str:
        options = {
            "ListenAddress": self.address,
            "Port": str(self.port),
            "HostKey": str(self.host_key_path),
            "PidFile": str(self.dir / "sshd.pid"),
            "PermitRootLogin": "prohibit-password",
            "AuthorizedKeysFile": f"{self.dir}/authorized_keys/%u",
            "StrictModes": "no",
            "UsePAM": "no",
            "UseDNS": "no",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "LoginGraceTime": "30",
            "MaxStartups": "100",
            "MaxSessions": "50",
            "Subsystem": "sftp internal-sftp",
            "LogLevel": "VERBOSE",
            "PrintMotd": "no",
            "PrintLastLog": "no",
        }
        overrides = {key.lower(): (key, value) for key, value in self.sshd_options.items()}
        lines = [f"{key} {overrides.pop(key.lower(), (key, value))[1]}" for key, value in options.items()]
        lines += [f"{key} {value}" for key, value in overrides.values()]
        if self.address6:
            lines.append(f"ListenAddress {self.address6}")
        if self.rsa_host_key:
            lines.append(f"HostKey {self.rsa_host_key_path}")
        if self.host_certificate_path:
            lines.append(f"HostCertificate {self.host_certificate_path}")
        # Match blocks run to the end of the file, so this one comes last.
        if self.user_password_login:
            lines += [f"Match User {self.user}", "    PasswordAuthentication yes"]
        return "\n".join(lines) + "\n"

    @property
    def sshd_running(self) -> bool:
        return self._sshd is not None and self._sshd.poll() is None

    def start_sshd(self) -> None:
        """Start sshd and return once it listens (checked in the namespace's socket table, so a firewall
        rule from drop_syn does not matter)."""
        if self.sshd_running:
            return
        config = self.dir / "sshd_config"
        config.write_text(self._sshd_config())
        with open(self.dir / "sshd.log", "ab") as log:
            self._sshd = subprocess.Popen(
                [*self._enter(), SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait(
                lambda: (
                    (
                        _listening(self._anchor_pid, self.address, self.port)
                        and (not self.address6 or _listening6(self._anchor_pid, self.port))
                    )
                    or self._sshd.poll() is not None
                ),
                timeout=10,
                what=f"sshd on {self.name}",
            )
            if self._sshd.poll() is not None:
                raise LabError(f"sshd on {self.name} exited {self._sshd.returncode}: {self.sshd_log()[-2000:]}")
            if self.own_pids:  # nsenter --pid forks; sshd is its child
                _wait(lambda: _children(self._sshd.pid), timeout=5, what=f"sshd pid on {self.name}")
                self._sshd_pid = _children(self._sshd.pid)[0]
            else:
                self._sshd_pid = self._sshd.pid
        except BaseException:
            self.kill_sshd()
            raise

    def stop_sshd(self) -> None:
        """SIGTERM the listening sshd, as a service restart would; established sessions carry on."""
        if self._sshd is None:
            return
        if self._sshd.poll() is None:
            _kill([self._sshd_pid or self._sshd.pid], signal.SIGTERM)
            try:
                self._sshd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill_sshd()
        self._sshd = None
        self._sshd_pid = 0

    def kill_sshd(self) -> None:
        """SIGKILL sshd and every session under it: clients see their connections drop mid-command."""
        if self._sshd is None:
            return
        root = self._sshd_pid or self._sshd.pid
        # Freeze the tree first: a killed parent's children are reparented and could no longer be found.
        frozen = {root}
        _kill(frozen, signal.SIGSTOP)
        while new := _descendants(root) - frozen:
            _kill(new, signal.SIGSTOP)
            frozen |= new
        _kill(frozen, signal.SIGKILL)
        self._sshd.kill()
        self._sshd.wait(timeout=5)
        self._sshd = None
        self._sshd_pid = 0

    def rotate_host_key(self) -> None:
        """Give the host a new host key (restarting sshd if it runs): a pinned key no longer matches, and a
        certificate for the old key is no longer served (sign the new one with sign_host_key)."""
        was_running = self.sshd_running
        self.stop_sshd()
        _keygen(self.host_key_path, f"trlab-host-{self.name}")
        if self.host_certificate_path:
            self.host_certificate_path.unlink(missing_ok=True)
            self.host_certificate_path = None
        if was_running:
            self.start_sshd()

    def sign_host_key(
        self, ca_key: Path, principals: list[str], *, validity: str = "-5m:+1h", identity: str = "trlab-host"
    ) -> Path:
        """Sign the current host key with the CA private key `ca_key` (ssh-keygen -s -h) and serve the
        certificate (restarting sshd if it runs); returns the certificate's path. An empty `principals` list
        makes a certificate valid for any host name (ssh-keygen's default)."""
        argv = ["ssh-keygen", "-q", "-s", str(ca_key), "-h", "-I", identity, "-V", validity]
        if principals:
            argv += ["-n", ",".join(principals)]
        _run([*argv, str(self.host_key_path.with_name(self.host_key_path.name + ".pub"))])
        self.host_certificate_path = self.host_key_path.with_name(self.host_key_path.name + "-cert.pub")
        if self.sshd_running:
            self.stop_sshd()
            self.start_sshd()
        return self.host_certificate_path

    def drop_host_certificate(self) -> None:
        """Serve the plain host key only from the next sshd start on."""
        self.host_certificate_path = None

    def set_authorized_keys(self, account: str, text: str) -> None:
        """Replace the public keys sshd accepts for `account` ("root" or the password user) on this host."""
        (self.dir / "authorized_keys" / account).write_text(text)

    def write_root_rc(self, text: str) -> None:
        """Write root's ~/.bashrc and ~/.profile on this host (a private /root, so the machine's are untouched)."""
        if os.path.realpath(HOST_PYTHON).startswith("/root/"):
            raise LabError("hosts share this machine's /root here (HOST_PYTHON lives there): refusing to write it")
        for name in (".bashrc", ".profile"):
            self.write_file(f"/root/{name}", text)

    def sshd_log(self) -> str:
        """Everything sshd logged (-e, LogLevel VERBOSE) since the host was added."""
        path = self.dir / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def host_public_key(self) -> str:
        """The current host key as an OpenSSH line: ``ssh-ed25519 AAAA... comment``."""
        return self.host_key_path.with_name(self.host_key_path.name + ".pub").read_text().strip()

    @property
    def host_key_fingerprint(self) -> str:
        return fingerprint(self.host_public_key)

    @property
    def known_hosts_line(self) -> str:
        key_type, key = self.host_public_key.split()[:2]
        return f"{self.address} {key_type} {key}"

    def write_known_hosts(self, path: Path) -> Path:
        """Write a known_hosts file pinning the current host key; returns `path`."""
        path.write_text(self.known_hosts_line + "\n")
        return path

    def ssh_argv(self, *command: str, known_hosts: Path, user: str = "root", key: Path | None = None) -> list[str]:
        """An OpenSSH client command line for this host: pinned key, batch mode, no user config or agent."""
        argv = openssh_argv(key=key or self.client_key_path, known_hosts=known_hosts, connect_timeout=5, port=self.port)
        return [*argv, f"{user}@{self.address}", *command]

    # -- inside the host --------------------------------------------------------------------------------------

    def run(
        self, *argv: str, timeout: float = 10, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the host's namespaces (network, mount, UTS and PID as its sshd sees them)."""
        process = subprocess.Popen(
            [*self._enter(), *argv],
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            # nsenter --pid forks; the command is in its process group, not necessarily its only child.
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            raise subprocess.TimeoutExpired(list(argv), timeout, out, err) from None
        result = subprocess.CompletedProcess(list(argv), process.returncode, out, err)
        if check and result.returncode:
            error = subprocess.CalledProcessError(result.returncode, list(argv), out, err)
            error.add_note(f"on {self.name}: {err.strip()}")
            raise error
        return result

    def _path(self, path: str) -> Path:
        # /proc/<pid>/root resolves paths in that process's mount namespace: the host's own /tmp, /var/log.
        return Path(f"/proc/{self._anchor_pid}/root") / path.lstrip("/")

    def contain(self, kernel_log: str = "") -> None:
        """Give the host, as LXCFS gives a container, its own load average, vm counters and kernel ring
        buffer (`dmesg` reads `kernel_log`). Without them a collection reads this machine's, which are
        global across namespaces: a healthy host was once found overloaded because the tests were busy.
        Every host has a mount namespace of its own, so the bind mounts stay inside it."""
        (self.dir / "kmsg").write_text(kernel_log)
        (self.dir / "loadavg").write_text("0.08 0.05 0.01 1/61 187\n")
        # A freshly booted host: every counter vmstat(8) and the memory probe read, at zero.
        keys = [line.split()[0] for line in Path("/proc/vmstat").read_text().splitlines() if line.strip()]
        (self.dir / "vmstat").write_text("".join(f"{key} 0\n" for key in keys))
        dmesg = self.dir / "dmesg"
        dmesg.write_text(f"#!/bin/sh\nexec cat {self.dir / 'kmsg'}\n")
        dmesg.chmod(0o755)
        self.run("mount", "--bind", str(dmesg), os.path.realpath(shutil.which("dmesg") or "/usr/bin/dmesg"))
        self.run("mount", "--bind", str(self.dir / "loadavg"), "/proc/loadavg")
        self.run("mount", "--bind", str(self.dir / "vmstat"), "/proc/vmstat")

    def write_file(self, path: str, text: str, *, mode: int = 0o644) -> None:
        """Write a file as the host sees it (into its private /tmp or /var/log when it has them)."""
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def read_file(self, path: str) -> str:
        return self._path(path).read_text()

    def set_sudoers(self, text: str) -> None:
        """Give the host its own /etc/sudoers (checked by visudo first): a file bind-mounted over /etc/sudoers in
        the host's private mount namespace, so the machine's sudo rules never apply in the host and these never
        apply outside it. Later calls rewrite the same file in place (the mount follows its inode)."""
        path = self.dir / "sudoers"
        fresh = not path.exists()
        path.write_text(text)
        path.chmod(0o440)
        self.run("visudo", "-c", "-q", "-f", str(path))
        if fresh:
            self.run("mount", "--bind", str(path), "/etc/sudoers")

    def processes(self, pattern: str) -> list[str]:
        """``"<pid> <command line>"`` of the host's live processes whose command line matches regex `pattern`:
        with own_pids those of its PID namespace, otherwise those in its network namespace."""
        regex = re.compile(pattern)
        pids = _pids_in("net", _ns_inode(f"/run/netns/{self.namespace}"))
        if self.own_pids:
            inner = _ns_inode(f"/proc/{self._anchor_pid}/ns/pid")
            pids = [pid for pid in pids if _ns_inode(f"/proc/{pid}/ns/pid") == inner]
        return [f"{pid} {command}" for pid in pids if (command := _cmdline(pid)) and regex.search(command)]

    # -- faults -----------------------------------------------------------------------------------------------

    def _iptables(self, *rule: str) -> None:
        self.run("iptables", "-w", "5", *rule)

    def drop_syn(self, port: int = 22) -> None:
        """Silently drop incoming TCP SYNs to `port`: new connections time out, established ones carry on."""
        self._iptables("-A", "INPUT", "-p", "tcp", "--dport", str(port), "--syn", "-j", "DROP")

    def drop_dns(self) -> None:
        """Silently drop DNS queries to this host (UDP and TCP 53): resolvers pointed here hang until timeout."""
        self._iptables("-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP")
        self._iptables("-A", "INPUT", "-p", "tcp", "--dport", "53", "-j", "DROP")

    def restore_network(self) -> None:
        """Remove every rule drop_syn/drop_dns added."""
        self._iptables("-F", "INPUT")

    def _serve(self, mode: str, port: int) -> None:
        if port in self._listeners:
            raise LabError(f"{self.name} already serves port {port}")
        self._listeners[port] = subprocess.Popen(
            [
                *self._enter(),
                HOST_PYTHON,
                "-I",
                "-S",
                str(self.lab.dir / "listener.py"),
                mode,
                str(port),
                FAKE_BANNER.hex(),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait(lambda: _listening(self._anchor_pid, self.address, port), timeout=5, what=f"listener on :{port}")

    def serve_silence(self, port: int) -> None:
        """Listen on `port`: accept every connection, never send a byte, never read."""
        self._serve("silence", port)

    def serve_banner_then_silence(self, port: int) -> None:
        """Listen on `port`: accept, send an OpenSSH banner line, then never another byte, never read."""
        self._serve("banner", port)

    def stop_serving(self, port: int) -> None:
        """Stop a serve_* listener; the connections it held are closed."""
        if (process := self._listeners.pop(port, None)) is not None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.address} ns={self.namespace}>"


# -- pytest fixtures: import them into a test module (``from tests.lab import lab, lab_host``) or register the
# module as a plugin (``pytest_plugins = ["tests.lab"]`` in the top-level conftest.py).

_fixture_hosts = itertools.count()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A Lab shared by the tests of one module; skips (which fails CI) when the machine cannot build one."""
    available, reason = lab_available()
    if not available:
        pytest.skip(reason)
    with Lab() as the_lab:
        yield the_lab


@pytest.fixture
def lab_host(lab: Lab) -> Iterator[Host]:
    """A fresh default host on the module's lab (root by key, password user), removed after the test."""
    host = lab.add_host(f"t{next(_fixture_hosts)}")
    yield host
    lab.remove_host(host)
