"""The host's own socket limits (the sockets probe's ``/proc/sys limits`` section) -> ``tcp_limits``, and
the counts of the same output judged against them.

Our own parser (``name value...`` lines the probe prints). One row per output. Where the section is
missing (older evidence, a host that hides /proc/sys) the kernel's defaults stand in and
``limits_source`` says ``default``: 32768-60999 for the ephemeral port range; the other limits stay
None. Ratios, so signatures compare a count with this host's limit and not with a number written for a
big server:

* ``time_wait_ratio``: TIME-WAIT sockets / ephemeral ports (each outgoing one holds a port for 60 s);
* ``port_holding_ratio``: TIME-WAIT + ESTAB + SYN-SENT sockets / ephemeral ports (an upper bound: some
  are incoming);
* ``busiest_peer_ratio``: the sockets towards the one peer address:port that holds most local ports of
  the range / ephemeral ports. Ports run out per destination, so this is the exhaustion measure; it
  counts the listed sockets (the listing may be cut on a huge host: then it is a lower bound);
* ``tw_buckets_ratio``: TIME-WAIT sockets / net.ipv4.tcp_max_tw_buckets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from diagnostics.parsers.sections import Section, to_int

DEFAULT_PORT_RANGE = (32768, 60999)  # Linux's net.ipv4.ip_local_port_range since 2.6
PORT_HOLDING = ("TIME-WAIT", "ESTAB", "SYN-SENT")


class TcpLimits(TypedDict):
    limits_source: str  # "host" (read from /proc/sys) or "default" (the kernel's defaults assumed)
    port_range_low: int
    port_range_high: int
    ephemeral_ports: int
    somaxconn: int | None
    max_syn_backlog: int | None
    max_tw_buckets: int | None
    time_wait: int
    time_wait_ratio: float
    port_holding: int
    port_holding_ratio: float
    busiest_peer: str | None  # "address:port" ("[v6]:port")
    busiest_peer_sockets: int
    busiest_peer_ratio: float
    tw_buckets_ratio: float | None


def _read(section: Section | None) -> dict[str, list[int]]:
    values: dict[str, list[int]] = {}
    for _, line in section.numbered() if section is not None else ():
        name, *numbers = line.split()
        parsed = [to_int(n) for n in numbers]
        ints = [n for n in parsed if n is not None]
        if parsed and len(ints) == len(parsed):
            values[name] = ints
    return values


def backlog_ratio(socket: Mapping[str, Any]) -> float | None:
    """A LISTEN socket's accept queue (ss Recv-Q) over its backlog (Send-Q), None for other sockets."""
    if socket.get("state") != "LISTEN" or not socket.get("send_q") or socket.get("recv_q") is None:
        return None
    return round(socket["recv_q"] / socket["send_q"], 4)


def tcp_limits(section: Section | None, sockets: Sequence[Mapping[str, Any]], states: dict[str, int]) -> TcpLimits:
    values = _read(section)
    port_range = values.get("net.ipv4.ip_local_port_range", [])
    known = len(port_range) == 2 and 0 < port_range[0] <= port_range[1] <= 65535
    low, high = (port_range[0], port_range[1]) if known else DEFAULT_PORT_RANGE
    ports = high - low + 1
    peers: dict[str, int] = {}
    for socket in sockets:
        local, peer, address = socket.get("local_port"), socket.get("peer_port"), socket.get("peer_address")
        if socket.get("state") == "LISTEN" or local is None or peer is None or not low <= local <= high:
            continue
        key = f"[{address}]:{peer}" if address and ":" in address else f"{address}:{peer}"
        peers[key] = peers.get(key, 0) + 1
    busiest = max(peers.items(), key=lambda item: item[1], default=(None, 0))
    time_wait = states.get("TIME-WAIT", 0)
    holding = sum(states.get(state, 0) for state in PORT_HOLDING)

    def one(name: str) -> int | None:
        return next(iter(values.get(name, ())), None)

    buckets = one("net.ipv4.tcp_max_tw_buckets")

    return {
        "limits_source": "host" if known else "default", "port_range_low": low, "port_range_high": high,
        "ephemeral_ports": ports, "somaxconn": one("net.core.somaxconn"),
        "max_syn_backlog": one("net.ipv4.tcp_max_syn_backlog"), "max_tw_buckets": buckets,
        "time_wait": time_wait, "time_wait_ratio": round(time_wait / ports, 4), "port_holding": holding,
        "port_holding_ratio": round(holding / ports, 4), "busiest_peer": busiest[0],
        "busiest_peer_sockets": busiest[1], "busiest_peer_ratio": round(busiest[1] / ports, 4),
        "tw_buckets_ratio": round(time_wait / buckets, 4) if buckets else None,
    }  # fmt: skip
