"""Whose evidence a line is: the addresses a row names against this host's own addresses.

A kernel ring buffer is shared by every container on a host, and a relayed log carries other hosts'
lines: a line naming only addresses this host does not have is not this host's evidence. A facts leaf
with ``own_address: <field>`` keeps a row when the field names no IP address, or names at least one of
the host's own; it drops a row whose field names addresses, none of them the host's. The host's
addresses are those of the run's ``interfaces`` evidence (``addresses`` table); without it nothing is
dropped (nothing to compare with). Addresses compare in canonical form (``FE80::1`` is ``fe80::1``;
scope ids, brackets and prefix lengths are not part of the address).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

# Candidate tokens: hex digits, dots and colons, with at least one dot or colon (cheap; ipaddress decides).
_TOKEN = re.compile(r"[0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*")


def named_addresses(text: object) -> set[str]:
    """Every IPv4/IPv6 address written in ``text``, canonical (MAC addresses and times are not addresses)."""
    found = set()
    for token in _TOKEN.findall(str(text) if text is not None else ""):
        token = token.strip(".:") if "::" not in token else token.rstrip(".")
        if token.count(".") != 3 and token.count(":") < 2:
            continue
        try:
            found.add(str(ipaddress.ip_address(token)))
        except ValueError:
            continue
    return found


def host_addresses(tables: Iterable[list[dict]]) -> set[str] | None:
    """The host's own addresses from ``addresses`` tables; None when there are none to compare with."""
    own = set()
    for rows in tables:
        for row in rows:
            try:
                own.add(str(ipaddress.ip_address(str(row.get("address")))))
            except ValueError:
                continue
    return own or None


def names_this_host(value: object, own: set[str] | None) -> bool:
    """Whether a row whose field holds ``value`` may be this host's evidence (see the module docstring)."""
    if own is None:
        return True
    named = named_addresses(value)
    return not named or bool(named & own)
