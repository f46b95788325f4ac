"""tcpdump ``-w -`` captures -> ``flows`` (one per TCP connection) and ``packets_summary``.

dpkt decodes the packets (Ethernet, Linux cooked v1/v2 from ``-i any``, loopback and raw IP; IPv4
and IPv6; TCP). The 16-byte pcap record loop around it is ours: ``dpkt.pcap.Reader`` silently hands
back a short final record, and a capture killed at its window or cut by the runner's output cap
must say ``truncated``; when the runner kept the head and tail of a capture with
``[... N bytes not kept ...]`` between them, we find the first whole record of the tail again and
carry on, so the packets at the end (the RST, the last retransmit) are not lost.

A flow is a TCP 4-tuple, oriented by who sent the first SYN (or, with no SYN captured, the higher
port is taken for the client). ``rst_out_of_window`` marks a RST whose sequence number is not exactly
the receiver's next expected one (the later of what the receiver last acknowledged and where the
sender's own sequence space ended): Linux (RFC 5961) ignores such a RST, except that current kernels
accept exactly ``expected - 1`` in CLOSE-WAIT, LAST-ACK and CLOSING (the Cisco ASA off-by-one).
``rst_offset`` is that RST's sequence number minus the expected one (-1 for the ASA).

``tcpdump -i any`` (Linux cooked v1/v2) records a packet once per interface it crosses: on a host
with a bridge (Docker, KVM, LXC) a container's SYN is seen on its veth and on the bridge, byte for
byte, microseconds apart. Counted twice, a connection refused at once would look like a SYN and its
retransmission with no SYN-ACK. So in cooked captures a packet whose IP bytes (TTL/hop limit and
IPv4 checksum left out, which routing changes) equal those of one seen within ``DUPLICATE_WINDOW``
on another interface (SLL2 names it; SLL v1 does not, there the window alone decides) is a copy:
``duplicates`` counts it and flows leave it out. A real retransmission is never such a copy: it
comes at least an RTO later (200 ms minimum on Linux) and carries a new IPv4 id or TCP timestamp.
A copy NATed on its way out (Docker's MASQUERADE) has other addresses and is its own flow.
"""

from __future__ import annotations

import re
import socket
import struct
from collections import deque
from typing import TypedDict

import dpkt


class Flow(TypedDict):
    client: str
    client_port: int
    server: str
    server_port: int
    packets: int
    payload_bytes: int
    syns: int  # SYNs without ACK, retransmissions included
    synacks: int
    retransmitted_syns: int  # SYNs repeating an earlier SYN's sequence number (unanswered attempts)
    handshake_completed: bool
    resets: int
    rst_out_of_window: bool
    rst_offset: int | None  # sequence number of the first out-of-window RST minus the expected one
    fins: int
    first_ts: float
    last_ts: float
    duration: float


class PacketsSummary(TypedDict):
    total: int
    tcp: int
    udp: int
    icmp: int
    other: int  # not IP, or not decodable
    duplicates: int  # copies of a packet already seen on another interface (cooked captures); not in tcp/udp/...
    truncated: bool  # the capture ended mid-record, or bytes were cut out of its middle
    linktype: int | None
    first_ts: float | None
    last_ts: float | None


class PcapFacts(TypedDict):
    flows: list[Flow]
    packets_summary: list[PacketsSummary]


_MAGICS = {  # first four bytes -> (byte order, fraction divisor)
    b"\xd4\xc3\xb2\xa1": ("<", 1e6), b"\xa1\xb2\xc3\xd4": (">", 1e6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9), b"\xa1\xb2\x3c\x4d": (">", 1e9),
}  # fmt: skip
_CUT = re.compile(rb"\n\[\.\.\. \d+ bytes not kept \.\.\.\]\n")
MAX_CAPLEN = 262144  # tcpdump's largest snapshot length
_SEQ = 1 << 32
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
_LINKS = {
    1: dpkt.ethernet.Ethernet,
    113: dpkt.sll.SLL,
    276: dpkt.sll2.SLL2,
    0: dpkt.loopback.Loopback,
    108: dpkt.loopback.Loopback,
}
_RAW_IP = frozenset({12, 14, 101, 228, 229})
_COOKED = {113: 16, 276: 20}  # linktype -> header length: SLL (-i any before libpcap 1.10), SLL2
DUPLICATE_WINDOW = 0.01  # seconds; the copies of one packet on a bridge and its veth are microseconds apart


def _records(data: bytes) -> tuple[int | None, list[tuple[float, bytes]], bool]:
    """(linktype, [(timestamp, packet bytes)], truncated) of a classic pcap."""
    if len(data) < 24 or data[:4] not in _MAGICS:
        return None, [], True
    order, divisor = _MAGICS[data[:4]]
    record = struct.Struct(order + "IIII")
    snaplen, linktype = struct.unpack_from(order + "II", data, 16)
    limit = max(snaplen, MAX_CAPLEN) if 0 < snaplen <= 1 << 24 else MAX_CAPLEN
    packets: list[tuple[float, bytes]] = []
    cut = _CUT.search(data, 24)
    pos = _read(data, 24, cut.start() if cut else len(data), record, divisor, limit, packets)
    truncated = pos != (cut.start() if cut else len(data)) or cut is not None
    if cut is not None:
        near = int(packets[-1][0]) if packets else None
        resumed = _resync(data, cut.end(), record, limit, near)
        if resumed is not None:
            _read(data, resumed, len(data), record, divisor, limit, packets)
    return linktype & 0xFFFF, packets, truncated


def _read(
    data: bytes,
    pos: int,
    end: int,
    record: struct.Struct,
    divisor: float,
    limit: int,
    packets: list[tuple[float, bytes]],
) -> int:
    """Append the whole records in data[pos:end]; return where the first incomplete one starts."""
    while pos + 16 <= end:
        sec, frac, caplen, origlen = record.unpack_from(data, pos)
        if caplen > limit or caplen > origlen or pos + 16 + caplen > end:
            break
        packets.append((sec + frac / divisor, data[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return pos


def _plausible(data: bytes, pos: int, record: struct.Struct, limit: int, near: int | None) -> int | None:
    """The offset after a plausible record header + body at ``pos``, else None."""
    if pos + 16 > len(data):
        return None
    sec, frac, caplen, origlen = record.unpack_from(data, pos)
    if caplen > limit or caplen > origlen or frac >= 1_000_000_000 or pos + 16 + caplen > len(data):
        return None
    if near is not None and abs(sec - near) > 86400:
        return None
    return pos + 16 + caplen


def _resync(data: bytes, start: int, record: struct.Struct, limit: int, near: int | None) -> int | None:
    """The first offset from ``start`` (just after the runner's cut marker) where two records in a row parse
    (or one that ends the data), within one maximal record's reach; None if there is none."""
    for candidate in range(start, min(len(data), start + limit + 16)):
        after = _plausible(data, candidate, record, limit, near)
        if after is not None and (after == len(data) or _plausible(data, after, record, limit, near)):
            return candidate
    return None


class _Copies:
    """Which cooked-capture records repeat a packet just seen on another interface."""

    def __init__(self, linktype: int):
        self.header = _COOKED.get(linktype)
        self.sll2 = linktype == 276
        self.recent: dict[bytes, tuple[float, set[int | None]]] = {}
        self.order: deque[tuple[float, bytes]] = deque()

    def is_copy(self, ts: float, frame: bytes) -> bool:
        if self.header is None or len(frame) <= self.header:
            return False
        while self.order and ts - self.order[0][0] > DUPLICATE_WINDOW:
            _, old = self.order.popleft()
            if old in self.recent and ts - self.recent[old][0] > DUPLICATE_WINDOW:
                del self.recent[old]
        ifindex = struct.unpack_from(">I", frame, 4)[0] if self.sll2 else None
        key = _normalised(frame[self.header :])
        seen = self.recent.get(key)
        if seen is not None and 0 <= ts - seen[0] <= DUPLICATE_WINDOW and (ifindex is None or ifindex not in seen[1]):
            seen[1].add(ifindex)
            return True
        self.recent[key] = (ts, {ifindex})
        self.order.append((ts, key))
        return False


def _normalised(packet: bytes) -> bytes:
    """IP bytes without what a router rewrites: TTL / hop limit and the IPv4 header checksum."""
    version = packet[0] >> 4
    if version == 4 and len(packet) >= 20:
        return packet[:8] + b"\0" + packet[9:10] + b"\0\0" + packet[12:]
    if version == 6 and len(packet) >= 40:
        return packet[:7] + b"\0" + packet[8:]
    return packet


def _ip_layer(linktype: int, frame: bytes) -> object | None:
    if linktype in _RAW_IP:
        version = frame[0] >> 4 if frame else 0
        return dpkt.ip.IP(frame) if version == 4 else dpkt.ip6.IP6(frame) if version == 6 else None
    link = _LINKS.get(linktype)
    if link is None:
        return None
    return link(frame).data


class _Flow:
    __slots__ = (
        "a",
        "acked",
        "b",
        "client",
        "fins",
        "first_src",
        "first_ts",
        "handshake",
        "last_ts",
        "packets",
        "payload",
        "resets",
        "retransmitted",
        "rst_bad",
        "rst_offset",
        "sent_to",
        "server_isn",
        "syn_seqs",
        "synacks",
        "syns",
    )  # fmt: skip

    def __init__(self, a: tuple[str, int], b: tuple[str, int], ts: float):
        self.a, self.b = a, b
        self.client: tuple[str, int] | None = None
        self.first_src: tuple[str, int] | None = None
        self.first_ts = self.last_ts = ts
        self.packets = self.payload = self.syns = self.retransmitted = self.synacks = 0
        self.resets = self.fins = 0
        self.syn_seqs: set[int] = set()
        self.server_isn: int | None = None
        self.handshake = self.rst_bad = False
        self.rst_offset: int | None = None
        self.acked: dict[tuple[str, int], int] = {}  # endpoint -> last ACK number it sent
        self.sent_to: dict[tuple[str, int], int] = {}  # endpoint -> end of the sequence space it used


def _later(x: int, y: int) -> int:
    return x if (x - y) % _SEQ < _SEQ // 2 else y


def _tcp(flow: _Flow, src: tuple[str, int], dst: tuple[str, int], tcp: dpkt.tcp.TCP, ts: float) -> None:
    flags, seq, ack = tcp.flags, tcp.seq, tcp.ack
    flow.packets += 1
    flow.last_ts = ts
    flow.first_src = flow.first_src or src
    length = len(tcp.data)
    flow.payload += length
    if flags & SYN and not flags & ACK:
        flow.syns += 1
        flow.client = flow.client or src
        if seq in flow.syn_seqs:
            flow.retransmitted += 1
        flow.syn_seqs.add(seq)
    elif flags & SYN:
        flow.synacks += 1
        flow.client = flow.client or dst
        flow.server_isn = seq
    elif flags & ACK and src == flow.client and flow.server_isn is not None and ack == (flow.server_isn + 1) % _SEQ:
        flow.handshake = True
    if flags & RST:
        flow.resets += 1
        # A receiver that never acknowledged anything is in SYN-SENT: there the RST's ACK field counts, not its seq.
        if dst in flow.acked:
            expected = flow.acked[dst]
            if src in flow.sent_to:
                expected = _later(expected, flow.sent_to[src])
            offset = (seq - expected) % _SEQ
            offset = offset - _SEQ if offset >= _SEQ // 2 else offset
            if offset and not flow.rst_bad:
                flow.rst_bad, flow.rst_offset = True, offset
    else:
        end = (seq + length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) % _SEQ
        flow.sent_to[src] = _later(end, flow.sent_to[src]) if src in flow.sent_to else end
    if flags & FIN:
        flow.fins += 1
    if flags & ACK:
        flow.acked[src] = ack


def _row(flow: _Flow) -> Flow:
    client = flow.client
    if client is None:
        client = flow.a if flow.a[1] > flow.b[1] else flow.b if flow.b[1] > flow.a[1] else flow.first_src or flow.a
    server = flow.b if client == flow.a else flow.a
    return {
        "client": client[0], "client_port": client[1], "server": server[0], "server_port": server[1],
        "packets": flow.packets, "payload_bytes": flow.payload, "syns": flow.syns, "synacks": flow.synacks,
        "retransmitted_syns": flow.retransmitted, "handshake_completed": flow.handshake, "resets": flow.resets,
        "rst_out_of_window": flow.rst_bad, "rst_offset": flow.rst_offset, "fins": flow.fins,
        "first_ts": flow.first_ts, "last_ts": flow.last_ts, "duration": round(flow.last_ts - flow.first_ts, 6),
    }  # fmt: skip


def is_pcap(data: bytes) -> bool:
    return data[:4] in _MAGICS


def parse_pcap(data: bytes) -> PcapFacts:
    """Flows and counts of a classic pcap (as ``tcpdump -w`` writes); empty tables for anything else."""
    if not is_pcap(data):
        return {"flows": [], "packets_summary": []}
    linktype, records, truncated = _records(data)
    flows: dict[tuple[tuple[str, int], tuple[str, int]], _Flow] = {}
    names: dict[bytes, str] = {}
    counts = {"tcp": 0, "udp": 0, "icmp": 0, "other": 0, "duplicates": 0}
    copies = _Copies(linktype or 0)
    for ts, frame in records:
        if copies.is_copy(ts, frame):
            counts["duplicates"] += 1
            continue
        try:
            ip = _ip_layer(linktype or 0, frame)
        except (dpkt.Error, struct.error, IndexError, ValueError):
            ip = None
        if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
            counts["other"] += 1
            continue
        layer = ip.data
        if isinstance(layer, dpkt.tcp.TCP):
            counts["tcp"] += 1
        elif isinstance(layer, dpkt.udp.UDP):
            counts["udp"] += 1
            continue
        elif isinstance(layer, dpkt.icmp.ICMP | dpkt.icmp6.ICMP6):
            counts["icmp"] += 1
            continue
        else:
            counts["other"] += 1
            continue
        for raw in (ip.src, ip.dst):
            if raw not in names:
                names[raw] = socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)
        src, dst = (names[ip.src], layer.sport), (names[ip.dst], layer.dport)
        key = (src, dst) if src <= dst else (dst, src)
        flow = flows.get(key)
        if flow is None:
            flow = flows[key] = _Flow(key[0], key[1], ts)
        _tcp(flow, src, dst, layer, ts)
    summary: PacketsSummary = {
        "total": len(records),
        "tcp": counts["tcp"],
        "udp": counts["udp"],
        "icmp": counts["icmp"],
        "other": counts["other"],
        "duplicates": counts["duplicates"],
        "truncated": truncated,
        "linktype": linktype,
        "first_ts": records[0][0] if records else None,
        "last_ts": records[-1][0] if records else None,
    }
    return {"flows": [_row(flow) for flow in flows.values()], "packets_summary": [summary]}
