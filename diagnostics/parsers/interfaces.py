"""The interfaces probe -> ``interfaces`` (link state and counters) and ``addresses``.

Counters come from the probe's ``/proc/net/dev`` section through jc's ``proc_net_dev``; link state,
MTU and addresses from ``ip -s link`` / ``ip addr`` by our own two patterns (jc has no ``ip link``
or ``ip addr`` parser); ``ifconfig -a`` hosts still get counters from /proc/net/dev.
"""

from __future__ import annotations

import re
from typing import TypedDict

from diagnostics.parsers.sections import jc_parse, split_sections


class Interface(TypedDict):
    name: str
    state: str | None  # UP, DOWN, UNKNOWN (ip link's operstate)
    mtu: int | None
    rx_bytes: int | None
    rx_packets: int | None
    rx_errors: int | None
    rx_dropped: int | None
    tx_bytes: int | None
    tx_packets: int | None
    tx_errors: int | None
    tx_dropped: int | None
    rx_error_ratio: float | None  # rx_errors / (rx_packets + rx_errors): errors judged against this link's traffic
    tx_error_ratio: float | None


class Address(TypedDict):
    line_no: int
    interface: str
    family: str  # inet or inet6
    address: str
    prefixlen: int | None


class InterfaceFacts(TypedDict):
    interfaces: list[Interface]
    addresses: list[Address]


_LINK = re.compile(r"\d+: ([^:@\s]+)(?:@\S+)?: <[^>]*> mtu (\d+)\b.*? state (\S+)")
_ADDR = re.compile(r"\s+(inet6?) ([0-9A-Fa-f:.]+)(?:/(\d+))?")


def parse_interfaces(text: str) -> InterfaceFacts:
    links: dict[str, Interface] = {}
    addresses: list[Address] = []

    def link(name: str) -> Interface:
        if name not in links:
            links[name] = {"name": name, "state": None, "mtu": None, "rx_bytes": None, "rx_packets": None,
                           "rx_errors": None, "rx_dropped": None, "tx_bytes": None, "tx_packets": None,
                           "tx_errors": None, "tx_dropped": None}
        return links[name]

    for part in split_sections(text):
        title = part.title or ""
        if title in ("ip -s link", "ip addr"):
            current = None
            for line_no, line in part.numbered():
                if match := _LINK.match(line):
                    current = match.group(1)
                    row = link(current)
                    row["mtu"], row["state"] = int(match.group(2)), match.group(3)
                elif title == "ip addr" and current and (match := _ADDR.match(line)):
                    addresses.append({"line_no": line_no, "interface": current, "family": match.group(1),
                                      "address": match.group(2),
                                      "prefixlen": int(match.group(3)) if match.group(3) else None})
        elif title == "/proc/net/dev":
            for counters in jc_parse("proc_net_dev", [line for _, line in part.numbered()]) or []:
                row = link(str(counters.get("interface")))
                for ours, theirs in (("rx_bytes", "r_bytes"), ("rx_packets", "r_packets"), ("rx_errors", "r_errs"),
                                     ("rx_dropped", "r_drop"), ("tx_bytes", "t_bytes"), ("tx_packets", "t_packets"),
                                     ("tx_errors", "t_errs"), ("tx_dropped", "t_drop")):
                    value = counters.get(theirs)
                    row[ours] = value if isinstance(value, int) else None  # type: ignore[literal-required]
    for row in links.values():  # added last, so the rows above keep their shape
        for side in ("rx", "tx"):
            errors, packets = row[f"{side}_errors"], row[f"{side}_packets"]  # type: ignore[literal-required]
            total = (errors or 0) + (packets or 0)
            row[f"{side}_error_ratio"] = round(errors / total, 6) if errors is not None and total else None  # type: ignore[literal-required]
    return {"interfaces": list(links.values()), "addresses": addresses}
