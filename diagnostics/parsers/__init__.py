"""Evidence parsers: a probe's raw output -> named fact tables the knowledge base matches against.

Contract::

    facts_for("sockets", evidence.output) -> {"sockets": [{...}, ...], "socket_states": [{...}]}

Each table is a list of flat dicts whose values are str, int, float, bool or None (JSON as is).
``TABLES`` names every table's fields (the knowledge base validates predicates against it) and
``PROBE_TABLES`` says which tables each probe yields. An unknown probe, an output with nothing but
``probe:`` notes (``probe: strace not installed``), or output a parser cannot read gives ``{}``;
``facts_for`` never raises: a parser bug is logged and costs that evidence its facts, never a
collection. The parsers are pure (no Django, no I/O) and linear in the size of their input.

Parsing is per table on demand: ``facts_for(probe, output, tables={"log_lines"})`` runs only the
parser those tables need, and nothing at all for a probe that yields none of them. Tables in
``LINE_TABLES`` can also be read at chosen lines only (``spans``), with rows equal to those of a
full parse; ``line_prefilter`` says which lines a predicate on such a table can be about.

Modules, one per kind of output; each docstring says which library it uses or why it is our own:
``strace`` (own), ``sockets`` (own: ss, netstat, /proc/net/tcp; ``limits`` judges its counts against the
host's own limits), ``mounts`` (own), ``processes``
(jc ps; own fd_usage), ``resources`` (jc df, meminfo, vmstat, loadavg), ``logs`` (own),
``resolvers`` (own), ``service_settings`` (own), ``sshd`` (own), ``pcap`` (dpkt), ``interfaces``
(jc proc_net_dev + own), ``mail_queue`` (own), ``session`` (own: the product's measured login,
``ssh_session``); ``sections`` splits the probes' common framing.

Columns added for real-world output (issue 10), each documented on its row type: ``syscalls.detail``
(what strace prints after the result: ``(Timeout)``, poll's revents), ``sockets.fd`` and
``listening.fd`` (the first owner's descriptor, in both of ss's owner formats) and
``packets_summary.duplicates`` (copies of one packet that ``tcpdump -i any`` recorded on another
interface, left out of the flows). Meanings that changed: ``connect_waits.waited`` of a connect still
pending at the window's end is a lower bound up to the probe's "window ended at" note (None when
unknown), and ``outcome`` says ``error``/``hangup`` for a POLLERR/POLLHUP wake; addresses lose ss's
brackets and keep a ``%zone`` only on link-local IPv6 (``fe80::1%eth0``); ``interfaces``/``addresses``
are filled from ``ifconfig -a`` where ``ip`` is missing.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from diagnostics.parsers import (
    interfaces,
    limits,
    logs,
    mail_queue,
    mounts,
    pcap,
    processes,
    resolvers,
    resources,
    service_settings,
    session,
    sockets,
    sshd,
    strace,
)
from diagnostics.parsers.sections import is_noise

__all__ = ["LINE_TABLES", "LOG_PROBES", "PROBE_TABLES", "TABLES", "facts_for", "line_prefilter"]

logger = logging.getLogger(__name__)

Facts = dict[str, list[dict[str, Any]]]

_ROWS: dict[str, type] = {
    "syscalls": strace.Syscall,
    "connect_waits": strace.ConnectWait,
    "sockets": sockets.Socket,
    "socket_states": sockets.SocketState,
    "tcp_limits": limits.TcpLimits,
    "listening": sockets.Listener,
    "mounts": mounts.Mount,
    "fd_usage": processes.FdUsage,
    "file_nr": processes.FileNr,
    "processes": processes.Process,
    "log_lines": logs.LogLine,
    "resolvers": resolvers.Resolver,
    "resolv_conf": resolvers.ResolvConfLine,
    "nsswitch": resolvers.NsswitchLine,
    "service_params": service_settings.ServiceParam,
    "sshd_settings": sshd.SshdSetting,
    "flows": pcap.Flow,
    "packets_summary": pcap.PacketsSummary,
    "filesystems": resources.Filesystem,
    "memory": resources.Memory,
    "vmstat_counters": resources.VmstatCounter,
    "load": resources.Load,
    "interfaces": interfaces.Interface,
    "addresses": interfaces.Address,
    "mail_queue": mail_queue.MailQueue,
    "ssh_session": session.SshSession,
}

# Every table's field names, in order (from the row types above, so they cannot drift apart).
TABLES: dict[str, tuple[str, ...]] = {name: tuple(row.__annotations__) for name, row in _ROWS.items()}

LOG_PROBES = ("kernel_log", "system_log", "mail_log", "log_tail", "auth_log", "install_log")

PROBE_TABLES: dict[str, tuple[str, ...]] = {
    "strace": ("syscalls", "connect_waits"),
    "sockets": ("sockets", "socket_states", "tcp_limits"),
    "listening": ("listening",),
    "mounts": ("mounts",),
    "fd_usage": ("fd_usage", "file_nr"),
    "processes": ("processes",),
    **{probe: ("log_lines",) for probe in LOG_PROBES},
    "resolvers": ("resolvers", "resolv_conf", "nsswitch"),
    "service_settings": ("service_params",),
    "sshd_config": ("sshd_settings",),
    "tcpdump": ("flows", "packets_summary"),
    "disk": ("filesystems",),
    "memory": ("memory", "vmstat_counters"),
    "load": ("load",),
    "interfaces": ("interfaces", "addresses"),
    "mail_queue": ("mail_queue",),
    "ssh_session": ("ssh_session",),  # measured by the product, not a command (diagnostics.probes.measured)
}


def _logs(text: str, recorded_at: dt.datetime | None) -> Facts:
    # Here and in facts_for: TypedDict rows are dicts at run time, but not dict[str, Any] to mypy.
    return {"log_lines": logs.parse_log_lines(text, recorded_at=recorded_at)}  # type: ignore[dict-item]


_TEXT_PARSERS: dict[str, Callable[[str, dt.datetime | None], Any]] = {
    "strace": lambda text, _: strace.parse_strace(text),
    "sockets": lambda text, _: sockets.parse_sockets(text),
    "listening": lambda text, _: {"listening": sockets.parse_listening(text)},
    "mounts": lambda text, _: {"mounts": mounts.parse_mounts(text)},
    "fd_usage": lambda text, _: processes.parse_fd_usage(text),
    "processes": lambda text, _: {"processes": processes.parse_processes(text)},
    **{probe: _logs for probe in LOG_PROBES},
    "resolvers": lambda text, _: resolvers.parse_resolvers(text),
    "service_settings": lambda text, _: {"service_params": service_settings.parse_service_settings(text)},
    "sshd_config": lambda text, _: {"sshd_settings": sshd.parse_sshd_config(text)},
    "disk": lambda text, _: {"filesystems": resources.parse_disk(text)},
    "memory": lambda text, _: resources.parse_memory(text),
    "load": lambda text, _: {"load": resources.parse_load(text)},
    "interfaces": lambda text, _: interfaces.parse_interfaces(text),
    "mail_queue": lambda text, _: {"mail_queue": mail_queue.parse_mail_queue(text)},
    "ssh_session": lambda text, _: {"ssh_session": session.parse_session(text)},
}


# Tables whose rows each come from one line and carry its "line_no": they can be read at chosen lines.
LINE_TABLES = frozenset({"log_lines"})
# Lines a log_lines message may not be a substring of: nginx's "[level] " is put before the rest.
_MESSAGE_NOT_IN_LINE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: "


def line_prefilter(table: str, field: str, op: str, expected: Any) -> list[str] | None:
    """Regexes such that a row of ``table`` with ``field op expected`` true comes from a line in
    which some substring matches one of them (as ``re.search`` on ``str``); None when no such
    promise can be made. Used as loose scan patterns (``diagnostics.scanning.Pattern.loose``).

    Only ``log_lines.message`` with ``regex`` (a compiled pattern) or ``contains``: every parser
    path keeps the message a suffix of its line, except nginx's error log, whose lines are all let
    through by a second regex.
    """
    if table != "log_lines" or field != "message":
        return None
    # ``expected``: an ``re.Pattern`` or what the knowledge base compiles a where regex into
    # (``diagnostics.scanning.LineRegex``), both with ``pattern`` and ``flags``.
    pattern, flags = getattr(expected, "pattern", None), getattr(expected, "flags", None)
    if op == "regex" and isinstance(pattern, str) and isinstance(flags, int):
        # The knowledge base compiles a where regex with MULTILINE (moot within one line) and
        # nothing else: the scan reads any other flag inline from the text, as re does.
        if re.compile(pattern, re.MULTILINE).flags != flags:
            return None
        return [pattern, _MESSAGE_NOT_IN_LINE]
    if op == "contains" and not isinstance(expected, list | tuple | set | dict):
        return [re.escape(str(expected)), _MESSAGE_NOT_IN_LINE]
    return None


def _has_data(text: str) -> bool:
    """Whether any line is more than a ``probe:`` note, the runner's cut marker or blank."""
    # A piece at a time: splitting at a "\n" splits no line in two (nor a "\r\n"), and the
    # answer is nearly always in the first piece of a large output.
    start = 0
    while start < len(text):
        end = text.find("\n", start + (1 << 16))
        end = len(text) if end < 0 else end + 1
        if any(line.strip() and not is_noise(line) for line in text[start:end].splitlines()):
            return True
        start = end
    return False


def facts_for(
    probe: str,
    output: bytes,
    *,
    recorded_at: dt.datetime | None = None,
    tables: Iterable[str] | None = None,
    spans: Iterable[tuple[int, int, int]] | None = None,
) -> Facts:
    """The fact tables of one probe's output; ``{}`` when there is nothing to learn. Never raises.

    ``recorded_at`` (when the evidence was taken) lets log lines without a year get one.
    ``tables``: only the parsers these tables need run (tables one parser reads in the same pass
    come along); a probe that yields none of them costs nothing. ``spans``, with ``tables`` all in
    ``LINE_TABLES``: only those lines are read (``logs.parse_log_lines_at``; offsets are into the
    output decoded as UTF-8 with replacement), each giving the row a full parse gives it.
    """
    try:
        if not isinstance(probe, str) or not (probe == "tcpdump" or probe in _TEXT_PARSERS):
            return {}
        if tables is not None:
            wanted = set(tables) & set(PROBE_TABLES.get(probe, ()))
            if not wanted:
                return {}
            if spans is not None and not wanted <= LINE_TABLES:
                raise ValueError(f"spans are for {', '.join(sorted(LINE_TABLES))} only, not {sorted(wanted)}")
        data = bytes(output) if not isinstance(output, str) else output.encode("utf-8", "surrogateescape")
        if probe == "tcpdump":
            return dict(pcap.parse_pcap(data)) if pcap.is_pcap(data) else {}  # type: ignore[arg-type]  # see _logs
        text = data.decode("utf-8", errors="replace")
        if not _has_data(text):
            return {}
        if spans is not None and tables is not None:
            # TypedDict rows as in _logs
            return {"log_lines": logs.parse_log_lines_at(text, spans, recorded_at=recorded_at)}  # type: ignore[dict-item]
        return dict(_TEXT_PARSERS[probe](text, recorded_at))
    except Exception:  # the contract: a parser bug must never break a collection
        logger.exception("parsing %r output failed; its evidence gets no facts", probe)
        return {}
