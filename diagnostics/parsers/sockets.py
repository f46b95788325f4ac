"""TCP socket tables (``ss -tanpo``, ``netstat -tanpo``, ``/proc/net/tcp``) and listeners (``ss -ltnup``).

The sockets probe runs ``ss -tanpoi`` and folds each socket's ``lastsnd:``/``lastrcv:`` (from the ``-i`` line)
onto the socket's own line; older recordings without them parse as before, with those fields None.

Our own parser, because the library that covers these formats does not do the job: jc 1.26's ``ss``
parser raises on ``ss -t`` output (it expects the Netid column that ``-t`` drops) and on ``-o``
timers (``timer:(timewait,,0)``), and its ``netstat`` parser takes 2.3 s for 5.7 MB (50,000 sockets)
where the socket probe may return 4 MB of CLOSE-WAIT sockets; a split per line here takes 0.3 s.
States are normalised to ss's spelling whichever tool produced them (``CLOSE_WAIT`` -> ``CLOSE-WAIT``,
``ESTABLISHED`` -> ``ESTAB``, /proc's ``08`` -> ``CLOSE-WAIT``); ss's ``UNCONN`` for a TCP socket is
the kernel's CLOSE state and is stored as ``CLOSE``. Owners come in both of ss's spellings,
``users:(("sshd",pid=1256,fd=3))`` and, from iproute2 before 3.15 (RHEL/CentOS 6 and 7),
``users:(("sshd",1256,3))``. Addresses lose ss's brackets; a ``%zone`` stays on a link-local IPv6
address, where it is part of the address (``[fe80::1]%eth0:123`` -> ``fe80::1%eth0``), and is dropped
elsewhere, where it only names the device the socket is bound to (``127.0.0.53%lo:53``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import NotRequired, TypedDict

from diagnostics.parsers import limits
from diagnostics.parsers.sections import Section, section, split_sections, to_int


class Socket(TypedDict):
    line_no: int
    state: str
    recv_q: int | None
    send_q: int | None
    local_address: str | None
    local_port: int | None
    peer_address: str | None
    peer_port: int | None  # None for "*" (a listener's peer)
    process: str | None  # the first owner ss names (users:(("varnishd",pid=..,fd=..))), netstat's program
    pid: int | None
    timer: str | None  # ss's timer:(...) contents, netstat's "keepalive (7199.91/0/0)", /proc's timer kind
    fd: int | None  # the first owner's descriptor for the socket (ss only)
    last_send_ms: int | None  # ss -i lastsnd: ms since data last went out (None where the listing lacks it)
    last_recv_ms: int | None  # ss -i lastrcv: ms since data last came in
    # LISTEN only: accept queue (Recv-Q) / backlog (Send-Q), see parsers.limits; parse_sockets adds it to every row
    backlog_ratio: NotRequired[float | None]


class SocketState(TypedDict):
    state: str
    count: int


class Listener(TypedDict):
    line_no: int
    proto: str  # tcp or udp
    local_address: str | None
    local_port: int | None
    process: str | None
    pid: int | None
    fd: int | None  # the first owner's descriptor for the socket (ss only)


class SocketFacts(TypedDict):
    sockets: list[Socket]
    socket_states: list[SocketState]
    tcp_limits: list[limits.TcpLimits]


STATES = {
    "ESTAB": "ESTAB", "ESTABLISHED": "ESTAB", "SYN-SENT": "SYN-SENT", "SYN_SENT": "SYN-SENT",
    "SYN-RECV": "SYN-RECV", "SYN_RECV": "SYN-RECV", "NEW-SYN-RECV": "SYN-RECV",
    "FIN-WAIT-1": "FIN-WAIT-1", "FIN_WAIT1": "FIN-WAIT-1", "FIN-WAIT-2": "FIN-WAIT-2", "FIN_WAIT2": "FIN-WAIT-2",
    "TIME-WAIT": "TIME-WAIT", "TIME_WAIT": "TIME-WAIT", "CLOSE-WAIT": "CLOSE-WAIT", "CLOSE_WAIT": "CLOSE-WAIT",
    "LAST-ACK": "LAST-ACK", "LAST_ACK": "LAST-ACK", "LISTEN": "LISTEN", "CLOSING": "CLOSING",
    "CLOSE": "CLOSE", "UNCONN": "CLOSE",
}  # fmt: skip
# /proc/net/tcp "st" column (include/net/tcp_states.h).
PROC_STATES = {
    "01": "ESTAB", "02": "SYN-SENT", "03": "SYN-RECV", "04": "FIN-WAIT-1", "05": "FIN-WAIT-2", "06": "TIME-WAIT",
    "07": "CLOSE", "08": "CLOSE-WAIT", "09": "LAST-ACK", "0A": "LISTEN", "0B": "CLOSING", "0C": "SYN-RECV",
}  # fmt: skip
PROC_TIMERS = {"1": "on", "2": "keepalive", "3": "timewait", "4": "probe"}

_SUMMARY = re.compile(r"state (\S+) (\d+)")
_USERS = re.compile(r'users:\(\("((?:[^"\\]|\\.)*)",(?:pid=)?(\d+),(?:fd=)?(\d+)\)')
_TIMER = re.compile(r"timer:\(([^)]*)\)")
_LAST = re.compile(r"\blast(snd|rcv):(\d+)\b")
_NETSTAT_TAIL = re.compile(r"(?:(\d+)/(.*?)|-)\s*(?:((?:off|on|keepalive|timewait|probe|unkn-\d+) \([^)]*\)))?\s*")


def state_name(raw: str) -> str:
    """ss's spelling of a TCP state from any tool's spelling (unknown names pass through upper-cased)."""
    return STATES.get(raw.upper(), raw.upper())


def split_endpoint(text: str) -> tuple[str | None, int | None]:
    """``10.0.0.1:25``, ``[::1]:25``, ``*:22``, ``0.0.0.0:*``, ``127.0.0.53%lo:53``, ``:::22``,
    ``[fe80::1]%eth0:123`` -> (address, port): no brackets, a zone only on a link-local IPv6 address."""
    host, colon, port = text.rpartition(":")
    if not colon:
        return text or None, None
    host, _, zone = host.partition("%")  # ss writes [fe80::1]%eth0, others [fe80::1%eth0]
    if host.startswith("["):
        host = host[1:].removesuffix("]")
        zone = zone.removesuffix("]")
    if zone and _link_local(host):
        host = f"{host}%{zone}"
    return (host or None), (int(port) if port.isdigit() else None)


def _link_local(address: str) -> bool:
    try:
        return ipaddress.IPv6Address(address).is_link_local
    except ValueError:
        return False


def _program(text: str) -> str | None:
    """netstat's "PID/Program name" program part (argv[0], truncated): first word, without a path."""
    word = text.split(None, 1)[0].rstrip(":") if text.strip() else ""
    return word.rsplit("/", 1)[-1] or None


def _ss_row(line_no: int, state: str, parts: list[str]) -> Socket | None:
    if len(parts) < 5:
        return None
    recv_q, send_q, local, peer = parts[1], parts[2], parts[3], parts[4]
    rest = parts[5] if len(parts) > 5 else ""
    local_address, local_port = split_endpoint(local)
    peer_address, peer_port = split_endpoint(peer)
    users = _USERS.search(rest) if "users:" in rest else None
    timer = _TIMER.search(rest) if "timer:" in rest else None
    last = dict(_LAST.findall(rest)) if "last" in rest else {}
    return {
        "line_no": line_no, "state": state_name(state), "recv_q": to_int(recv_q), "send_q": to_int(send_q),
        "local_address": local_address, "local_port": local_port, "peer_address": peer_address,
        "peer_port": peer_port, "process": users.group(1) if users else None,
        "pid": int(users.group(2)) if users else None, "timer": timer.group(1) if timer else None,
        "fd": int(users.group(3)) if users else None,
        "last_send_ms": int(last["snd"]) if "snd" in last else None,
        "last_recv_ms": int(last["rcv"]) if "rcv" in last else None,
    }  # fmt: skip


def _ss(section: Section) -> list[Socket]:
    rows: list[Socket] = []
    for line_no, line in section.numbered():
        parts = line.split(None, 5)
        if not parts or parts[0] in ("State", "Netid", "Recv-Q"):
            continue
        if parts[0] in ("tcp", "udp", "raw", "u_str", "u_dgr", "u_seq") and len(parts) > 1:
            parts = line.split(None, 6)[1:]  # a Netid column (ss -a): drop it
        if (row := _ss_row(line_no, parts[0], parts)) is not None:
            rows.append(row)
    return rows


def _netstat(section: Section) -> list[Socket]:
    rows: list[Socket] = []
    for line_no, line in section.numbered():
        parts = line.split(None, 6)
        if len(parts) < 6 or not parts[0].startswith("tcp"):
            continue
        local_address, local_port = split_endpoint(parts[3])
        peer_address, peer_port = split_endpoint(parts[4])
        tail = _NETSTAT_TAIL.fullmatch(parts[6]) if len(parts) > 6 else None
        rows.append({
            "line_no": line_no, "state": state_name(parts[5]), "recv_q": to_int(parts[1]),
            "send_q": to_int(parts[2]), "local_address": local_address, "local_port": local_port,
            "peer_address": peer_address, "peer_port": peer_port,
            "process": _program(tail.group(2)) if tail and tail.group(2) else None,
            "pid": int(tail.group(1)) if tail and tail.group(1) else None,
            "timer": tail.group(3) if tail else None, "fd": None, "last_send_ms": None, "last_recv_ms": None,
        })  # fmt: skip
    return rows


def proc_address(text: str) -> tuple[str | None, int | None]:
    """/proc/net/tcp{,6}'s ``0100007F:0019`` (little-endian words, hex port) -> ("127.0.0.1", 25)."""
    host, _, port = text.partition(":")
    try:
        raw = bytes.fromhex(host)
        number = int(port, 16)
    except ValueError:
        return None, None
    if len(raw) == 4:
        address = str(ipaddress.IPv4Address(raw[::-1]))
    elif len(raw) == 16:
        v6 = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
        address = f"::ffff:{v6.ipv4_mapped}" if v6.ipv4_mapped else str(v6)  # as ss prints it
    else:
        return None, None
    return address, number


def _proc(section: Section) -> list[Socket]:
    rows: list[Socket] = []
    for line_no, line in section.numbered():
        parts = line.split(None, 6)
        if len(parts) < 6 or not parts[0].endswith(":") or parts[0] == "sl":
            continue
        local_address, local_port = proc_address(parts[1])
        peer_address, peer_port = proc_address(parts[2])
        tx, _, rx = parts[4].partition(":")
        timer = PROC_TIMERS.get(parts[5].partition(":")[0].lstrip("0"))
        rows.append({
            "line_no": line_no, "state": PROC_STATES.get(parts[3].upper(), parts[3].upper()),
            "recv_q": int(rx, 16) if _hex(rx) else None, "send_q": int(tx, 16) if _hex(tx) else None,
            "local_address": local_address, "local_port": local_port, "peer_address": peer_address,
            "peer_port": peer_port or None, "process": None, "pid": None, "timer": timer, "fd": None,
            "last_send_ms": None, "last_recv_ms": None,
        })  # fmt: skip
    return rows


def _hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def parse_sockets(text: str) -> SocketFacts:
    """The sockets probe: its ``state NAME COUNT`` summary and the socket list of whichever tool ran."""
    sections = split_sections(text)
    states: dict[str, int] = {}
    sockets: list[Socket] = []
    for part in sections:
        title = part.title or ""
        if part.title is None:
            for _, line in part.numbered():
                if match := _SUMMARY.fullmatch(line.strip()):
                    name = state_name(match.group(1))
                    states[name] = states.get(name, 0) + int(match.group(2))
        elif title.startswith("ss"):
            sockets += _ss(part)
        elif title.startswith("netstat"):
            sockets += _netstat(part)
        elif title.startswith("/proc/net/tcp"):
            sockets += _proc(part)
    if not states:
        for socket in sockets:
            states[socket["state"]] = states.get(socket["state"], 0) + 1
    for socket in sockets:  # added last, so every row builder above stays as it is
        socket["backlog_ratio"] = limits.backlog_ratio(socket)
    return {
        "sockets": sockets,
        "socket_states": [{"state": name, "count": count} for name, count in sorted(states.items())],
        "tcp_limits": [limits.tcp_limits(section(sections, "/proc/sys limits"), sockets, states)],
    }


def parse_listening(text: str) -> list[Listener]:
    """``ss -ltnup`` or ``netstat -ltnup``: one row per listening TCP socket or bound UDP socket."""
    rows: list[Listener] = []
    for part in split_sections(text):
        for line_no, line in part.numbered():
            parts = line.split(None, 6)
            if len(parts) < 5 or parts[0] in ("Netid", "Proto", "State"):
                continue
            proto = parts[0].rstrip("6")
            if proto not in ("tcp", "udp"):
                continue
            if parts[1].isdigit():  # netstat: Proto Recv-Q Send-Q Local Foreign [State] PID/Program
                local = parts[3]
                tail = line.split(None, 6 if proto == "tcp" else 5)[-1] if len(parts) > 5 else ""
                owner = _NETSTAT_TAIL.fullmatch(tail) if tail and tail[0] in "0123456789-" else None
                process = _program(owner.group(2)) if owner and owner.group(2) else None
                pid = int(owner.group(1)) if owner and owner.group(1) else None
                fd = None
            else:  # ss: Netid State Recv-Q Send-Q Local Peer Process
                local = parts[4]
                users = _USERS.search(parts[6]) if len(parts) > 6 else None
                process = users.group(1) if users else None
                pid = int(users.group(2)) if users else None
                fd = int(users.group(3)) if users else None
            address, port = split_endpoint(local)
            rows.append(
                {
                    "line_no": line_no,
                    "proto": proto,
                    "local_address": address,
                    "local_port": port,
                    "process": process,
                    "pid": pid,
                    "fd": fd,
                }
            )
    return rows
