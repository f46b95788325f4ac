"""Typed probe parameters: strict allowlists per kind, never escape-and-hope.

Every kind has one validator. Integer kinds take ``int`` only (``True`` and
``"20"`` are refused, so a form must convert explicitly); text kinds take
``str`` only. Nothing that passes may start with ``-`` where it becomes a
command argument. Values are shell-quoted again when rendered.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diagnostics.probes.base import ProbeError
from diagnostics.probes.bpf import BpfError, clean_bpf

LOG_PATHS: tuple[str, ...] = (
    "/var/log/messages",
    "/var/log/syslog",
    "/var/log/kern.log",
    "/var/log/daemon.log",
    "/var/log/maillog",
    "/var/log/mail.log",
    "/var/log/mail.err",
    "/var/log/mail.warn",
    "/var/log/secure",
    "/var/log/auth.log",
    "/var/log/exim4/mainlog",
    "/var/log/exim4/rejectlog",
    "/var/log/exim4/paniclog",
    "/var/log/exim/main.log",
    "/var/log/exim/reject.log",
    "/var/log/exim/panic.log",
    "/var/log/qmail/current",
    "/var/log/qmail/smtpd/current",
    "/var/log/clamav/clamav.log",
    "/var/log/clamav/freshclam.log",
    "/var/log/varnish/varnishncsa.log",
    "/var/log/nginx/error.log",
    "/var/log/apache2/error.log",
    "/var/log/httpd/error_log",
    # Install logs: a package whose scripts fail (a /tmp mounted noexec, a missing module) says so here.
    "/var/log/dpkg.log",
    "/var/log/apt/term.log",
    "/var/log/apt/history.log",
    "/var/log/yum.log",
    "/var/log/dnf.log",
    "/var/log/dnf.rpm.log",
    "/var/log/zypp/history",
    "/var/log/MailScanner/MailScanner.log",
)

# strace's syscall classes (with or without the leading %, which strace < 4.17 lacks).
STRACE_CLASSES = frozenset(
    {"file", "process", "network", "net", "signal", "ipc", "desc", "memory", "stat", "lstat", "fstat",
     "%stat", "statfs", "fstatfs", "%statfs", "pure", "creds", "clock"}
)  # fmt: skip

_PROCESS = re.compile(r"[A-Za-z0-9_.:@+][A-Za-z0-9_.:@+-]{0,63}", re.ASCII)
_INTERFACE = re.compile(r"[A-Za-z0-9_.:][A-Za-z0-9_.:-]{0,14}", re.ASCII)
_SYSCALL = re.compile(r"[a-z0-9_]{1,32}", re.ASCII)
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?", re.ASCII)
_IP_CHARS = re.compile(r"[0-9A-Fa-f:.]+", re.ASCII)
MAX_SYSCALLS = 64


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _process(value: str) -> str:
    if value.startswith("-"):
        raise ValueError("cannot start with '-'")
    if not _PROCESS.fullmatch(value):
        raise ValueError(f"{_show(value)} is not a process name (1-64 letters, digits and _ . : @ + -, as ps shows it)")
    return value


def _interface(value: str) -> str:
    if value.startswith("-"):
        raise ValueError("cannot start with '-'")
    if value != "any" and not _INTERFACE.fullmatch(value):
        raise ValueError(f"{_show(value)} is not an interface name (like eth0, ens3, bond0.12) or 'any'")
    return value


def _log_path(value: str) -> str:
    if value not in LOG_PATHS:
        raise ValueError(f"{_show(value)} is not one of the log files probes may read ({', '.join(LOG_PATHS)})")
    return value


def _bpf(value: str) -> str:
    try:
        return clean_bpf(value)
    except BpfError as exc:
        raise ValueError(str(exc)) from None


def _syscalls(value: str) -> str:
    names: list[str] = []
    for item in value.split(","):
        name = item.strip(" ")
        bare = name.removeprefix("%")
        if (name != bare and bare in STRACE_CLASSES) or _SYSCALL.fullmatch(name):
            if name not in names:
                names.append(name)
        else:
            raise ValueError(f"{_show(name)} is not a system call name (like connect) or strace class (like %network)")
    if len(names) > MAX_SYSCALLS:
        raise ValueError(f"lists {len(names)} system calls; the limit is {MAX_SYSCALLS}")
    return ",".join(names)


def _host(value: str) -> str:
    if _IP_CHARS.fullmatch(value) and (":" in value or value.replace(".", "").isdigit()):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{_show(value)} is not a valid IP address") from None
    name = value.removesuffix(".")
    if len(name) > 253 or not name or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"{_show(value)} is not a host name (like mail.example.com) or IP address")
    return value


@dataclass(frozen=True)
class Kind:
    """How one kind of parameter is checked: an int range, or a text validator."""

    integer: bool
    bounds: tuple[int, int] | None = None
    check: Callable[[str], str] | None = None
    unit: str = ""
    # The whole allowlist when it is a short fixed list: the playbook editor offers it as a select.
    choices: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    "process": Kind(integer=False, check=_process),
    "port": Kind(integer=True, bounds=(1, 65535)),
    "interface": Kind(integer=False, check=_interface),
    "seconds": Kind(integer=True, bounds=(1, 60), unit="seconds"),
    "count": Kind(integer=True, bounds=(1, 10000), unit="packets"),
    "log_path": Kind(integer=False, check=_log_path, choices=LOG_PATHS),
    "bpf": Kind(integer=False, check=_bpf),
    "syscalls": Kind(integer=False, check=_syscalls),
    "host": Kind(integer=False, check=_host),
    "lines": Kind(integer=True, bounds=(1, 5000), unit="lines"),
}


@dataclass(frozen=True)
class Param:
    """One typed probe parameter.

    ``default`` is used when the value is missing, ``None`` or ``""``; a
    ``required`` parameter has no default. ``bounds`` (integer kinds) defaults
    to the kind's range and may only narrow it.
    """

    name: str
    kind: str
    default: str | int | None = None
    help: str = ""
    required: bool = False
    bounds: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown parameter kind {self.kind!r}")
        kind = KINDS[self.kind]
        if kind.integer:
            low, high = kind.bounds or (0, 0)
            bounds = self.bounds or kind.bounds
            if bounds is None or not low <= bounds[0] <= bounds[1] <= high:
                raise ValueError(f"{self.name}: bounds {self.bounds} are outside the kind's {kind.bounds}")
            object.__setattr__(self, "bounds", bounds)
        elif self.bounds is not None:
            raise ValueError(f"{self.name}: only integer kinds have bounds")
        if self.required and self.default is not None:
            raise ValueError(f"{self.name}: a required parameter has no default")
        if self.default is not None:
            self.clean(self.default)  # a bad default is a programming error; fail at import

    @property
    def integer(self) -> bool:
        return KINDS[self.kind].integer

    def clean(self, value: Any) -> Any:
        """The validated value (or the default); ProbeError naming this parameter."""
        if value is None or (isinstance(value, str) and value == ""):
            if self.required:
                raise ProbeError(f"{self.name}: required. {self.help}".strip(), param=self.name)
            return self.default
        kind = KINDS[self.kind]
        if kind.integer:
            low, high = self.bounds or (0, 0)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ProbeError(
                    f"{self.name}: must be a whole number from {low} to {high}, not {_show(value)}", param=self.name
                )
            if not low <= value <= high:
                unit = f" {kind.unit}" if kind.unit else ""
                raise ProbeError(f"{self.name}: must be from {low} to {high}{unit}, not {value}", param=self.name)
            return value
        if not isinstance(value, str):
            raise ProbeError(f"{self.name}: must be text, not {_show(value)}", param=self.name)
        try:
            return kind.check(value) if kind.check else value
        except ValueError as exc:
            raise ProbeError(f"{self.name}: {exc}", param=self.name) from None
