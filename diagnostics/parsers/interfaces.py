"""The interfaces probe -> ``interfaces`` (link state and counters) and ``addresses``.

Counters come from the probe's ``/proc/net/dev`` section through jc's ``proc_net_dev``; link state,
MTU and addresses from ``ip -s link`` / ``ip addr`` by our own two patterns (jc has no ``ip link``
or ``ip addr`` parser), or on hosts with only net-tools from ``ifconfig -a`` in either of its
formats (``eth0: flags=4163<UP,...>  mtu 1500`` since net-tools 2.10, ``eth0  Link encap:Ethernet
HWaddr ...`` before) by our own patterns, so each address keeps its line (jc's ``ifconfig`` gives
none; the tests compare the two). ifconfig shows flags, not ip's operstate: UP and RUNNING is
``UP`` (``UNKNOWN`` on loopback, where the kernel keeps no operstate, as ip shows it), anything
else ``DOWN`` (ip's LOWERLAYERDOWN or NO-CARRIER included); netmasks become prefix lengths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NotRequired, TypedDict

from diagnostics.parsers.sections import jc_parse, split_sections


class Interface(TypedDict):
    name: str
    state: str | None  # UP, DOWN, UNKNOWN, LOWERLAYERDOWN... (ip link's operstate; from ifconfig's flags: UP or DOWN)
    mtu: int | None
    rx_bytes: int | None
    rx_packets: int | None
    rx_errors: int | None
    rx_dropped: int | None
    tx_bytes: int | None
    tx_packets: int | None
    tx_errors: int | None
    tx_dropped: int | None
    # rx_errors / (rx_packets + rx_errors): errors judged against this link's traffic; parse_interfaces
    # adds both ratios to every row once its counters are read.
    rx_error_ratio: NotRequired[float | None]
    tx_error_ratio: NotRequired[float | None]


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
# ifconfig: "eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500" / "eth0      Link encap:Ethernet ..."
_IFCONFIG_LINK = re.compile(r"(\S+): flags=\S*<([^>]*)>(?:.*?\bmtu (\d+))?")
_IFCONFIG_OLD_LINK = re.compile(r"(\S+)\s+Link encap:")
_IFCONFIG_OLD_FLAGS = re.compile(r"\s+((?:[A-Z][A-Z0-9_-]* )*)\s*MTU:(\d+)")
_IFCONFIG_INET = re.compile(r"\s+inet (?:addr:)?(\d+\.\d+\.\d+\.\d+)(?:.*?(?:netmask |Mask:)(\S+))?")
_IFCONFIG_INET6 = re.compile(r"\s+inet6 (?:addr: ?)?([0-9A-Fa-f:.]+)(?:%\S*)?(?:/(\d+)|\s+prefixlen (\d+))?")


def parse_interfaces(text: str) -> InterfaceFacts:
    links: dict[str, Interface] = {}
    addresses: list[Address] = []

    def link(name: str) -> Interface:
        if name not in links:
            links[name] = {
                "name": name,
                "state": None,
                "mtu": None,
                "rx_bytes": None,
                "rx_packets": None,
                "rx_errors": None,
                "rx_dropped": None,
                "tx_bytes": None,
                "tx_packets": None,
                "tx_errors": None,
                "tx_dropped": None,
            }
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
                    addresses.append(
                        {
                            "line_no": line_no,
                            "interface": current,
                            "family": match.group(1),
                            "address": match.group(2),
                            "prefixlen": int(match.group(3)) if match.group(3) else None,
                        }
                    )
        elif title.startswith("ifconfig"):
            addresses += _ifconfig(part.numbered(), link)
        elif title == "/proc/net/dev":
            for counters in jc_parse("proc_net_dev", [line for _, line in part.numbered()]) or []:
                row = link(str(counters.get("interface")))
                for ours, theirs in (
                    ("rx_bytes", "r_bytes"),
                    ("rx_packets", "r_packets"),
                    ("rx_errors", "r_errs"),
                    ("rx_dropped", "r_drop"),
                    ("tx_bytes", "t_bytes"),
                    ("tx_packets", "t_packets"),
                    ("tx_errors", "t_errs"),
                    ("tx_dropped", "t_drop"),
                ):
                    # Keys named by variables (ours here, side below): the TypedDict checks literal keys only.
                    value = counters.get(theirs)
                    row[ours] = value if isinstance(value, int) else None  # type: ignore[literal-required]
    for row in links.values():  # added last, so the rows above keep their shape
        for side in ("rx", "tx"):
            errors, packets = row[f"{side}_errors"], row[f"{side}_packets"]  # type: ignore[literal-required]
            total = (errors or 0) + (packets or 0)
            row[f"{side}_error_ratio"] = round(errors / total, 6) if errors is not None and total else None  # type: ignore[literal-required]
    return {"interfaces": list(links.values()), "addresses": addresses}


def _state(flags: set[str]) -> str:
    if "UP" in flags and "RUNNING" in flags:
        return "UNKNOWN" if "LOOPBACK" in flags else "UP"
    return "DOWN"


def _prefix(mask: str | None) -> int | None:
    """``255.255.255.0`` or BSD's ``0xffffff00`` -> 24; None for anything that is no contiguous mask."""
    if not mask:
        return None
    try:
        value = int(mask, 16) if mask.startswith("0x") else int.from_bytes(bytes(int(o) for o in mask.split(".")))
    except ValueError:
        return None
    bits = bin(value)[2:].zfill(32)
    return bits.count("1") if len(bits) == 32 and "01" not in bits else None


def _ifconfig(numbered: Iterable[tuple[int, str]], link: Callable[[str], Interface]) -> list[Address]:
    addresses: list[Address] = []
    current: Interface | None = None
    for line_no, line in numbered:
        if not line[:1].isspace():
            current = None
            if match := _IFCONFIG_LINK.match(line):
                current = link(match.group(1))
                current["state"] = _state(set(match.group(2).split(",")))
                current["mtu"] = int(match.group(3)) if match.group(3) else None
            elif match := _IFCONFIG_OLD_LINK.match(line):
                current = link(match.group(1))
                current["state"] = "DOWN"  # until its flags line says otherwise
            continue
        if current is None:
            continue
        if match := _IFCONFIG_INET.match(line):
            addresses.append(
                {
                    "line_no": line_no,
                    "interface": current["name"],
                    "family": "inet",
                    "address": match.group(1),
                    "prefixlen": _prefix(match.group(2)),
                }
            )
        elif match := _IFCONFIG_INET6.match(line):
            prefix = match.group(2) or match.group(3)
            addresses.append(
                {
                    "line_no": line_no,
                    "interface": current["name"],
                    "family": "inet6",
                    "address": match.group(1),
                    "prefixlen": int(prefix) if prefix else None,
                }
            )
        elif match := _IFCONFIG_OLD_FLAGS.match(line):
            current["state"], current["mtu"] = _state(set(match.group(1).split())), int(match.group(2))
    return addresses
