"""The service_settings probe -> ``service_params``: the settings that decide how long a service waits.

Our own parser; no library reads these: the command lines of the processes owning listening sockets
(``==> process 812 tcpserver <==``: tcpserver's options as it runs), ``varnishadm param.show``
(``send_timeout  600.000 [seconds] (default)``), tcpserver/tcp-env command lines in run scripts and
xinetd files, qmail's control files, sendmail.mc (or a -C .cf) ``confTO_*`` defines and
``Timeout.*`` options, ``exim -bP`` and ``postconf -n``.

tcpserver's options are read as its getopt does (``-vRHl0`` is -v -R -H -l 0; the last of -r/-R
wins) and two params are added per command line: ``ident_lookups`` (``on`` unless -R: the 26 s
callback to the client's port 113 of the war story) and ``ident_timeout`` (-t, 26 s by default).
Durations become seconds in ``number`` with unit ``seconds``; varnish sizes (``48k [bytes]``) become
bytes.
"""

from __future__ import annotations

import re
import shlex
from typing import TypedDict

from diagnostics.parsers.sections import Section, split_sections, to_float


class ServiceParam(TypedDict):
    line_no: int
    file: str | None  # the section: a run script's path, "varnishadm param.show", "postconf -n"...
    service: str  # varnish, tcpserver, qmail, sendmail, exim, postfix
    name: str
    value: str  # as written
    number: float | None
    unit: str | None
    default: bool | None  # varnish marks parameters still at their default


# ucspi-tcp 0.88 tcpserver's getopt string, plus qmail's tcp-env (-i, -p); letters before ":" take a value.
_TAKES_VALUE = frozenset("xtuglbBcip")
_KNOWN_FLAGS = frozenset("dDvqQhHrR1UXxtuglbBcpPoOip")
_VARNISH = re.compile(r"([a-z][a-z0-9_]*)\s+(.*?)(?:\s+\[([^\]]+)\])?(\s+\(default\))?\s*")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw]?)+")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([bkmgtBKMGT]?)")
_SIZES = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SENDMAIL_DEFINE = re.compile(r"define\(\s*`?(conf\w+)'?\s*,\s*`?([^')]*)'?\s*\)")
_SENDMAIL_OPTION = re.compile(r"O\s+(Timeout\.\w+)\s*=\s*(\S+)")
_KEY_VALUE = re.compile(r"([\w.-]+)\s*=\s*(.*)")


def seconds(text: str) -> float | None:
    """``60s``, ``2m``, ``1h30m``, ``600`` -> seconds; None for anything else."""
    text = text.strip()
    if not text or not _DURATION.fullmatch(text):
        return None
    return float(sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text)))


def _param(
    line_no: int,
    part: Section,
    service: str,
    name: str,
    value: str,
    number: float | None = None,
    unit: str | None = None,
    default: bool | None = None,
) -> ServiceParam:
    return {
        "line_no": line_no,
        "file": part.title,
        "service": service,
        "name": name,
        "value": value,
        "number": number,
        "unit": unit,
        "default": default,
    }


def _varnish(part: Section) -> list[ServiceParam]:
    rows = []
    for line_no, line in part.numbered():
        if line[:1].isspace() or not (match := _VARNISH.fullmatch(line)):
            continue
        name, value, unit, default = match.groups()
        number = None
        if unit == "bytes" and (size := _SIZE.fullmatch(value)):
            number = float(size.group(1)) * _SIZES[size.group(2).lower()]
        elif unit != "bool":
            number = to_float(value)
        rows.append(_param(line_no, part, "varnish", name, value, number, unit, default is not None))
    return rows


def tcpserver_options(tokens: list[str]) -> list[tuple[str, str]]:
    """getopt over tcpserver's arguments (after the program): [("-R", ""), ("-t", "0"), ...]."""
    options: list[tuple[str, str]] = []
    index = 0
    while index < len(tokens):
        arg = tokens[index]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break
        letters = arg[1:]
        while letters:
            letter, letters = letters[0], letters[1:]
            if letter not in _KNOWN_FLAGS:
                return options  # not tcpserver's: stop rather than guess
            if letter in _TAKES_VALUE:
                if not letters and index + 1 < len(tokens):
                    index += 1
                    letters = tokens[index]
                options.append((f"-{letter}", letters))
                letters = ""
            else:
                options.append((f"-{letter}", ""))
        index += 1
    return options


def _tcpserver_line(line_no: int, part: Section, line: str) -> list[ServiceParam]:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        tokens = line.split()
    if tokens and tokens[0] == "server_args" and len(tokens) > 1 and tokens[1] == "=":  # xinetd: tcp-env's args
        start = 2
    else:
        found = next((i + 1 for i, t in enumerate(tokens) if t.rsplit("/", 1)[-1] in ("tcpserver", "tcp-env")), None)
        if found is None:
            return []
        start = found
    rows = []
    ident, timeout = "on", 26.0
    for name, value in tcpserver_options(tokens[start:]):
        rows.append(
            _param(
                line_no,
                part,
                "tcpserver",
                name,
                value,
                to_float(value) if value else None,
                "seconds" if name == "-t" else None,
            )
        )
        if name in ("-r", "-R"):
            ident = "on" if name == "-r" else "off"
        elif name == "-t" and (number := to_float(value)) is not None:
            timeout = number
    rows.append(_param(line_no, part, "tcpserver", "ident_lookups", ident))
    rows.append(_param(line_no, part, "tcpserver", "ident_timeout", f"{timeout:g}", timeout, "seconds"))
    return rows


def _sendmail(part: Section) -> list[ServiceParam]:
    rows = []
    for line_no, line in part.numbered():
        stripped = line.strip()
        if stripped.startswith(("dnl", "#")):
            continue
        for pattern in (_SENDMAIL_DEFINE, _SENDMAIL_OPTION):
            if match := pattern.search(stripped):
                name, value = match.groups()
                number = seconds(value)
                rows.append(
                    _param(line_no, part, "sendmail", name, value, number, "seconds" if number is not None else None)
                )
                break
    return rows


def _key_values(part: Section, service: str) -> list[ServiceParam]:
    rows = []
    for line_no, line in part.numbered():
        if match := _KEY_VALUE.fullmatch(line.strip()):
            name, value = match.groups()
            number = seconds(value)
            unit = "seconds" if number is not None and not value.isdigit() else None
            if number is None:
                number = to_float(value)
            rows.append(_param(line_no, part, service, name, value, number, unit))
    return rows


def parse_service_settings(text: str) -> list[ServiceParam]:
    rows: list[ServiceParam] = []
    for part in split_sections(text):
        title = part.title or ""
        if title.startswith("varnishadm"):
            rows += _varnish(part)
        elif title.startswith("/var/qmail/control/"):
            for line_no, line in part.numbered():
                value = line.strip()
                number = to_float(value)
                rows.append(
                    _param(
                        line_no,
                        part,
                        "qmail",
                        title.rsplit("/", 1)[-1],
                        value,
                        number,
                        "seconds" if number is not None and "timeout" in title else None,
                    )
                )
                break
        elif title.startswith(("/etc/mail/sendmail", "sendmail -C ")):
            rows += _sendmail(part)
        elif title.startswith("process "):  # a socket owner's command line, as it was started
            for line_no, line in part.numbered():
                if "tcpserver" in line or "tcp-env" in line:
                    rows += _tcpserver_line(line_no, part, line)
        elif title.startswith(("exim -bP", "exim4 -bP")):
            rows += _key_values(part, "exim")
        elif title.startswith("postconf"):
            rows += _key_values(part, "postfix")
        elif title.startswith("/etc/xinetd.d/"):  # Plesk's qmail: "server_args = -Rt0 ..." for tcp-env
            for line_no, line in part.numbered():
                if line.strip().startswith("server_args"):
                    rows += _tcpserver_line(line_no, part, line)
        elif title.startswith("/"):  # daemontools/runit run scripts
            for line_no, line in part.numbered():
                if "tcpserver" in line or "tcp-env" in line:
                    rows += _tcpserver_line(line_no, part, line)
    return rows
