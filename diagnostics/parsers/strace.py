"""strace -f -tt -T output -> ``syscalls`` and ``connect_waits``.

Our own parser: no well-kept library reads strace output (``strace-parser`` was last released in 2021,
``stracetools`` once), and what matters here is strace's own line discipline, which we handle:
``[pid N]`` prefixes (absent while only one process is traced), calls split across
``<unfinished ...>`` / ``<... name resumed>`` lines when several processes run (joined into one
record), calls still blocked when the capture window closed (``unfinished``), and ``strace:``
attach/detach messages that land in the middle of a call's line.

``connect_waits`` answers "how long did a connect() keep this process waiting": a blocking connect
is its own duration; a non-blocking one (``EINPROGRESS``, as ucspi-tcp's ident lookup does) lasts
until the wait on that descriptor gives up or fires, or the descriptor is closed. Waits are poll,
ppoll, select, pselect6 (glibc >= 2.33's select()) and epoll_wait/epoll_pwait on an epoll set whose
members ``epoll_ctl`` named (with no epoll_ctl traced, every pending connect of that process). A wake
with POLLERR/POLLHUP (EPOLLERR/EPOLLHUP) is a failed connect (``error``, ``hangup``), not ``ready``;
select cannot tell the two apart (a failed connect is "writable"). A connect still pending when the
trace window closed waited at least until the window's end, which the probe prints as ``probe: window
ended at HH:MM:SS.ffffff`` (without it: until the trace's last timestamp, or unknown).
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
    detail: str | None  # what follows result and errno: "(Timeout)", "([{fd=3, revents=POLLOUT|POLLERR}])"
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
    # Seconds the process waited; for an unfinished wait a lower bound (until the window's end), None if unknown.
    waited: float | None
    # connected, ready, timeout, error (POLLERR: the connect failed), hangup (POLLHUP alone), closed, open,
    # unfinished (still waiting when the window closed), or the errno (ETIMEDOUT, ECONNREFUSED...)
    outcome: str
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
_SCOPE = re.compile(r'sin6_scope_id=(?:if_nametoindex\("([^"]+)"\)|(\d+))')
_UNIX = re.compile(r'sun_path=(@?)"((?:[^"\\]|\\.)*)"')
_UNFINISHED = "<unfinished ...>"
_POLLS = frozenset({"poll", "ppoll"})
_SELECTS = frozenset({"select", "pselect6", "_newselect"})
_EPOLLS = frozenset({"epoll_wait", "epoll_pwait", "epoll_pwait2"})
_EPOLL_CTL = re.compile(r"\s*(\d+),\s*EPOLL_CTL_(ADD|MOD|DEL),\s*(\d+)")
_REVENTS = re.compile(r"\{fd=(\d+), revents=([A-Z|]+)\}")
_EPOLL_EVENTS = re.compile(r"\{events=([A-Z|]+), data=\{(?:u32|fd)=(\d+)")
_SELECTED = re.compile(r"\b(?:in|out|except) \[([0-9 ]+)\]")
_WINDOW_END = re.compile(r"^probe: window ended at (\d{1,2}:\d\d:\d\d(?:\.\d+)?)\S*\s*$", re.MULTILINE)
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


def _split_result(text: str) -> tuple[str, str, str | None, str | None, float | None] | None:
    """``args) = -1 ETIMEDOUT (Connection timed out) <75.1>``
    -> ("args", "-1", "ETIMEDOUT", "(Connection timed out)", 75.1)."""
    eq = text.rfind(" = ")
    if eq < 0:
        return None
    head, tail = text[:eq].rstrip(), text[eq + 3 :]
    duration = None
    if match := _DURATION.search(tail):
        duration = float(match.group(1))
        tail = tail[: match.start()]
    result, _, rest = tail.strip().partition(" ")
    errno = None
    if result in ("-1", "?"):
        word, _, after = rest.partition(" ")
        if _ERRNO.fullmatch(word):
            errno, rest = word, after
    return head.removesuffix(")"), result, errno, rest.strip() or None, duration


def _address(args: str) -> tuple[str | None, str | None, int | None]:
    if "sa_family=" not in args:
        return None, None, None
    family = match.group(1) if (match := _FAMILY.search(args)) else None
    port = int(match.group(1)) if (match := _PORT.search(args)) else None
    address = None
    if match := _ADDR4.search(args):
        address = match.group(1)
    elif match := _ADDR6.search(args):
        address = match.group(1)
        # a link-local address means nothing without its zone: "fe80::1%eth0", as the socket tables write it
        scope = _SCOPE.search(args) if address.lower().startswith("fe8") else None
        zone = (scope.group(1) or scope.group(2)) if scope else "0"
        if zone != "0":
            address = f"{address}%{zone}"
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
        "errno": None, "detail": None, "duration": None, "resumed": False, "unfinished": True,
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
    pid: int | None
    if prefix is not None:
        pid = known = int(prefix)
        if known not in live:
            live.append(known)
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
        more, call["result"], call["errno"], call["detail"], duration = split
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
    args, result, errno, detail, duration = split
    call = _record(line_no, pid, time, syscall, args)
    call.update({
        "result": result, "errno": errno, "detail": detail, "duration": duration, "unfinished": False,
        "end_line_no": line_no,
    })  # fmt: skip
    calls.append(call)


def _end(call: Syscall) -> float | None:
    start = _seconds(call["time"])
    if start is None or call["duration"] is None:
        return None
    return start + call["duration"]


def _woken(events: str) -> str:
    """The outcome of a wake with these poll/epoll event flags (``POLLOUT|POLLERR|POLLHUP``)."""
    flags = set(events.replace("EPOLL", "POLL").split("|"))
    if flags & {"POLLERR", "POLLNVAL"}:
        return "error"
    return "hangup" if "POLLHUP" in flags else "ready"


def _wake_outcomes(call: Syscall) -> dict[int, str] | None:
    """fd -> outcome for the descriptors a finished wait reports as woken; None if the call does not say."""
    name, detail = call["syscall"], call["detail"] or ""
    if name in _POLLS:
        found = _REVENTS.findall(detail)
        return {int(fd): _woken(events) for fd, events in found} if found or detail.startswith("(") else None
    if name in _SELECTS:
        found = _SELECTED.findall(detail)
        return {int(fd): "ready" for group in found for fd in group.split()} if found else None
    if name in _EPOLLS:  # strace writes the returned events into the second argument
        return {int(fd): _woken(events) for events, fd in _EPOLL_EVENTS.findall(call["args"])}
    return None


def connect_waits(calls: list[Syscall], *, window_end: str | None = None) -> list[ConnectWait]:
    """How long each connect() kept its process waiting, from the parsed calls.

    ``window_end``: the trace clock's "HH:MM:SS.ffffff" when the capture window closed (the probe's
    note); without it the latest time the trace shows stands in for it.
    """
    waits: list[ConnectWait] = []
    open_waits: dict[tuple[int | None, int], tuple[ConnectWait, float | None]] = {}
    epoll_sets: dict[tuple[int | None, int], set[int]] = {}  # (pid, epoll fd) -> fds epoll_ctl added
    capture_end = _seconds(window_end) if window_end else None
    noted = capture_end is not None
    if capture_end is None:
        capture_end = max((t for c in calls for t in (_seconds(c["time"]), _end(c)) if t is not None), default=None)

    def until_end(started: float | None, blocked: Syscall) -> float | None:
        """A wait still blocked in ``blocked`` at the end: a lower bound, None if the trace cannot say."""
        if not noted and (_elapsed(_seconds(blocked["time"]), capture_end) or 0) <= 0:
            return None  # no note, and nothing stamped after the call it is blocked in
        waited = _elapsed(started, capture_end)
        return waited if waited is not None and waited > 0 else None

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
                wait["waited"] = until_end(_seconds(call["time"]), call)
            elif call["errno"] == "EINPROGRESS" and call["fd"] is not None:
                open_waits[(pid, call["fd"])] = (wait, _seconds(call["time"]))
            else:
                wait["outcome"] = "connected" if call["result"] == "0" else (call["errno"] or call["result"] or "")
            continue
        if name == "epoll_ctl":
            if (ctl := _EPOLL_CTL.match(call["args"])) and call["result"] != "-1":
                members = epoll_sets.setdefault((pid, int(ctl.group(1))), set())
                (members.discard if ctl.group(2) == "DEL" else members.add)(int(ctl.group(3)))
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
        elif name in _EPOLLS and call["fd"] is not None:
            watched = epoll_sets.get((pid, call["fd"]))
            fds = sorted(watched) if watched is not None else [fd for owner, fd in open_waits if owner == pid]
        else:
            continue
        woken = None if call["unfinished"] or call["result"] in (None, "-1", "?", "0") else _wake_outcomes(call)
        for fd in fds:
            entry = open_waits.get((pid, fd))
            if entry is None:
                continue
            wait, started = entry
            if call["unfinished"]:
                wait["end_line_no"] = None
                wait["unfinished"], wait["outcome"] = True, "unfinished"
                wait["waited"] = until_end(started, call)
                del open_waits[(pid, fd)]
                continue
            if woken is not None and fd not in woken:
                continue  # another descriptor woke this call; this one is still waiting
            wait["end_line_no"] = call["end_line_no"]
            wait["waited"] = _elapsed(started, _end(call))
            if call["result"] == "0":
                wait["outcome"] = "timeout"
            elif call["result"] not in (None, "-1", "?"):
                wait["outcome"] = woken[fd] if woken is not None else "ready"
                del open_waits[(pid, fd)]
            else:
                wait["outcome"] = call["errno"] or "error"
    for wait, _started in open_waits.values():
        wait["outcome"] = wait["outcome"] or "open"  # never waited on nor closed within the capture
    return waits


def parse_strace(text: str) -> StraceFacts:
    calls = parse_syscalls(text)
    ends = _WINDOW_END.findall(text)
    return {"syscalls": calls, "connect_waits": connect_waits(calls, window_end=ends[-1] if ends else None)}
