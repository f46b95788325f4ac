"""The resolvers probe -> ``resolvers`` (one timed lookup per nameserver, plus the system resolver),
``resolv_conf`` and ``nsswitch``.

Our own parser: the timing lines (``nameserver 10.0.0.2 2004 ms TIMEOUT``, ``resolver system 6017 ms
NOERROR``) are the probe's own format. resolv.conf is split by hand too, because citations need one
row per line with its number (jc's ``resolve_conf`` returns grouped lists).
"""

from __future__ import annotations

import re
from typing import TypedDict

from diagnostics.parsers.sections import split_sections, to_float


class Resolver(TypedDict):
    line_no: int
    name: str | None  # the name (or address, for a reverse lookup) that was looked up
    nameserver: str  # an address, or "system" for getent through nsswitch
    ms: float | None
    status: str  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED, TIMEOUT, ERROR, UNTESTED, SKIPPED
    answer: str | None  # the system resolver's first answer line (getent hosts)


class ResolvConfLine(TypedDict):
    line_no: int
    key: str  # nameserver, search, domain, options (one row per option), sortlist
    value: str


class NsswitchLine(TypedDict):
    line_no: int
    database: str
    sources: str


class ResolverFacts(TypedDict):
    resolvers: list[Resolver]
    resolv_conf: list[ResolvConfLine]
    nsswitch: list[NsswitchLine]


_TIMED = re.compile(r"(nameserver|resolver) (\S+) (\d+|-) ms ([A-Z]+)\b.*")


def parse_resolvers(text: str) -> ResolverFacts:
    resolvers: list[Resolver] = []
    conf: list[ResolvConfLine] = []
    nsswitch: list[NsswitchLine] = []
    for part in split_sections(text):
        title = part.title or ""
        if title == "/etc/resolv.conf":
            for line_no, line in part.numbered():
                fields = line.split()
                if not fields or fields[0][0] in "#;":
                    continue
                if fields[0] == "options":
                    conf += [{"line_no": line_no, "key": "options", "value": option} for option in fields[1:]]
                else:
                    conf.append({"line_no": line_no, "key": fields[0], "value": " ".join(fields[1:])})
        elif title.startswith("/etc/nsswitch.conf"):
            for line_no, line in part.numbered():
                database, colon, sources = line.partition(":")
                if colon:
                    nsswitch.append(
                        {"line_no": line_no, "database": database.strip(), "sources": " ".join(sources.split())}
                    )
        elif title.startswith("lookups of "):
            name = title.removeprefix("lookups of ")
            system: Resolver | None = None
            for line_no, line in part.numbered():
                if match := _TIMED.fullmatch(line):
                    kind, server, ms, status = match.groups()
                    row: Resolver = {"line_no": line_no, "name": name, "nameserver": "system" if kind == "resolver"
                                     else server, "ms": None if ms == "-" else to_float(ms), "status": status,
                                     "answer": None}
                    resolvers.append(row)
                    system = row if kind == "resolver" else None
                elif system is not None and system["answer"] is None:
                    system["answer"] = line.strip()
    return {"resolvers": resolvers, "resolv_conf": conf, "nsswitch": nsswitch}
