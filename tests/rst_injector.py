"""Forge TCP RST segments from a lab host, as a middlebox (a Cisco ASA) would.

Importable (``rst_segment``, ``ip_packet``: pure functions over bytes) and runnable as a script inside a lab host
with the host's python (standard library only, like the lab's listener)::

    python3 -I -S rst_injector.py  <  one JSON list per line: [[src, sport, dst, dport, seq, ack or null], ...]

Every line is one batch: each RST is sent once, as soon as the line is read; the script exits at end of input.
The source address is the real client's, not the injecting host's, so the injector builds the IPv4 header too
(``IPPROTO_RAW`` implies ``IP_HDRINCL``; the kernel still fills in the total length, id and header checksum).
The TCP checksum must be right even though the lab never checks it: veth marks locally built packets
CHECKSUM_UNNECESSARY, so the receiving kernel would accept a broken one that a real NIC would drop.
"""

from __future__ import annotations

import json
import socket
import struct
import sys

RST, ACK = 0x04, 0x10
_SEQ = 1 << 32


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rst_segment(src: str, sport: int, dst: str, dport: int, seq: int, ack: int | None = None) -> bytes:
    """A 20-byte TCP header with RST (and ACK when `ack` is given), window 0, no options, checksum filled in."""
    flags = RST | (ACK if ack is not None else 0)
    header = struct.pack("!HHIIBBHHH", sport, dport, seq % _SEQ, (ack or 0) % _SEQ, 5 << 4, flags, 0, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    return header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]


def ip_packet(src: str, dst: str, segment: bytes, *, ttl: int = 64) -> bytes:
    """An IPv4 header (no options) in front of a TCP segment."""
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0, ttl, socket.IPPROTO_TCP, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + segment


def main() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        for line in sys.stdin:
            for src, sport, dst, dport, seq, ack in json.loads(line):
                raw.sendto(ip_packet(src, dst, rst_segment(src, sport, dst, dport, seq, ack)), (dst, 0))


if __name__ == "__main__":
    main()
