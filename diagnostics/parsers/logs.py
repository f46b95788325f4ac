"""Log lines (kernel_log, system_log, auth_log, mail_log, log_tail) -> ``log_lines``.

Our own parser: the formats a support desk meets in one evidence file are mixed (classic syslog,
BusyBox syslogd's (``facility.level`` after the host, or with ``-S`` no host), RFC 5424, RFC 3339
syslog, ``dmesg -T``, raw ``dmesg``, journalctl's short format, exim, nginx/apache error logs,
clamav, qmail's multilog TAI64N stamps, access logs), each line must keep its line number so a
match can cite it, and the classic format must keep the pid: jc 1.26's ``syslog_bsd`` folds
``sshd[812]:`` into the message, and its ``syslog`` (RFC 5424) is one more pass per format; the
tests compare both with ours on jc's own fixtures. One compiled pattern per
format, chosen by the line's first character, keeps a 10 MB log well under a second.

Timestamps are ISO 8601. Classic syslog carries no year: given ``recorded_at`` (when the evidence
was taken) the year is the latest in which the date is not after the recording day plus a day of
slack (a December line read in January is last year's, a "Jan  1" line written by a host ahead of
UTC while our clock says Dec 31 is next year's); without it the
timestamp is ISO's year-less form ``--11-08T16:49:42``. Raw dmesg times are seconds since boot and
go to ``uptime`` (as does the ``[3018172.820223]`` inside a syslogged kernel line).
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import TypedDict

from diagnostics.parsers.sections import HEADER as _HEADER
from diagnostics.parsers.sections import is_noise, split_sections


class LogLine(TypedDict):
    file: str | None  # the section header (a log path, or a journalctl command); None for dmesg
    line_no: int  # 1-based within the evidence text
    timestamp: str | None  # ISO 8601; "--MM-DDTHH:MM:SS" when the year is unknown
    uptime: float | None  # seconds since boot (dmesg)
    host: str | None
    program: str | None
    pid: int | None
    message: str


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_TAG = r"(?:([^\s:\[]+)(?:\[(\d+)\])?: ?)?"  # "sshd[812]: ", "kernel: ", or nothing
# BusyBox syslogd writes "facility.level" between the host and the tag ("router daemon.info dnsmasq: ...").
_FACILITY_LEVEL = (
    r"(?:(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7])"
    r"\.(?:emerg|panic|alert|crit|err|error|warn|warning|notice|info|debug) )?"
)
# The host is a word not ending in ":"; with none (BusyBox syslogd -S) the tag follows the time directly.
_SYSLOG = re.compile(
    r"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d)(?:\.\d+)? (?:(\S*[^\s:]) )?" + _FACILITY_LEVEL + _TAG + r"(.*)"
)
_ISO_STAMP = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
# RFC 5424 after its <PRI>: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG], "-" for nil;
# SD-PARAM values may hold "]" escaped as "\]".
_SD = r'(?:-|(?:\[[^\]"]*(?:"(?:[^"\\]|\\.)*"[^\]"]*)*\])+)'
_RFC5424 = re.compile(r"[1-9]\d{0,2} (-|" + _ISO_STAMP + r") (\S+) (\S+) (\S+) \S+ " + _SD + r"(?: \ufeff?(.*))?")
_RFC3339 = re.compile(_ISO_STAMP + r" (\S+) " + _TAG + r"(.*)")
_ISO_SPACE = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?: ([+-]\d{4}))? (?:\[(\d+)\] )?(.*)")
_NGINX = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d:\d\d:\d\d) \[(\w+)\] (\d+)#\d+: (.*)")
_ACCESS = re.compile(r"\S+ \S+ \S+ \[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d:\d\d:\d\d) ([+-]\d\d)(\d\d)\] ")
_BRACKET_CTIME = re.compile(r"\[[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d)(\.\d+)? (\d{4})\] ?(.*)")
_BRACKET_UPTIME = re.compile(r"\[ *(\d+\.\d+)\] ?(.*)")
_APACHE_PID = re.compile(r"(?:\[[^\]]*\] )?\[pid (\d+)[^\]]*\] ?")
_CTIME = re.compile(r"[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d) (\d{4}) -> (.*)")
_TAI64N = re.compile(r"@([0-9a-f]{16})([0-9a-f]{8}) (.*)")
_TAGGED = re.compile(r"([\w.-]+)(?:\[(\d+)\])?: (.*)")
_PRI = re.compile(r"<\d{1,3}>")
_JOURNAL_META = ("No journal files were found.", "No entries")
YEAR_SLACK = dt.timedelta(days=1)  # time zones (UTC-12..UTC+14) and a little clock skew
TAI64_EPOCH = 2**62 + 10  # tai64n label of 1970-01-01T00:00:00 (as tai64nlocal counts it, no leap table)


def _year(month: int, day: int, recorded_at: dt.datetime | None) -> int | None:
    """The latest year in which ``month``/``day`` is not after the recording day plus ``YEAR_SLACK``.

    The line's clock is the host's local time and ``recorded_at`` ours (UTC), so a host ahead of UTC
    writes "Jan  1" while we still say Dec 31: compared as dates, across month and year ends.
    """
    if recorded_at is None:
        return None
    latest = recorded_at.date() + YEAR_SLACK
    for year in range(latest.year, latest.year - 9, -1):  # Feb 29 may be up to 8 years back
        try:
            if dt.date(year, month, day) <= latest:
                return year
        except ValueError:  # Feb 29 of a common year, or a day no month has
            continue
    return None


def _stamp(month: int, day: int, time: str, year: int | None) -> str:
    if year is None:
        return f"--{month:02d}-{day:02d}T{time}"
    return f"{year:04d}-{month:02d}-{day:02d}T{time}"


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _row(file: str | None, line_no: int, message: str) -> LogLine:
    return {
        "file": file,
        "line_no": line_no,
        "timestamp": None,
        "uptime": None,
        "host": None,
        "program": None,
        "pid": None,
        "message": message,
    }


def _kernel_uptime(row: LogLine) -> None:
    """``kernel: [3018172.820223] do_IRQ: ...`` -> uptime 3018172.820223, message ``do_IRQ: ...``."""
    message = row["message"]
    if message.startswith("[") and (match := _BRACKET_UPTIME.match(message)):
        row["uptime"] = float(match.group(1))
        row["message"] = match.group(2)


def parse_line(line: str, line_no: int, file: str | None, recorded_at: dt.datetime | None = None) -> LogLine:
    """One log line; a line in no known format is still a row, with only its message."""
    row = _row(file, line_no, line)
    first = line[:1]
    if first == "<" and (pri := _PRI.match(line)):
        line, first = line[pri.end() :], line[pri.end() : pri.end() + 1]
        row["message"] = line
    if "A" <= first <= "Z":
        if match := _SYSLOG.match(line):
            month = MONTHS.get(match.group(1))
            if month is not None:
                day = int(match.group(2))
                row["timestamp"] = _stamp(month, day, match.group(3), _year(month, day, recorded_at))
                row["host"], row["program"] = match.group(4), match.group(5)
                row["pid"] = int(match.group(6)) if match.group(6) else None
                row["message"] = match.group(7)
                if row["program"] == "kernel":
                    _kernel_uptime(row)
                return row
        if (match := _CTIME.match(line)) and (month := MONTHS.get(match.group(1))):
            row["timestamp"] = _stamp(month, int(match.group(2)), match.group(3), int(match.group(4)))
            row["message"] = match.group(5)
        return row
    if "0" <= first <= "9":
        if " " in line[1:4] and (match := _RFC5424.match(line)):
            stamp, _, host, app, procid, message = match.groups()
            row["timestamp"] = None if stamp == "-" else stamp
            row["host"], row["program"] = _nil(host), _nil(app)
            row["pid"] = int(procid) if procid.isdigit() else None
            row["message"] = message or ""
        elif line[10:11] == "T" and (match := _RFC3339.match(line)):
            row["timestamp"], row["host"], row["program"] = match.group(1), match.group(2), match.group(3)
            row["pid"] = int(match.group(4)) if match.group(4) else None
            row["message"] = match.group(5)
            if row["program"] == "kernel":
                _kernel_uptime(row)
        elif line[4:5] == "-" and (match := _ISO_SPACE.match(line)):  # exim: 2026-11-21 23:51:32 [pid] ...
            offset = match.group(3)
            zone = f"{offset[:3]}:{offset[3:]}" if offset else ""
            row["timestamp"] = f"{match.group(1)}T{match.group(2)}{zone}"
            row["pid"] = int(match.group(4)) if match.group(4) else None
            row["message"] = match.group(5)
            if file is not None and "exim" in file:
                row["program"] = "exim"
        elif line[4:5] == "/" and (match := _NGINX.match(line)):
            year, mm, dd, clock, level, pid_text, message = match.groups()
            row["timestamp"] = f"{year}-{mm}-{dd}T{clock}"
            row["program"], row["pid"], row["message"] = "nginx", int(pid_text), f"[{level}] {message}"
        elif (match := _ACCESS.match(line)) and (month := MONTHS.get(match.group(2))):
            dd, _, year, clock, hours, minutes = match.groups()
            row["timestamp"] = f"{year}-{month:02d}-{dd}T{clock}{hours}:{minutes}"
        return row
    if first == "[":
        if match := _BRACKET_CTIME.match(line):
            month = MONTHS.get(match.group(1))
            if month is not None:
                stamp = _stamp(month, int(match.group(2)), match.group(3) + (match.group(4) or ""), int(match.group(5)))
                row["timestamp"], row["message"] = stamp, match.group(6)
                if pid := _APACHE_PID.match(row["message"]):  # apache: [module:level] [pid N:tid M] ...
                    row["pid"] = int(pid.group(1))
                elif file is None or "kern" in file or "dmesg" in file:
                    row["program"] = "kernel"
        elif match := _BRACKET_UPTIME.match(line):
            row["uptime"], row["program"], row["message"] = float(match.group(1)), "kernel", match.group(2)
        return row
    if first == "@" and (match := _TAI64N.match(line)):
        seconds = int(match.group(1), 16) - TAI64_EPOCH
        nanos = int(match.group(2), 16)
        if 0 <= seconds < 253402300800 and nanos < 10**9:  # before year 10000
            when = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(tzinfo=None)
            row["timestamp"] = f"{when.isoformat()}.{nanos // 1000:06d}Z"
        message = match.group(3)
        row["message"] = message
        if tagged := _TAGGED.match(message):  # multilog keeps the program's own "tcpserver: ..." prefix
            row["program"] = tagged.group(1)
            row["pid"] = int(tagged.group(2)) if tagged.group(2) else None
            row["message"] = tagged.group(3)
    return row


def _line_reader(recorded_at: dt.datetime | None) -> Callable[[str, int, str | None], LogLine | None]:
    """``read(line, line_no, file)``: the line's row, or None for a line that is no log line."""
    syslog = _SYSLOG.match
    days: dict[tuple[str, str], str | None] = {}  # ("Nov", "8") -> "2026-11-08T"

    def read(line: str, line_no: int, file: str | None) -> LogLine | None:
        first = line[:1]
        if not first or (first in "p[-N" and _skip(line)):
            return None
        # Classic syslog is most of any log: matched here, with one date string per day, not per line.
        if "A" <= first <= "Z" and (match := syslog(line)):
            month, day, time, host, program, pid, message = match.groups()
            key = (month, day)
            if key not in days:
                number = MONTHS.get(month)
                days[key] = None if number is None else _stamp(
                    number, int(day), "", _year(number, int(day), recorded_at))  # fmt: skip
            date = days[key]
            if date is not None:
                row: LogLine = {"file": file, "line_no": line_no, "timestamp": date + time, "uptime": None,
                                "host": host, "program": program, "pid": int(pid) if pid else None,
                                "message": message}  # fmt: skip
                if program == "kernel":
                    _kernel_uptime(row)
                return row
        return parse_line(line, line_no, file, recorded_at)

    return read


def parse_log_lines(text: str, *, recorded_at: dt.datetime | None = None) -> list[LogLine]:
    """Every log line of the output, under the file its ``==> path <==`` header names."""
    rows: list[LogLine] = []
    append, read = rows.append, _line_reader(recorded_at)
    for part in split_sections(text):
        file = part.title
        for line_no, line in enumerate(part.lines, start=part.first_line):
            if (row := read(line, line_no, file)) is not None:
                append(row)
    return rows


def parse_log_lines_at(
    text: str, spans: Iterable[tuple[int, int, int]], *, recorded_at: dt.datetime | None = None
) -> list[LogLine]:
    """The rows ``parse_log_lines(text)`` gives for these lines only, equal to its rows, in its order.

    ``spans`` are ``(line_no, start, end)``: a line's 1-based number and the character offsets of
    its first character and of its ``"\\n"`` (or the end of the text), lines being split on
    ``"\\n"`` as ``sections.lines_of`` splits them. Only the section headers are searched for in
    the rest of the text, so this costs the lines asked for, not the whole output.
    """
    spans = sorted(set(spans))
    if not spans:
        return []
    strip_cr = "\r" in text  # lines_of drops a line's "\r" terminator when the output has any
    headers = _headers(text, strip_cr)  # (offset of the header line, title), in order
    header_at = {offset for offset, _title in headers}
    header_starts = [offset for offset, _title in headers]
    rows: list[LogLine] = []
    read = _line_reader(recorded_at)
    for line_no, start, end in spans:
        if start in header_at:
            continue  # a header is no log line
        line = text[start:end]
        if strip_cr:
            line = line.removesuffix("\r")
        before = bisect.bisect_left(header_starts, start)
        file = headers[before - 1][1] if before else None
        if (row := read(line, line_no, file)) is not None:
            rows.append(row)
    return rows


def _headers(text: str, strip_cr: bool) -> list[tuple[int, str]]:
    """Every ``==> title <==`` line as ``split_sections`` recognises it: (offset of its first character, title)."""
    found = []
    at = text.find("==> ")
    while at >= 0:
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        if at == 0 or text[at - 1] == "\n":
            line = text[at:end]
            if strip_cr:
                line = line.removesuffix("\r")
            if line.endswith(" <==") and (match := _HEADER.fullmatch(line)):
                found.append((at, match.group(1)))
        at = text.find("==> ", end)
    return found


def _skip(line: str) -> bool:
    """A probe note, the runner's cut marker, or journalctl's own "-- Boot ... --" / "No entries" lines."""
    return is_noise(line) or (line.startswith("-- ") and line.endswith(" --")) or line in _JOURNAL_META
