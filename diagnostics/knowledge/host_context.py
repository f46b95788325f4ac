"""What a run's evidence says about the host a recipe is for: the interface, process, service and
config file the matched symptom's cited lines name, the numbers they measured, and which known
software runs there. ``recipe_text`` fills recipes from it.

``host_context`` is pure (parsed with ``diagnostics.parsers``, no database): evidences are anything
with ``pk``, ``probe``, ``output``, ``recorded_at`` and ``binary``; matches anything with
``citations`` (``[{evidence_id, line_start, text, ...}]``). ``host_context_for_runs`` loads them.

Every value is checked against a strict character set for its kind before it is kept: values end
up in shell snippets a tech pastes, and evidence is text the customer's host wrote (a process can
call itself anything). A value that fails is treated as unknown, never cleaned up.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from diagnostics.parsers import facts_for


@dataclass(frozen=True)
class Software:
    """How a known piece of software shows in ps and ss. ``tcp``: it always owns a TCP socket
    while it runs, so a complete ``ss -tanp`` without it says it does not run."""

    name: re.Pattern  # against a process name (ps's program name, ss's owner)
    args: re.Pattern | None = None  # against ps's full command line (interpreted daemons)
    tcp: bool = True


def _sw(name: str, args: str | None = None, *, tcp: bool = True) -> Software:
    return Software(re.compile(name), re.compile(args) if args else None, tcp)


# The names a recipe's ``for`` may use. The name is the one a tech would use for the unit too.
SOFTWARE: dict[str, Software] = {
    "apache": _sw(r"^(?:apache2|httpd)$"),
    "chrony": _sw(r"^chronyd$", tcp=False),
    "dovecot": _sw(r"^(?:dovecot|imap-login|pop3-login)$"),
    "exim": _sw(r"^exim4?$"),
    "fail2ban": _sw(r"^fail2ban-server$", r"\bfail2ban-server\b", tcp=False),
    "haproxy": _sw(r"^haproxy$"),
    "journald": _sw(r"^systemd-journald$", tcp=False),
    "mailscanner": _sw(r"^MailScanner$", r"\bMailScanner\b", tcp=False),
    "mysql": _sw(r"^(?:mysqld|mariadbd)$", tcp=False),  # may listen on a unix socket only
    "nginx": _sw(r"^nginx$"),
    "php-fpm": _sw(r"^php-fpm[\d.]*$", tcp=False),  # pools often listen on unix sockets
    "postfix": _sw(r"^(?:master|qmgr|pickup|smtpd|postfix)$", r"/postfix/"),
    "qmail": _sw(r"^qmail-\w+$", tcp=False),  # qmail-send; its SMTP side is tcpserver's
    "rsyslog": _sw(r"^rsyslogd$", tcp=False),
    "sendmail": _sw(r"^sendmail(?:-mta)?$"),
    "sshd": _sw(r"^sshd$"),
    "systemd": _sw(r"^systemd$", tcp=False),
    "tcpserver": _sw(r"^tcpserver$"),
    "varnish": _sw(r"^(?:varnishd|cache-main)$"),
}
# What the service_settings parser calls a service, as SOFTWARE names.
_SETTINGS_SERVICE = {
    "varnish": "varnish",
    "tcpserver": "tcpserver",
    "qmail": "qmail",
    "sendmail": "sendmail",
    "exim": "exim",
    "postfix": "postfix",
}
# Numbers the cited rows measured -> the generic word shown without one: the longest wait of the
# cited syscalls (strace durations, connect waits), and the open descriptors and soft limit of the
# cited process nearest its limit.
MEASURES = {"wait_seconds": "<seconds>", "fd_open": "<open files>", "fd_limit": "<fd limit>"}

# Shapes a value must have to be used (else it is unknown).
_IFNAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,14}")
_PROCESS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@-]{0,63}")
_PATH = re.compile(r"/[A-Za-z0-9_.+@/-]{0,255}")
_SETTING_VALUE = re.compile(r"[A-Za-z0-9_.:/+-]{1,64}")
_NOT_INTERFACES = frozenset(
    {
        "NIC",
        "Link",
        "link",
        "lo",
        "kernel",
        "bnx2",
        "bnx2x",
        "tg3",
        "e1000",
        "e1000e",
        "igb",
        "ixgbe",
        "i40e",
        "r8169",
        "vmxnet3",
        "virtio_net",
    }
)
# Kernel and daemon messages that name an interface, whatever the driver (the token before "NIC
# Link is Down"; bnx2 writes "bnx2: eth0 NIC Copper Link is Down", e1000e "e1000e 0000:00:19.0 eno1:").
_IFACE_IN_TEXT = (
    re.compile(r"(?:^|\s)([^\s:]+):? (?:NIC )?(?:Copper )?Link is (?:Down|Up)"),
    re.compile(r"NETDEV WATCHDOG: (\S+) \("),
    re.compile(r"(?:^|\s)([^\s:]+): (?:link (?:down|up|becomes ready)|carrier (?:lost|acquired))", re.IGNORECASE),
    re.compile(r"IPv6: ([^\s:]+): IPv6 duplicate address"),
    re.compile(r"(?:^|\s)(?:name|interface)=([^\s@]+)"),
)
_FACT_PAIR = re.compile(r"(\w+)=(\S+)")
_NOT_SERVICES = frozenset({"kernel", "CRON", "cron", "systemd", "sh", "bash", "timeout", "sudo"})

_TABLES_BY_PROBE = {
    "processes": ("processes",),
    "listening": ("listening",),
    "sockets": ("sockets",),
    "fd_usage": ("fd_usage",),
    "service_settings": ("service_params",),
    "interfaces": ("interfaces", "addresses"),
    "strace": ("syscalls", "connect_waits"),
    "mounts": ("mounts",),
    "disk": ("filesystems",),
}
_LOG_PROBES = ("kernel_log", "system_log", "mail_log", "log_tail", "auth_log")
# Probes read for the whole host (not only at cited lines): what runs, its settings, its interfaces.
HOST_PROBES = ("processes", "listening", "sockets", "service_settings", "interfaces")


def _ok(pattern: re.Pattern, value: Any) -> str | None:
    text = str(value) if value is not None else ""
    return text if pattern.fullmatch(text) else None


def _address(value: Any) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value).strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0").rstrip(".")


def _config_file(title: Any) -> str | None:
    """``/etc/mail/sendmail.mc (timeouts)`` -> the path; a command section (``postconf -n``) -> None."""
    first = str(title or "").split(" ", 1)[0]
    return _ok(_PATH, first)


def software_of(process: str | None, args: str | None = None) -> str | None:
    """The SOFTWARE name of a process, or None."""
    for name, software in SOFTWARE.items():
        if (process and software.name.search(process)) or (args and software.args and software.args.search(args)):
            return name
    return None


@dataclass(frozen=True)
class HostContext:
    """What the evidence says about one host. Tuples are in the order first cited (most cited first
    for peers); empty when the evidence does not say."""

    interfaces: tuple[str, ...] = ()
    processes: tuple[str, ...] = ()
    pids: tuple[str, ...] = ()
    services: tuple[str, ...] = ()  # SOFTWARE names of the cited processes
    peers: tuple[str, ...] = ()
    peer_ports: tuple[str, ...] = ()
    mountpoints: tuple[str, ...] = ()
    measured: dict[str, str] = field(default_factory=dict)
    settings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> values, cited first
    config_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)  # software -> files
    cited_config_paths: tuple[str, ...] = ()
    running: frozenset[str] = frozenset()  # SOFTWARE names seen running
    saw_processes: bool = False  # a process list was collected
    saw_socket_owners: bool = False  # a socket listing that names each socket's process was collected

    def runs(self, software: str) -> bool | None:
        """True when the evidence shows it running, False when it would show it and does not,
        None when the run did not look."""
        if software in self.running:
            return True
        known = SOFTWARE.get(software)
        if self.saw_processes or (self.saw_socket_owners and known is not None and known.tcp):
            return False
        return None

    def runs_any(self, software: Iterable[str]) -> bool | None:
        answers = [self.runs(name) for name in software]
        if True in answers:
            return True
        return False if answers and all(a is False for a in answers) else None

    def values(self, name: str, arg: str | None = None) -> tuple[str, ...]:
        """The values of one placeholder (``recipe_text.PLACEHOLDERS``); () when unknown."""
        if name == "measured":
            return (self.measured[arg],) if arg in self.measured else ()
        if name == "setting":
            return tuple(dict.fromkeys(self.settings.get(arg or "", ())))
        if name == "config_path":
            return self._config_paths(arg)
        return {
            "interface": self.interfaces,
            "process": self.processes,
            "pid": self.pids,
            "service": self.services,
            "peer": self.peers,
            "peer_port": self.peer_ports,
            "mountpoint": self.mountpoints,
        }.get(name, ())

    def _config_paths(self, software: str | None) -> tuple[str, ...]:
        if software is None:
            if self.cited_config_paths:
                return self.cited_config_paths
            found = [p for s in self.services for p in self.config_paths.get(s, ())]
            return tuple(dict.fromkeys(found))
        return self.config_paths.get(software, ())


# --- building it -----------------------------------------------------------------------------


def _citations(matches: Iterable[Any]) -> list[dict]:
    cited: list[dict] = []
    for match in matches:
        cited.extend(c for c in (getattr(match, "citations", None) or []) if isinstance(c, dict))
    return cited


def _count(counts: dict[str, int], value: str | None) -> None:
    if value is not None:
        counts[value] = counts.get(value, 0) + 1


def _add(seq: list, value: Any) -> None:
    if value is not None and value not in seq:
        seq.append(value)


def host_context(*, evidences: Iterable[Any], matches: Iterable[Any]) -> HostContext:
    """The host as the evidences (one server's, any number of runs) and the matched symptoms'
    citations describe it. Reads the process, socket, settings and interface tables whole and the
    other tables only of cited evidences."""
    citations = _citations(matches)
    cited_ids = {c.get("evidence_id") for c in citations}
    lines_by_evidence: dict[Any, set[int]] = {}
    for c in citations:
        if isinstance(c.get("line_start"), int):
            lines_by_evidence.setdefault(c.get("evidence_id"), set()).add(c["line_start"])

    running: set[str] = set()
    saw_processes = saw_owners = False
    pid_names: dict[int, str] = {}
    settings: dict[str, list[str]] = {}
    cited_settings: dict[str, list[str]] = {}
    config_paths: dict[str, list[str]] = {}
    cited_paths: list[str] = []
    known_ifaces: list[str] = []
    cited_rows: list[tuple[str, dict]] = []  # (table, row) of cited lines

    for ev in evidences:
        probe = getattr(ev, "probe", "")
        if getattr(ev, "binary", False) or probe not in _TABLES_BY_PROBE:
            continue
        cited = ev.pk in cited_ids
        if probe not in HOST_PROBES and not cited:
            continue
        facts = facts_for(
            probe, bytes(ev.output), recorded_at=getattr(ev, "recorded_at", None), tables=_TABLES_BY_PROBE[probe]
        )
        lines = lines_by_evidence.get(ev.pk, set())
        for table, rows in facts.items():
            for row in rows:
                if cited and row.get("line_no") in lines:
                    cited_rows.append((table, row))
                if table == "processes":
                    saw_processes = True
                    _add_running(running, row.get("name"), row.get("args"))
                    _remember_pid(pid_names, row.get("pid"), row.get("name"))
                elif table in ("listening", "sockets") and row.get("process"):
                    saw_owners = True
                    _add_running(running, row.get("process"), None)
                    _remember_pid(pid_names, row.get("pid"), row.get("process"))
                elif table == "service_params":
                    value = _ok(_SETTING_VALUE, row.get("value"))
                    name = str(row.get("name"))
                    if value is not None:
                        target = cited_settings if cited and row.get("line_no") in lines else settings
                        target.setdefault(name, []).append(value)
                    path = _config_file(row.get("file"))
                    software = _SETTINGS_SERVICE.get(str(row.get("service")))
                    if path and software:
                        _add(config_paths.setdefault(software, []), path)
                    if path and cited and row.get("line_no") in lines:
                        _add(cited_paths, path)
                elif table == "interfaces":
                    _add(known_ifaces, _ok(_IFNAME, row.get("name")))

    interfaces: list[str] = []
    processes: list[str] = []
    pids: list[str] = []
    peers: dict[str, int] = {}
    ports: dict[str, int] = {}
    mountpoints: list[str] = []
    waits: list[float] = []
    fd_rows: list[dict] = []

    for c in citations:
        text = str(c.get("text", ""))
        for pattern in _IFACE_IN_TEXT:
            for found in pattern.findall(text):
                iface = _ok(_IFNAME, found.split("@", 1)[0])
                if iface and iface not in _NOT_INTERFACES:
                    _add(interfaces, iface)
        for name in known_ifaces:
            if name not in _NOT_INTERFACES and re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text):
                _add(interfaces, name)
        if c.get("line_start") is None:  # a fact cited without a line: "name=eth0 rx_errors=14823 ..."
            pairs = dict(_FACT_PAIR.findall(text))
            if "mountpoint" in pairs:
                _add(mountpoints, _ok(_PATH, pairs["mountpoint"]))
        program = _log_program(c)
        if program:
            _add(processes, program)

    for table, row in cited_rows:
        process = row.get("process")
        if table in ("syscalls", "connect_waits"):
            pid = row.get("pid")
            process = pid_names.get(pid) if isinstance(pid, int) else None
            wait = row.get("duration") if table == "syscalls" else row.get("waited")
            if isinstance(wait, int | float) and not isinstance(wait, bool):
                waits.append(float(wait))
            _count(peers, _address(row.get("address")) if row.get("address") else None)
            _count(ports, _number(row.get("port")))
        elif table == "sockets" and row.get("peer_port") is not None:
            _count(peers, _address(row.get("peer_address")) if row.get("peer_address") else None)
            _count(ports, _number(row.get("peer_port")))
        elif table == "fd_usage":
            fd_rows.append(row)
        elif table in ("mounts", "filesystems"):
            _add(mountpoints, _ok(_PATH, row.get("mountpoint")))
        _add(processes, _ok(_PROCESS, process) if process and process not in _NOT_SERVICES else None)
        if isinstance(row.get("pid"), int) and not isinstance(row.get("pid"), bool) and process:
            _add(pids, str(row["pid"]))

    measured = {}
    if waits:
        measured["wait_seconds"] = _number(round(max(waits), 3))
    if fd_rows:
        top = max(fd_rows, key=lambda r: r.get("ratio") or 0)
        measured.update(
            {
                k: v
                for k, v in (("fd_open", _number(top.get("open"))), ("fd_limit", _number(top.get("soft_limit"))))
                if v is not None
            }
        )
    services = [software_of(p) for p in processes]
    all_settings = {
        name: tuple(cited_settings.get(name, []) + settings.get(name, [])) for name in {**settings, **cited_settings}
    }
    return HostContext(
        interfaces=tuple(interfaces),
        processes=tuple(processes),
        pids=tuple(pids),
        services=tuple(dict.fromkeys(s for s in services if s)),
        peers=tuple(sorted(peers, key=lambda a: -peers[a])),
        peer_ports=tuple(sorted(ports, key=lambda p: -ports[p])),
        mountpoints=tuple(mountpoints),
        measured={k: v for k, v in measured.items() if v is not None},
        settings=all_settings,
        config_paths={k: tuple(v) for k, v in config_paths.items()},
        cited_config_paths=tuple(cited_paths),
        running=frozenset(running),
        saw_processes=saw_processes,
        saw_socket_owners=saw_owners,
    )


_SYSLOG_PROGRAM = re.compile(r"^\S+\s+\d+\s+[\d:]+\s+\S+\s+([A-Za-z0-9_.+@/-]+?)(?:\[\d+\])?:\s")


def _log_program(citation: dict) -> str | None:
    """The program of a cited classic syslog line (``... mail sendmail[24452]: ...``), if any."""
    if citation.get("probe") not in _LOG_PROBES:
        return None
    match = _SYSLOG_PROGRAM.match(str(citation.get("text", "")))
    if not match:
        return None
    program = match.group(1).rsplit("/", 1)[-1]
    return _ok(_PROCESS, program) if program not in _NOT_SERVICES else None


def _add_running(running: set[str], process: Any, args: Any) -> None:
    name = software_of(str(process) if process else None, str(args) if args else None)
    if name:
        running.add(name)


def _remember_pid(pid_names: dict[int, str], pid: Any, process: Any) -> None:
    if isinstance(pid, int) and not isinstance(pid, bool) and process and _ok(_PROCESS, process):
        pid_names.setdefault(pid, str(process))


def host_context_for_runs(*, runs: Iterable[Any], matches: Iterable[Any]) -> HostContext:
    """``host_context`` over the evidence of ``runs`` (one server's), loaded from the database."""
    from django.db.models import Q

    from diagnostics.models import Evidence

    matches = list(matches)
    cited = [i for i in {c.get("evidence_id") for c in _citations(matches)} if isinstance(i, int)]
    evidences = (
        Evidence.objects.filter(run__in=list(runs), probe__in=list(_TABLES_BY_PROBE))
        .filter(Q(probe__in=HOST_PROBES) | Q(pk__in=cited))
        .only("id", "probe", "output", "recorded_at", "binary")
        .order_by("-run_id", "step")
    )
    return host_context(evidences=evidences, matches=matches)
