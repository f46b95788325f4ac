"""strace -f -tt -T output -> ``syscalls`` and ``connect_waits``.

Our own parser: no well-kept library reads strace output (``strace-parser`` was last released in 2021,
``stracetools`` once), and what matters here is strace's own line discipline, which we handle:
``[pid N]`` prefixes (absent while only one process is traced), calls split across
``<unfinished ...>`` / ``<... name resumed>`` lines when several processes run (joined into one
record), calls still blocked when the capture window closed (``unfinished``), and ``strace:``
attach/detach messages that land in the middle of a call's line.

``connect_waits`` answers "how long did a connect() keep this process waiting": a blocking connect
is its own duration; a non-blocking one (``EINPROGRESS``, as ucspi-tcp's ident lookup does) lasts
until the poll()/select() on that descriptor gives up or fires, or the descriptor is closed.
"""

from __future__ import annotations

import re
from typing import TypedDict

from diagnostics.parsers.sections import is_noise, lines_of


class Syscall(TypedDict):
    line_no: int  # the line the call starts on
    end_line_no: int | None  # the line it returned on (a resumed call's second line); None if unfinished
    pid: int | None
    time: str | None  # "HH:MM:SS.ffffff" as strace -tt prints it
    syscall: str
    args: str
    fd: int | None  # first argument when it is a descriptor (poll: the first polled fd)
    family: str | None  # AF_INET, AF_INET6, AF_UNIX... of a socket address argument
    address: str | None
    port: int | None
    result: str | None  # "-1", "0", "?", "0x7f..."; None if unfinished
    errno: str | None  # "ETIMEDOUT", "EINPROGRESS"...
    duration: float | None  # seconds, from the <0.000123> suffix
    resumed: bool  # the call was split across <unfinished ...> / <... resumed> lines
    unfinished: bool  # still running when the capture ended


class ConnectWait(TypedDict):
    line_no: int  # the connect() line
    end_line_no: int | None  # the line that ended the wait
    pid: int | None
    fd: int | None
    family: str | None
    address: str | None
    port: int | None
    time: str | None
    blocking: bool  # the connect() itself blocked (no EINPROGRESS)
    waited: float | None  # seconds the process waited; for an unfinished wait, until the end of the capture
    outcome: str  # connected, ready, timeout, closed, open, unfinished, or the errno (ETIMEDOUT, ECONNREFUSED...)
    unfinished: bool


class StraceFacts(TypedDict):
    syscalls: list[Syscall]
    connect_waits: list[ConnectWait]


_LINE = re.compile(r"(?:\[pid\s+(\d+)\]\s+)?(?:(\d{1,2}:\d\d:\d\d(?:\.\d+)?)\s+)?(.*)")
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)")
_RESUMED = re.compile(r"<\.\.\. ([A-Za-z_][A-Za-z0-9_]*) resumed>\s?(.*)")
_STRACE_MSG = re.compile(r"strace: Process (\d+) (attached|detached|suspended)")
_DURATION = re.compile(r"\s*<(\d+\.\d+)>\s*$")
_ERRNO = re.compile(r"E[A-Z0-9_]+")
_FD = re.compile(r"\s*(-?\d+)(?:<[^>]*>)?\s*(?:,|$)")
_POLL_FD = re.compile(r"\{fd=(-?\d+)")
_FD_SET = re.compile(r"\[([0-9 ]+)\]")
_FAMILY = re.compile(r"sa_family=(AF_[A-Z0-9]+)")
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR4 = re.compile(r'sin_addr=inet_addr\("([^"]*)"\)')
_ADDR6 = re.compile(r'inet_pton\(AF_INET6,\s*"([^"]*)"')
_UNIX = re.compile(r'sun_path=(@?)"((?:[^"\\]|\\.)*)"')
_UNFINISHED = "<unfinished ...>"
_POLLS = frozenset({"poll", "ppoll"})
_SELECTS = frozenset({"select", "pselect6", "_newselect"})
_DAY = 86400.0


def _seconds(time: str | None) -> float | None:
    if time is None:
        return None
    hours, minutes, seconds = time.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _elapsed(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    delta = end - start
    return round(delta + _DAY if delta < -_DAY / 2 else delta, 6)


def _split_result(text: str) -> tuple[str, str, str | None, float | None] | None:
    """``args) = -1 ETIMEDOUT (Connection timed out) <75.1>`` -> ("args", "-1", "ETIMEDOUT", 75.1)."""
    eq = text.rfind(" = ")
    if eq < 0:
        return None
    head, tail = text[:eq].rstrip(), text[eq + 3 :]
    duration = None
    if match := _DURATION.search(tail):
        duration = float(match.group(1))
        tail = tail[: match.start()]
    parts = tail.split(" ", 2)
    result = parts[0]
    errno = parts[1] if len(parts) > 1 and result in ("-1", "?") and _ERRNO.fullmatch(parts[1]) else None
    return head.removesuffix(")"), result, errno, duration


def _address(args: str) -> tuple[str | None, str | None, int | None]:
    if "sa_family=" not in args:
        return None, None, None
    family = match.group(1) if (match := _FAMILY.search(args)) else None
    port = int(match.group(1)) if (match := _PORT.search(args)) else None
    address = None
    if (match := _ADDR4.search(args)) or (match := _ADDR6.search(args)):
        address = match.group(1)
    elif match := _UNIX.search(args):
        address = match.group(1) + match.group(2)
    return family, address, port


def _fd(syscall: str, args: str) -> int | None:
    if syscall in _POLLS:
        match = _POLL_FD.search(args)
    elif syscall in _SELECTS:
        return None
    else:
        match = _FD.match(args)
    return int(match.group(1)) if match else None


def _record(line_no: int, pid: int | None, time: str | None, syscall: str, args: str) -> Syscall:
    family, address, port = _address(args)
    return {
        "line_no": line_no, "end_line_no": None, "pid": pid, "time": time, "syscall": syscall, "args": args,
        "fd": _fd(syscall, args), "family": family, "address": address, "port": port, "result": None,
        "errno": None, "duration": None, "resumed": False, "unfinished": True,
    }  # fmt: skip


def parse_syscalls(text: str) -> list[Syscall]:
    """One record per system call, in the order the calls started."""
    calls: list[Syscall] = []
    pending: dict[int | None, Syscall] = {}  # pid -> its call waiting for "<... resumed>"
    live: list[int] = []  # traced pids in attach order; an unprefixed line belongs to the only one
    for line_no, line in enumerate(lines_of(text), start=1):
        if not line or is_noise(line):
            continue
        message = None
        if "strace: " in line:
            cut = line.find("strace: ")
            message = _STRACE_MSG.match(line, cut)
            line = line[:cut]  # a message glued into a call's line ends that line
        if line.strip():
            _parse_line(line_no, line, calls, pending, live)
        if message is not None:
            pid = int(message.group(1))
            if message.group(2) == "attached":
                if pid not in live:
                    live.append(pid)
            elif pid in live:
                live.remove(pid)
    return calls


def _parse_line(
    line_no: int, line: str, calls: list[Syscall], pending: dict[int | None, Syscall], live: list[int]
) -> None:
    """One line of a call: a complete call, the start of one, or the end of one that started earlier."""
    match = _LINE.fullmatch(line)
    if match is None:  # pragma: no cover - the pattern accepts any line
        return
    prefix, time, rest = match.groups()  # time is None only without -tt, or on a line cut by the runner
    if prefix is not None:
        pid: int | None = int(prefix)
        if pid not in live:
            live.append(pid)
    else:
        pid = live[0] if len(live) == 1 else None
    if rest.startswith("+++ ") or rest.startswith("--- "):
        if rest.startswith("+++ ") and pid in live:
            live.remove(pid)
        return
    if rest.startswith("<... "):
        resumed = _RESUMED.match(rest)
        if resumed is None:
            return
        call = pending.pop(pid, None)
        if call is None or call["syscall"] != resumed.group(1):
            call = _record(line_no, pid, None, resumed.group(1), "")  # started before the capture
            calls.append(call)
        call["resumed"] = True
        tail = resumed.group(2)
        if tail.rstrip().endswith(_UNFINISHED):
            pending[pid] = call
            return
        split = _split_result(tail)
        if split is None:
            return
        more, call["result"], call["errno"], duration = split
        call["args"] += more
        family, address, port = _address(call["args"])
        call["family"], call["address"], call["port"] = family, address, port
        if call["fd"] is None:
            call["fd"] = _fd(call["syscall"], call["args"])
        if duration is None:
            duration = _elapsed(_seconds(call["time"]), _seconds(time))
        call["duration"], call["unfinished"], call["end_line_no"] = duration, False, line_no
        return
    call_match = _CALL.match(rest)
    if call_match is None:
        return
    syscall, remainder = call_match.groups()
    stripped = remainder.rstrip()
    if stripped.endswith(_UNFINISHED) or " = " not in remainder:
        args = stripped.removesuffix(_UNFINISHED).removesuffix(" ") if stripped.endswith(_UNFINISHED) else remainder
        call = _record(line_no, pid, time, syscall, args)
        calls.append(call)
        pending[pid] = call
        return
    split = _split_result(remainder)
    if split is None:  # pragma: no cover - " = " is in remainder
        return
    args, result, errno, duration = split
    call = _record(line_no, pid, time, syscall, args)
    call.update(result=result, errno=errno, duration=duration, unfinished=False, end_line_no=line_no)
    calls.append(call)


def _end(call: Syscall) -> float | None:
    start = _seconds(call["time"])
    if start is None or call["duration"] is None:
        return None
    return start + call["duration"]


def connect_waits(calls: list[Syscall]) -> list[ConnectWait]:
    """How long each connect() kept its process waiting, from the parsed calls."""
    waits: list[ConnectWait] = []
    open_waits: dict[tuple[int | None, int], tuple[ConnectWait, float | None]] = {}
    capture_end = max((t for c in calls for t in (_seconds(c["time"]), _end(c)) if t is not None), default=None)
    for call in calls:
        name, pid = call["syscall"], call["pid"]
        if name == "connect":
            if call["fd"] is not None and (previous := open_waits.pop((pid, call["fd"]), None)):
                previous[0]["outcome"] = previous[0]["outcome"] or "closed"
            wait: ConnectWait = {
                "line_no": call["line_no"], "end_line_no": call["end_line_no"], "pid": pid, "fd": call["fd"],
                "family": call["family"], "address": call["address"], "port": call["port"], "time": call["time"],
                "blocking": call["errno"] != "EINPROGRESS", "waited": call["duration"], "outcome": "",
                "unfinished": call["unfinished"],
            }  # fmt: skip
            waits.append(wait)
            if call["unfinished"]:
                wait["outcome"] = "unfinished"
                wait["waited"] = _elapsed(_seconds(call["time"]), capture_end)
            elif call["errno"] == "EINPROGRESS" and call["fd"] is not None:
                open_waits[(pid, call["fd"])] = (wait, _seconds(call["time"]))
            else:
                wait["outcome"] = "connected" if call["result"] == "0" else (call["errno"] or call["result"] or "")
            continue
        if not open_waits:
            continue
        if name == "close" and call["fd"] is not None:
            if entry := open_waits.pop((pid, call["fd"]), None):
                entry[0]["outcome"] = entry[0]["outcome"] or "closed"
            continue
        if name in _POLLS:
            fds = [int(fd) for fd in _POLL_FD.findall(call["args"])]
        elif name in _SELECTS:
            fds = [int(fd) for group in _FD_SET.findall(call["args"]) for fd in group.split()]
        else:
            continue
        for fd in fds:
            entry = open_waits.get((pid, fd))
            if entry is None:
                continue
            wait, started = entry
            wait["end_line_no"] = call["end_line_no"]
            if call["unfinished"]:
                wait["unfinished"], wait["outcome"] = True, "unfinished"
                wait["waited"] = _elapsed(started, capture_end)
                del open_waits[(pid, fd)]
                continue
            wait["waited"] = _elapsed(started, _end(call))
            if call["result"] == "0":
                wait["outcome"] = "timeout"
            elif call["result"] not in (None, "-1", "?"):
                wait["outcome"] = "ready"
                del open_waits[(pid, fd)]
            else:
                wait["outcome"] = call["errno"] or "error"
    for wait, _started in open_waits.values():
        wait["outcome"] = wait["outcome"] or "open"  # never waited on nor closed within the capture
    return waits


def parse_strace(text: str) -> StraceFacts:
    calls = parse_syscalls(text)
    return {"syscalls": calls, "connect_waits": connect_waits(calls)}
