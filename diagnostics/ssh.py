"""The one module that speaks SSH (paramiko). Everything else uses its plain results.

Every step is bounded: the TCP connect, the wait for the server's banner, key
exchange, authentication, each command (locally, and on the host through
`timeout -k`), and how much output is kept. Host keys are checked against the
keys pinned for the server before anything is sent; there is no "accept new
keys" policy here at all.

The banner is awaited on the raw socket before paramiko sees it: that yields a
precise "no SSH banner within N s" and a banner time, which is itself evidence
(a login that takes 20 seconds is a symptom).

A server behind jump hosts (bastions) is reached hop by hop, all in this process: the
first hop over TCP, each next one through a `direct-tcpip` channel of the hop before
(what OpenSSH's ProxyJump does, without an OpenSSH subprocess). Every hop gets the
same bounded banner wait, key exchange, pinned host key check and authentication, with
its own bounds and credential, and an error at a hop names it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import secrets
import select
import shlex
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from paramiko.pkey import UnknownKeyType  # paramiko re-exports it, but its stubs only declare it here

from diagnostics import ssh_algorithms, ssh_certs, ssh_lanes

# Polling interval of the command loops: small against probe durations, large
# enough that ten idle channels cost nothing.
_POLL = 0.02
# How long output may trail the exit status before the command counts as finished anyway.
_EOF_WAIT = 5.0


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    banner: float = 10.0
    handshake: float = 15.0
    auth: float = 30.0
    keepalive: int = 5
    channel_open: float = 10.0
    grace: float = 5.0  # local allowance beyond a command's own timeout before we give up on it
    # How long the login shell may spend in its start-up files (~/.bashrc is sourced even for
    # `ssh host cmd`) before the command itself starts; its own timeout counts from then.
    shell_start: float = 20.0


@dataclass(frozen=True)
class HostKey:
    key_type: str
    key_base64: str

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.key_base64)


@dataclass(frozen=True)
class Secret:
    """A decrypted credential; lives only in memory for the length of a connection."""

    private_key: str | None = None
    passphrase: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never leak a secret into a log or a traceback
        return "Secret(<hidden>)"


class SshError(Exception):
    """A connection-level failure with a reason a tech can act on.

    `kind` is one of: unreachable, no_banner, handshake, algorithms (no algorithm in
    common, e.g. a legacy-only server), host_key_unknown, host_key_changed, auth_failed,
    bad_credential, dropped.
    """

    TRANSIENT = frozenset({"unreachable", "no_banner", "handshake", "dropped"})

    def __init__(self, kind: str, message: str, *, host_key: HostKey | None = None, hop: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.host_key = host_key
        # The jump host the failure happened at (its display name), None for the server itself. A host key
        # in the error is then the jump host's, not the server's.
        self.hop = hop
        # Connections tried before giving up (connect_retrying sets it): the audit of a failed connect says
        # whether a fault was retried, as Timings.attempts does for a connect that succeeded.
        self.attempts = 1

    @property
    def transient(self) -> bool:
        return self.kind in self.TRANSIENT


@dataclass
class Timings:
    connect: float | None = None
    banner: float | None = None
    handshake: float | None = None
    auth: float | None = None
    attempts: int = 1  # connections tried (connect_retrying); the phases above are of the last one
    # Through jump hosts: seconds until the last jump host was logged in to. The phases above are then the
    # server's own, counted from the moment its channel through that jump host was asked for.
    via: float | None = None


@dataclass(frozen=True)
class Hop:
    """One jump host on the way to a server: where it is, who logs in there, how, and its pinned keys."""

    name: str  # shown in errors: "jump host <name>: ..."
    address: str
    port: int
    username: str
    secret: Secret
    pinned: tuple[HostKey, ...]
    timeouts: Timeouts = field(default_factory=Timeouts)


@dataclass(frozen=True)
class CommandSpec:
    key: str  # the caller's handle for this command (e.g. a step number)
    command: str
    timeout: int
    output_cap: int = 1 << 20
    stderr_cap: int = 64 << 10
    read_limit: int = 256 << 20  # stop reading a flood past this many bytes
    # Sent on the command's stdin, then EOF (a sudo password: never on a command line). Not in repr.
    stdin: bytes | None = field(default=None, repr=False)
    # Seconds the command waits by design (a capture window): lanes give it a channel of its own.
    waits: float = 0.0


@dataclass
class CommandResult:
    key: str
    command: str  # what was executed on the host, wrapper included (the session's start marker left out)
    exit_status: int | None
    stdout: bytes
    stderr: bytes
    duration: float
    truncated: bool
    timed_out: bool
    stdout_bytes: int
    stderr_bytes: int
    error: str = ""  # why there is no exit status, if there is none


def fingerprint_of(key_base64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_known_hosts(text: str) -> list[tuple[str, HostKey]]:
    """(host pattern, key) pairs from known_hosts text; hashed names are kept as they are."""
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if parts[0].startswith("@"):  # @cert-authority / @revoked markers are not host keys
            continue
        if len(parts) < 3:
            continue
        hosts, key_type, key_b64 = parts[0], parts[1], parts[2]
        try:
            paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64, validate=True))
        except (ValueError, paramiko.SSHException, UnknownKeyType):  # unreadable line: skip it
            continue
        keys.append((hosts, HostKey(key_type, key_b64)))
    return keys


def load_private_key(text: str, passphrase: str | None = None) -> paramiko.PKey:
    """A paramiko key from OpenSSH or PEM text; raises SshError('bad_credential')."""
    data = text.encode()
    password = passphrase.encode() if passphrase else None
    openssh_format = b"BEGIN OPENSSH PRIVATE KEY" in data
    loaded: PrivateKeyTypes
    cls: type[paramiko.PKey]
    try:
        if openssh_format:
            loaded = serialization.load_ssh_private_key(data, password=password)
        else:
            loaded = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        # A wrong passphrase shows up as a "broken checksum" in the OpenSSH format.
        words = str(exc).lower()
        bad_passphrase = "password" in words or "checksum" in words or "decrypt" in words
        reason = "wrong or missing passphrase" if bad_passphrase else "not a private key"
        raise SshError("bad_credential", f"the stored private key cannot be used: {reason}") from None
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        cls = paramiko.Ed25519Key
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        cls = paramiko.ECDSAKey
    elif isinstance(loaded, rsa.RSAPrivateKey):
        cls = paramiko.RSAKey
    else:
        raise SshError("bad_credential", "the stored private key is of an unsupported type")
    return cls.from_private_key(io.StringIO(text), password=passphrase)


def public_key_of(text: str, passphrase: str | None = None) -> HostKey:
    key = load_private_key(text, passphrase)
    return HostKey(key.get_name(), key.get_base64())


class HeadTail:
    """Keeps the first and last `cap // 2` bytes of a stream and counts the rest."""

    def __init__(self, cap: int):
        self.half = max(cap // 2, 1)
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail.append(data)
        self.tail_size += len(data)
        while self.tail_size - len(self.tail[0]) >= self.half:
            self.tail_size -= len(self.tail.popleft())

    @property
    def kept(self) -> int:
        return len(self.head) + min(self.tail_size, self.half)

    @property
    def truncated(self) -> bool:
        return self.total > self.kept

    def value(self) -> bytes:
        tail = b"".join(self.tail)[-self.half :] if self.tail else b""
        if self.truncated:
            marker = f"\n[... {self.total - self.kept} bytes not kept ...]\n".encode()
            return bytes(self.head) + marker + tail
        return bytes(self.head) + tail


def remote_wrapper(command: str, timeout: int) -> str:
    """The command as run on the host: C locale, killed there at its timeout.

    `timeout` signals its whole process group, so pipelines and children die too;
    -k follows up with SIGKILL for anything that ignores SIGTERM.
    """
    return f"LC_ALL=C timeout -k 3 {int(timeout)} sh -c {shlex.quote(command)}"


class AfterMarker:
    """Passes a stream on to `sink` from just after `marker`, dropping what came before it.

    sshd runs every command through the user's login shell, and bash sources ~/.bashrc even
    then: whatever an rc file prints (a banner, `fortune`, a pyenv warning) would otherwise
    land in front of the probe's output and confuse its parser. If the marker never comes
    (a shell that is not sh-like), what was held back is passed on at `finish`: nothing is lost.
    """

    def __init__(self, sink: ssh_lanes.Sink, marker: bytes, hold: int = 64 << 10):
        self.sink, self.marker, self.hold = sink, marker, hold
        self.found = False
        self.noise = 0  # bytes dropped in front of the marker
        self._pending = bytearray()

    def feed(self, data: bytes) -> None:
        if self.found:
            self.sink.feed(data)
            return
        self._pending += data
        at = self._pending.find(self.marker)
        if at >= 0:
            self.found = True
            self.noise += at
            rest = bytes(self._pending[at + len(self.marker) :])
            self._pending.clear()
            if rest:
                self.sink.feed(rest)
        elif len(self._pending) > self.hold:  # keep only enough to find the marker in
            drop = len(self._pending) - self.hold
            self.noise += drop
            del self._pending[:drop]

    def finish(self) -> None:
        if not self.found and self._pending:
            self.sink.feed(bytes(self._pending))
            self._pending.clear()


def marked(wrapped: str, token: str) -> str:
    """`wrapped`, preceded by a start marker on stdout and stderr (see AfterMarker)."""
    mark = shlex.quote(f"rundesk-start-{token}")
    return f"printf '\\n%s\\n' {mark}; printf '\\n%s\\n' {mark} >&2; {wrapped}"


class Session:
    """An authenticated SSH connection that runs commands: one per channel (`run`, `run_many`), or
    several one after another over one channel (`run_lane`, `run_lanes`: what a collection uses)."""

    def __init__(
        self,
        transport: paramiko.Transport,
        timings: Timings,
        timeouts: Timeouts,
        host_key: HostKey,
        *,
        hops: Sequence[paramiko.Transport] = (),
    ):
        self._transport = transport
        self._hops = list(hops)  # the jump hosts' transports, first hop first
        self.timings = timings
        self.timeouts = timeouts
        self.host_key = host_key

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        # The server first, then the jump hosts from the nearest one back: each rides on the one before.
        for transport in [self._transport, *reversed(self._hops)]:
            transport.close()

    @property
    def alive(self) -> bool:
        return self._transport.is_active()

    def run(self, spec: CommandSpec) -> CommandResult:
        started = time.monotonic()
        wrapped = remote_wrapper(spec.command, spec.timeout)
        out, err = HeadTail(spec.output_cap), HeadTail(spec.stderr_cap)
        token = secrets.token_hex(8)
        marker = f"rundesk-start-{token}\n".encode()
        out_after, err_after = AfterMarker(out, marker), AfterMarker(err, marker)

        def result(exit_status, *, timed_out=False, error="", stopped=False):
            out_after.finish()
            err_after.finish()
            return _captured(
                spec.key,
                wrapped,
                exit_status,
                out,
                err,
                since=started,
                timed_out=timed_out,
                error=error,
                stopped=stopped,
            )

        try:
            channel = self._transport.open_session(timeout=self.timeouts.channel_open)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return result(None, error=f"could not open a channel: {exc or type(exc).__name__}")
        # Until the marker shows the command has started, the login shell's start-up files get
        # their own bound; from then on the command has its timeout plus grace.
        shell_deadline = started + self.timeouts.shell_start
        deadline = shell_deadline + spec.timeout + self.timeouts.grace
        eof_deadline = None
        try:
            channel.exec_command(marked(wrapped, token))
            if spec.stdin is not None:
                channel.sendall(spec.stdin)
                channel.shutdown_write()
            while True:
                progressed = _drain(channel, out_after, err_after)
                if out_after.found and shell_deadline:
                    deadline = time.monotonic() + spec.timeout + self.timeouts.grace
                    shell_deadline = 0.0
                elif shell_deadline and time.monotonic() > shell_deadline and not channel.exit_status_ready():
                    return result(
                        None,
                        timed_out=True,
                        error=f"the login shell did not start the command within {self.timeouts.shell_start:g} s "
                        "(slow shell start-up files on the host?)",
                    )
                if out.total + err.total > spec.read_limit:
                    return result(
                        None, error=f"output flood: stopped reading after {spec.read_limit} bytes", stopped=True
                    )
                # Done only with both the exit status and the end of the output: sshd sends EOF
                # when the command closes its output, which can come before or after the exit
                # status. (A closed channel counts as both.)
                has_status = channel.exit_status_ready()
                has_eof = channel.eof_received or channel.closed
                if has_status and not has_eof:
                    eof_deadline = eof_deadline or time.monotonic() + _EOF_WAIT
                    has_eof = time.monotonic() > eof_deadline
                if has_status and has_eof:
                    _drain(channel, out_after, err_after)
                    status = channel.recv_exit_status() if channel.exit_status_ready() else -1
                    if status == -1:  # closed without an exit-status message: the session died
                        return result(None, error="connection dropped before the command finished")
                    # 124: `timeout` fired; 137: it had to SIGKILL (-k).
                    return result(status, timed_out=status in (124, 137))
                if not self._transport.is_active():
                    return result(None, error="connection dropped before the command finished")
                if time.monotonic() > deadline:
                    return result(
                        None,
                        timed_out=True,
                        error=f"no exit status {spec.timeout + self.timeouts.grace:.0f} s after start",
                    )
                if not progressed:
                    # Plain sleep, not select() on the channel: paramiko's pipe for select races
                    # with close() and can kill the transport thread (paramiko#692).
                    time.sleep(_POLL)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return result(None, error=f"connection error: {exc or type(exc).__name__}")
        finally:
            with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
                channel.close()

    def run_many(
        self,
        specs: Sequence[CommandSpec],
        *,
        concurrency: int = 4,
        on_result: Callable[[CommandResult], None] | None = None,
    ) -> list[CommandResult]:
        """Run commands concurrently (at most `concurrency` channels at once).

        `on_result` is called as each command finishes (from a worker thread,
        serialised by a lock), so callers can store evidence as it arrives.
        """
        lock = threading.Lock()
        results: dict[str, CommandResult] = {}

        def one(spec: CommandSpec) -> None:
            res = self.run(spec)
            with lock:
                results[spec.key] = res
                if on_result is not None:
                    on_result(res)

        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(specs) or 1))) as pool:
            for future in [pool.submit(one, spec) for spec in specs]:
                future.result()
        return [results[spec.key] for spec in specs]

    def run_lanes(
        self,
        lanes: Sequence[Sequence[CommandSpec]],
        *,
        on_result: Callable[[CommandResult], None] | None = None,
    ) -> list[CommandResult]:
        """Run each lane (see ``run_lane``) on a channel of its own, all lanes at once.

        `on_result` is called as each command finishes (from a lane's thread, serialised by a
        lock); the results come back in the order of the lanes' specs.
        """
        lock = threading.Lock()

        def deliver(result: CommandResult) -> None:
            with lock:
                if on_result is not None:
                    on_result(result)

        lanes = [lane for lane in lanes if lane]
        if not lanes:
            return []
        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            futures = [pool.submit(self.run_lane, lane, on_result=deliver) for lane in lanes]
            return [result for future in futures for result in future.result()]

    def run_lane(
        self, specs: Sequence[CommandSpec], *, on_result: Callable[[CommandResult], None] | None = None
    ) -> list[CommandResult]:
        """Run commands one after another over ONE channel, as a framed script (``diagnostics.ssh_lanes``).

        Each command keeps its own bounds: `timeout -k` on the host, its own output caps, its own
        read limit (a flood past it ends the lane: the commands after it get an error saying so),
        and locally its timeout plus grace from the moment the one before it ended (the first:
        from the login shell's start, bounded by `shell_start`). A result goes to `on_result` as
        soon as its section has ended on both streams.
        """
        started = time.monotonic()
        token = secrets.token_hex(16)
        keys = [spec.key for spec in specs]
        wrapped = [remote_wrapper(spec.command, spec.timeout) for spec in specs]
        outs = [HeadTail(spec.output_cap) for spec in specs]
        errs = [HeadTail(spec.stderr_cap) for spec in specs]
        out = ssh_lanes.FrameReader(token, keys, outs)
        err = ssh_lanes.FrameReader(token, keys, errs)
        marker = ssh_lanes.start_marker(token)
        out_after, err_after = AfterMarker(out, marker), AfterMarker(err, marker)
        results: list[CommandResult] = []
        section_started = started

        def deliver(exit_status, *, timed_out=False, error="", stopped=False) -> None:
            nonlocal section_started
            index = len(results)
            spec, o, e = specs[index], outs[index], errs[index]
            results.append(
                _captured(
                    spec.key,
                    wrapped[index],
                    exit_status,
                    o,
                    e,
                    since=section_started,
                    timed_out=timed_out,
                    error=error,
                    stopped=stopped,
                )
            )
            section_started = time.monotonic()
            if on_result is not None:
                on_result(results[-1])

        def deliver_rest(
            error: str, *, first_error: str | None = None, timed_out=False, stopped=False, all_timed_out=False
        ) -> None:
            """Every command without a result yet gets `error` (the current one `first_error`, if given)."""
            out.flush()
            err.flush()
            if len(results) < len(specs):
                deliver(None, error=first_error or error, timed_out=timed_out, stopped=stopped)
            while len(results) < len(specs):
                deliver(None, error=error, timed_out=all_timed_out)

        def deliver_ended() -> None:
            while len(results) < min(out.ended, err.ended):
                status = out.statuses[len(results)]
                # 124: `timeout` fired; 137: it had to SIGKILL (-k).
                deliver(
                    status,
                    timed_out=status in (124, 137),
                    error="" if status is not None else "the lane's frame carried no exit status",
                )

        if not specs:
            return results
        try:
            script = ssh_lanes.lane_script(
                token, [ssh_lanes.Section(k, w, s.stdin) for k, w, s in zip(keys, wrapped, specs, strict=True)]
            )
        except ValueError as exc:
            deliver_rest(f"not run: {exc}")
            return results
        try:
            channel = self._transport.open_session(timeout=self.timeouts.channel_open)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            deliver_rest(f"could not open a channel: {exc or type(exc).__name__}")
            return results
        # Until the marker shows the script has started, the login shell's start-up files get their
        # own bound; from then on each command has its timeout plus grace from the end of the one before.
        shell_deadline = started + self.timeouts.shell_start
        deadline = shell_deadline + specs[0].timeout + self.timeouts.grace
        eof_deadline = None
        try:
            channel.exec_command(ssh_lanes.LANE_COMMAND)
            channel.sendall(script)
            channel.shutdown_write()
            while len(results) < len(specs):
                progressed = _drain(channel, out_after, err_after)
                before = len(results)
                deliver_ended()
                if len(results) == len(specs):
                    break
                spec = specs[len(results)]
                if len(results) > before:
                    deadline = time.monotonic() + spec.timeout + self.timeouts.grace
                if out_after.found and shell_deadline:
                    if not results:
                        deadline = time.monotonic() + spec.timeout + self.timeouts.grace
                    shell_deadline = 0.0
                elif shell_deadline and time.monotonic() > shell_deadline and not channel.exit_status_ready():
                    deliver_rest(
                        f"the login shell did not start the command within {self.timeouts.shell_start:g} s "
                        "(slow shell start-up files on the host?)",
                        timed_out=True,
                        all_timed_out=True,  # as each would have, alone on its channel
                    )
                    break
                current = len(results)
                if outs[current].total + errs[current].total > spec.read_limit:
                    deliver_rest(
                        f"not run: the channel was closed after an output flood from {spec.key}",
                        first_error=f"output flood: stopped reading after {spec.read_limit} bytes",
                        stopped=True,
                    )
                    break
                # The script ended (exit status and end of output) with commands unreported: the
                # shell died, or was killed, between frames.
                has_status = channel.exit_status_ready()
                has_eof = channel.eof_received or channel.closed
                if has_status and not has_eof:
                    eof_deadline = eof_deadline or time.monotonic() + _EOF_WAIT
                    has_eof = time.monotonic() > eof_deadline
                if has_status and has_eof:
                    _drain(channel, out_after, err_after)
                    deliver_ended()
                    status = channel.recv_exit_status() if channel.exit_status_ready() else -1
                    if status == -1:  # closed without an exit-status message: the session died
                        deliver_rest("connection dropped before the command finished")
                    else:
                        deliver_rest(f"no exit status: the lane's shell ended (exit {status}) before the command did")
                    break
                if not self._transport.is_active():
                    deliver_rest("connection dropped before the command finished")
                    break
                if time.monotonic() > deadline:
                    deliver_rest(
                        f"no exit status: not started, {spec.key} before it on the same channel did not finish",
                        first_error=f"no exit status {spec.timeout + self.timeouts.grace:.0f} s after start",
                        timed_out=True,
                    )
                    break
                if not progressed:
                    time.sleep(_POLL)  # not select() on the channel: see run()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            deliver_rest(f"connection error: {exc or type(exc).__name__}")
        finally:
            with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
                channel.close()
        return results


def _captured(
    key: str,
    command: str,
    exit_status: int | None,
    out: HeadTail,
    err: HeadTail,
    *,
    since: float,
    timed_out: bool,
    error: str,
    stopped: bool,
) -> CommandResult:
    """One command's result from what its two streams kept; `stopped`: reading was cut short (a flood)."""
    return CommandResult(
        key=key,
        command=command,
        exit_status=exit_status,
        stdout=out.value(),
        stderr=err.value(),
        duration=time.monotonic() - since,
        truncated=out.truncated or err.truncated or stopped,
        timed_out=timed_out,
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        error=error,
    )


def _drain(channel: paramiko.Channel, out: AfterMarker | HeadTail, err: AfterMarker | HeadTail) -> bool:
    """Read whatever both streams hold; True if anything came. Both, always: a chatty
    stderr must never stall stdout (nor the other way round)."""
    got = False
    budget = 8 << 20  # per call, so a flood still returns to the loop's limit and deadline checks
    while (channel.recv_ready() or channel.recv_stderr_ready()) and budget > 0:
        budget -= 131072
        if channel.recv_ready():
            out.feed(channel.recv(65536))
            got = True
        if channel.recv_stderr_ready():
            err.feed(channel.recv_stderr(65536))
            got = True
    return got


def _wait_for_banner(sock: socket.socket, timeout: float) -> None:
    ready, _, _ = select.select([sock], [], [], timeout)
    if not ready:
        raise SshError(
            "no_banner",
            f"no SSH banner within {timeout:g} s (the port accepts connections but nothing answers like an SSH server)",
        )
    try:
        peek = sock.recv(64, socket.MSG_PEEK)
    except OSError as exc:
        raise SshError("dropped", f"connection reset before the SSH banner: {exc.strerror or exc}") from None
    if not peek:
        raise SshError("dropped", "the server closed the connection before sending an SSH banner")


def _wait_for_banner_on_channel(channel: paramiko.Channel, timeout: float) -> None:
    """The banner wait of `_wait_for_banner` on a channel through a jump host: wait until bytes are there
    (recv_ready reads nothing, so paramiko's transport still gets the whole banner)."""
    deadline = time.monotonic() + timeout
    while not channel.recv_ready():
        if channel.closed or channel.eof_received:
            raise SshError("dropped", "the server closed the connection before sending an SSH banner")
        if time.monotonic() > deadline:
            raise SshError(
                "no_banner",
                f"no SSH banner within {timeout:g} s (the port accepts connections but nothing answers like "
                "an SSH server)",
            )
        time.sleep(_POLL)


def _tcp_connect(address: str, port: int, timeout: float) -> socket.socket:
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SshError("unreachable", f"unreachable: cannot resolve {address}: {exc.strerror}") from None
    last: Exception | None = None
    for family, socktype, proto, _, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except TimeoutError:
            sock.close()
            raise SshError("unreachable", f"unreachable: connect timed out after {timeout:g} s") from None
        except OSError as exc:
            sock.close()
            last = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # A peer that vanishes mid-run is noticed in ~15 s, not the kernel's two hours.
        for option, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 2)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
        return sock
    reason = getattr(last, "strerror", None) or str(last)
    raise SshError("unreachable", f"unreachable: {reason} ({address} port {port})")


class Dialled:
    """A TCP connection being made ahead of the rest of a collection, on a thread of its own (``dial``).

    A fleet's sweep starts its hosts' connects while each run is still reading its credential and keys
    from the database, so a host that drops SYNs starts its connect bound at once rather than after the
    database work of the runs ahead of it. ``connect`` takes it over (``take``) when it is for the
    address and port it connects to; whoever made it closes it if nobody took it."""

    def __init__(self, address: str, port: int, timeout: float):
        self.address, self.port, self.timeout = address, port, timeout
        self.started = time.monotonic()
        self.seconds = 0.0  # how long the TCP connect took (set when it ended)
        self.error: SshError | None = None
        self._sock: socket.socket | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        threading.Thread(target=self._connect, name=f"dial-{address}", daemon=True).start()

    def _connect(self) -> None:
        try:
            sock, error = _tcp_connect(self.address, self.port, self.timeout), None
        except SshError as exc:
            sock, error = None, exc
        with self._lock:
            self.seconds, self.error = time.monotonic() - self.started, error
            if self._closed and sock is not None:
                sock.close()  # given up on while it was connecting
            else:
                self._sock = sock
            self._done.set()

    def take(self) -> socket.socket:
        """The connection once made (now the caller's to close), or the dial's SshError raised; once.
        Waits for the connect, which its own timeout bounds."""
        self._done.wait(self.timeout + 1.0)
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            return sock
        if not self._done.is_set():
            raise SshError("unreachable", f"unreachable: connect timed out after {self.timeout:g} s")
        raise self.error or SshError("unreachable", "unreachable: the connection made ahead was already used")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def dial(address: str, port: int, timeout: float) -> Dialled:
    """Start the TCP connection to address:port now, bounded by `timeout`, for ``connect(dialled=...)``
    to log in over later; its error is raised by that connect."""
    return Dialled(address, port, timeout)


def connect(
    *,
    address: str,
    port: int,
    username: str,
    secret: Secret,
    pinned: Iterable[HostKey],
    timeouts: Timeouts | None = None,
    ca_keys: Iterable[HostKey] = (),
    names: Iterable[str] = (),
    allow_legacy: bool = False,
    revoked: Iterable[HostKey] = (),
    via: Sequence[Hop] = (),
    dialled: Dialled | None = None,
) -> Session:
    """Open an authenticated session, or raise SshError saying what went wrong.

    The server's host key must be one of `pinned`, or (when `ca_keys` are given) carry an
    OpenSSH host certificate signed by one of them that names one of `names` (the server's
    name and address); a key in `revoked` is never accepted through a certificate.
    `allow_legacy` lets SHA-1 key exchange and ssh-rsa host keys through.

    `via` is the chain of jump hosts, first hop first: each is logged in to through the one
    before, the server through the last; a jump host's key must be pinned (no certificates, no
    legacy algorithms). An SshError raised at a jump host names it and carries its `hop`.

    `dialled` is a TCP connection made ahead (``dial``): used, or its error raised, when it is for
    `address` and `port` and there are no jump hosts; otherwise closed and ignored.
    """
    ca_keys, pinned, names, revoked = list(ca_keys), list(pinned), list(names), list(revoked)
    timeouts = timeouts or Timeouts()
    timings = Timings()
    hop_transports: list[paramiko.Transport] = []
    previous: tuple[str, paramiko.Transport] | None = None
    started = time.monotonic()
    try:
        for hop in via:
            with _at_hop(hop.name):
                conn = _open(previous, hop.address, hop.port, hop.timeouts)
                transport, _ = _login(
                    conn,
                    username=hop.username,
                    secret=hop.secret,
                    timeouts=hop.timeouts,
                    allow_legacy=False,
                    certificates_first=False,
                    timings=Timings(),
                    started=time.monotonic(),
                    check_key=functools.partial(
                        _check_host_key, pinned=list(hop.pinned), ca_keys=[], names=[], revoked=[]
                    ),
                )
            hop_transports.append(transport)
            previous = (hop.name, transport)
        if via:
            timings.via = time.monotonic() - started
            started = time.monotonic()
        if dialled is not None and not via and (dialled.address, dialled.port) == (address, port):
            conn = dialled.take()
            # The phases count from that TCP connect, as if it had just been made (not the wait since).
            started = time.monotonic() - dialled.seconds
        else:
            conn = _open(previous, address, port, timeouts)
        timings.connect = time.monotonic() - started
        transport, host_key = _login(
            conn,
            username=username,
            secret=secret,
            timeouts=timeouts,
            allow_legacy=allow_legacy,
            certificates_first=bool(ca_keys),
            timings=timings,
            started=started,
            check_key=lambda key, remote: _check_host_key(
                key, remote, pinned=pinned, ca_keys=ca_keys, names=names, revoked=revoked
            ),
        )
    except BaseException:
        for hop_transport in reversed(hop_transports):
            hop_transport.close()
        raise
    finally:
        if dialled is not None:
            dialled.close()  # not taken (another address, or jump hosts): nobody else will use it
    return Session(transport, timings, timeouts, host_key, hops=hop_transports)


@contextlib.contextmanager
def _at_hop(name: str):
    """Name the jump host in an SshError raised while reaching it (unless the error already names a hop)."""
    try:
        yield
    except SshError as exc:
        if exc.hop is not None:
            raise
        raise SshError(exc.kind, f"jump host {name}: {exc.message}", host_key=exc.host_key, hop=name) from None


# SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 section 5.1), in words.
_OPEN_FAILURES = {
    1: "administratively prohibited (does the jump host allow TCP forwarding for this user?)",
    2: "connect failed",
    3: "unknown channel type",
    4: "resource shortage",
}


def _open(
    previous: tuple[str, paramiko.Transport] | None, address: str, port: int, timeouts: Timeouts
) -> socket.socket | paramiko.Channel:
    """A byte stream to address:port: a TCP connection, or a direct-tcpip channel through the previous hop
    (bounded by the next host's connect timeout: the jump host does that TCP connect for us)."""
    if previous is None:
        return _tcp_connect(address, port, timeouts.connect)
    name, transport = previous
    reach = f"jump host {name} could not reach {address} port {port}"
    try:
        return transport.open_channel("direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeouts.connect)
    except paramiko.ChannelException as exc:
        why = _OPEN_FAILURES.get(exc.code, f"refused (code {exc.code})")
        text = getattr(transport, "open_failure_text", "") or exc.text
        # OpenSSH says "open failed" for a refused forward: nothing the reason code did not say already.
        said = f" ({text})" if text and text.lower() not in why and text.lower() != "open failed" else ""
        # A refused forward is the jump host's policy: trying again changes nothing.
        kind = "jump_refused" if exc.code == 1 else "unreachable"
        raise SshError(kind, f"{reach}: {why}{said}", hop=name) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        if transport.is_active():  # paramiko's "Timeout opening channel."
            raise SshError("unreachable", f"{reach}: no connection within {timeouts.connect:g} s", hop=name) from None
        raise SshError(
            "dropped",
            f"jump host {name}: connection dropped while opening a channel to "
            f"{address} port {port}: {exc or type(exc).__name__}",
            hop=name,
        ) from None


def _login(
    conn: socket.socket | paramiko.Channel,
    *,
    username: str,
    secret: Secret,
    timeouts: Timeouts,
    allow_legacy: bool,
    certificates_first: bool,
    check_key: Callable[[HostKey, paramiko.PKey], None],
    timings: Timings,
    started: float,
) -> tuple[paramiko.Transport, HostKey]:
    """Banner, key exchange, host key check and authentication over `conn`, each bounded; the phases are
    recorded in `timings` as seconds since `started`. Closes `conn` on failure."""
    transport = None
    try:
        if isinstance(conn, paramiko.Channel):
            _wait_for_banner_on_channel(conn, timeouts.banner)
        else:
            _wait_for_banner(conn, timeouts.banner)
            conn.settimeout(None)
        timings.banner = time.monotonic() - started
        transport = ssh_algorithms.Transport(conn, allow_legacy=allow_legacy, certificates_first=certificates_first)
        transport.banner_timeout = timeouts.banner
        transport.handshake_timeout = timeouts.handshake
        transport.auth_timeout = timeouts.auth
        negotiated = threading.Event()
        transport.start_client(event=negotiated)
        # paramiko's own timeout argument returns silently on expiry, so wait ourselves.
        if not negotiated.wait(timeouts.handshake) or not transport.is_active():
            error = transport.get_exception()
            if negotiated.is_set() and error is not None:
                refusal = transport.refusal()
                if refusal:  # not transient: the server will offer the same next time
                    raise SshError("algorithms", refusal)
                raise SshError("handshake", f"SSH key exchange failed: {error}")
            raise SshError(
                "handshake",
                f"SSH key exchange did not finish within {timeouts.handshake:g} s "
                "(the server sent a banner, then went silent)",
            )
        timings.handshake = time.monotonic() - started
        transport.set_keepalive(timeouts.keepalive)
        remote = transport.get_remote_server_key()
        # The plain key, also when a certificate was negotiated (get_base64 leaves the certificate out).
        host_key = HostKey(remote.get_name(), remote.get_base64())
        check_key(host_key, remote)
        _authenticate(transport, username=username, secret=secret, timeouts=timeouts)
        timings.auth = time.monotonic() - started
        return transport, host_key
    except SshError:
        _close(transport, conn)
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        _close(transport, conn)
        raise SshError("dropped", f"connection failed during setup: {exc or type(exc).__name__}") from None


def _check_host_key(
    host_key: HostKey,
    remote: paramiko.PKey,
    *,
    pinned: list[HostKey],
    ca_keys: list[HostKey],
    names: list[str],
    revoked: list[HostKey],
) -> None:
    """Raise SshError unless the offered key is pinned or certified by a trusted CA."""
    if host_key in pinned:
        return
    why_not_certified = ""
    certificate = getattr(remote, "public_blob", None)
    if ca_keys and host_key in revoked:  # an admin revoked it here: a certificate does not bring it back
        why_not_certified = " An admin revoked this key for this server, so its certificate does not count."
    elif ca_keys and certificate is not None and certificate.key_type.endswith("-cert-v01@openssh.com"):
        try:
            ssh_certs.check(
                certificate.key_blob, ca_keys=[base64.b64decode(k.key_base64) for k in ca_keys], names=names
            )
            return
        except ssh_certs.CertificateRefused as exc:
            why_not_certified = f" Its host certificate was refused: {exc}."
    elif ca_keys:
        why_not_certified = " It presented no host certificate from the customer's CA."
    if pinned:
        raise SshError(
            "host_key_changed",
            f"host key changed: the server offered {host_key.fingerprint}, which is not the "
            f"pinned key; refusing to connect.{why_not_certified}".rstrip("."),
            host_key=host_key,
        )
    raise SshError(
        "host_key_unknown",
        f"unknown host key {host_key.fingerprint} ({host_key.key_type}): an admin must approve "
        f"it before collections can run.{why_not_certified}".rstrip("."),
        host_key=host_key,
    )


def connect_retrying(*, retries: int = 1, pause: float = 1.0, **connect_args) -> Session:
    """`connect`, tried again (at most `retries` more times, `pause` s apart) after a transient fault
    that came quickly: a refused or reset connection, a server that closed before its banner, a key
    exchange that failed outright (a service restarting, a connection limit, a flapping firewall).

    A fault that waited out a whole bound (a dropped SYN, a port that never sends a banner, a silent
    key exchange) is not tried again: a second wait doubles the time an unreachable host holds a
    worker and rarely ends differently. Terminal faults (host keys, authentication) never are.
    """
    timeouts = connect_args.get("timeouts") or Timeouts()
    attempt = 1
    while True:
        dialled = connect_args.get("dialled")
        started = dialled.started if dialled is not None else time.monotonic()
        try:
            session = connect(**connect_args)
        except SshError as exc:
            quick = time.monotonic() - started < timeouts.connect
            if attempt > retries or not (exc.transient and quick):
                exc.attempts = attempt
                raise
            attempt += 1
            connect_args["dialled"] = None  # used up: the next attempt dials afresh
            time.sleep(pause)
            continue
        session.timings.attempts = attempt
        return session


def _authenticate(transport: paramiko.Transport, *, username: str, secret: Secret, timeouts: Timeouts) -> None:
    try:
        if secret.private_key:
            transport.auth_publickey(username, load_private_key(secret.private_key, secret.passphrase))
        elif secret.password is not None:
            _auth_password(transport, username, secret.password)
        else:
            raise SshError("bad_credential", "no credential is stored for this server or its customer")
    except paramiko.BadAuthenticationType as exc:
        raise SshError(
            "auth_failed",
            f"authentication refused for {username}: the server only allows {', '.join(exc.allowed_types)}",
        ) from None
    except paramiko.AuthenticationException as exc:
        message = str(exc)
        if not transport.is_active():
            # paramiko reports a transport that ended mid-authentication as "Authentication failed.":
            # the server hung up (a crashed or killed session child, MaxStartups, a restart), which
            # says nothing about the credential, and is worth one more try.
            raise SshError(
                "dropped",
                f"the server closed the connection during authentication of {username} (not a refusal of the "
                "credential)",
            ) from None
        if "timeout" in message.lower():
            raise SshError("handshake", f"authentication did not finish within {timeouts.auth:g} s") from None
        raise SshError(
            "auth_failed",
            f"authentication refused for {username}: check the stored credential and the account on the server",
        ) from None
    if not transport.is_authenticated():
        raise SshError("auth_failed", f"authentication for {username} did not complete")


def _auth_password(transport: paramiko.Transport, username: str, password: str) -> None:
    """Password authentication, or the same password typed at keyboard-interactive prompts when the
    server allows only that (PasswordAuthentication no, KbdInteractiveAuthentication yes).

    Only a hidden prompt that asks for a password gets the password: a one-time-code prompt gets
    nothing, and the refusal names it (the stored credential cannot answer it)."""
    try:
        transport.auth_password(username, password, fallback=False)  # paramiko's fallback answers every prompt
        return
    except paramiko.BadAuthenticationType as exc:
        if "keyboard-interactive" not in exc.allowed_types:
            raise
    unanswerable: list[str] = []

    def answer(title, instructions, prompts):
        replies = []
        for prompt, echo in prompts:
            if not echo and "password" in prompt.lower():
                replies.append(password)
            else:
                unanswerable.append(prompt.strip())
                replies.append("")
        return replies

    try:
        transport.auth_interactive(username, answer)
    except paramiko.AuthenticationException:
        if unanswerable:
            asked = "; ".join(repr(p[:80]) for p in unanswerable[:3])
            raise SshError(
                "auth_failed",
                f"authentication refused for {username}: the server's keyboard-interactive login asked {asked}, "
                "which a stored password cannot answer",
            ) from None
        raise


def _close(transport: paramiko.Transport | None, sock: socket.socket | paramiko.Channel) -> None:
    if transport is not None:
        transport.close()
    sock.close()
