"""The resolvers probe -> ``resolvers`` (one timed lookup per nameserver, plus the system resolver),
``resolv_conf`` and ``nsswitch``.

Our own parser: the timing lines (``nameserver 10.0.0.2 2004 ms TIMEOUT via dig``, ``resolver system
6017 ms NOERROR via getent``; older evidence has no ``via``) are the probe's own format. resolv.conf
is split by hand too, because citations need one row per line with its number (jc's
``resolve_conf`` returns grouped lists); an inline ``#``/``;`` comment ends a value, as glibc reads
it (``nameserver 10.0.0.1 # old`` is 10.0.0.1).

``outcome`` folds the status words into what a lookup's fate means for the host: ``ok``,
``nxdomain``, ``servfail``, ``refused`` (REFUSED, CONNREFUSED, UNREACHABLE: answered fast with a
no), ``timeout``, ``error``, ``untested``. A TIMEOUT under a second is read as ``refused``: the
probe asks with a 2 s timeout, and before it told them apart it called dig's fast exit 9 (ICMP
port unreachable, ~30 ms) a TIMEOUT. The system resolver's line (getent) only knows found or not: a
"not found" that took 1.5 s or more waited out nameserver timeouts and is read as ``timeout`` - on a
host without dig, host or nslookup it is the only measured lookup.
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
    # NOERROR, NXDOMAIN, SERVFAIL, REFUSED (the DNS answer's rcode), CONNREFUSED (nothing listens on
    # :53, a REJECT rule), UNREACHABLE (no route), TIMEOUT, ERROR, UNTESTED, SKIPPED
    status: str
    answer: str | None  # the system resolver's first answer line (getent hosts)
    outcome: str  # ok, nxdomain, servfail, refused, timeout, error, untested (see the module docstring)
    answered: bool  # a DNS answer came back (outcome ok, nxdomain or servfail)
    none_answered: bool  # no configured nameserver tested in this lookup answered (same on each of its rows)
    tool: str | None  # what timed it: dig, host, nslookup, getent; None in evidence from older probes


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


_TIMED = re.compile(r"(nameserver|resolver) (\S+) (\d+|-) ms ([A-Z]+)\b(?: via ([a-z]+)\b)?.*")
_OUTCOMES = {
    "NOERROR": "ok", "NXDOMAIN": "nxdomain", "SERVFAIL": "servfail", "REFUSED": "refused", "CONNREFUSED": "refused",
    "UNREACHABLE": "refused", "TIMEOUT": "timeout", "UNTESTED": "untested", "SKIPPED": "untested",
}  # fmt: skip
FAST_MS = 1000.0  # a failure quicker than this was a refusal, never a timeout (the probe waits 2 s)


SLOW_NOT_FOUND_MS = 1500.0  # a system lookup "not found" this slow waited out nameserver timeouts


def outcome_of(status: str, ms: float | None, *, system: bool = False) -> str:
    """What a lookup's status word means (see the module docstring)."""
    outcome = _OUTCOMES.get(status, "error")
    if outcome == "timeout" and ms is not None and ms < FAST_MS:
        return "refused"
    if system and outcome == "nxdomain" and ms is not None and ms >= SLOW_NOT_FOUND_MS:
        return "timeout"  # getent says only found or not; seconds of "not found" were timeouts
    return outcome


def _conf_values(fields: list[str]) -> list[str]:
    """A resolv.conf line's values up to an inline comment (``# old``, ``;backup``)."""
    values = []
    for field in fields:
        cut = min((i for i in (field.find("#"), field.find(";")) if i >= 0), default=-1)
        if cut >= 0:
            if cut:
                values.append(field[:cut])
            break
        values.append(field)
    return values


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
                values = _conf_values(fields[1:])
                if fields[0] == "options":
                    conf += [{"line_no": line_no, "key": "options", "value": option} for option in values]
                elif fields[0] == "nameserver":  # glibc reads one address and ignores the rest of the line
                    conf.append({"line_no": line_no, "key": "nameserver", "value": values[0] if values else ""})
                else:
                    conf.append({"line_no": line_no, "key": fields[0], "value": " ".join(values)})
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
            section_rows: list[Resolver] = []
            for line_no, line in part.numbered():
                if match := _TIMED.fullmatch(line):
                    kind, server, ms_text, status, tool = match.groups()
                    ms = None if ms_text == "-" else to_float(ms_text)
                    row: Resolver = {
                        "line_no": line_no,
                        "name": name,
                        "nameserver": "system" if kind == "resolver" else server,
                        "ms": ms,
                        "status": status,
                        "answer": None,
                        "outcome": outcome_of(status, ms, system=kind == "resolver"),
                        "answered": False,
                        "none_answered": False,
                        "tool": tool,
                    }
                    row["answered"] = row["outcome"] in ("ok", "nxdomain", "servfail")
                    section_rows.append(row)
                    resolvers.append(row)
                    system = row if kind == "resolver" else None
                elif system is not None and system["answer"] is None:
                    system["answer"] = line.strip()
            tested = [r for r in section_rows if r["nameserver"] != "system" and r["outcome"] != "untested"]
            for row in section_rows:
                row["none_answered"] = bool(tested) and not any(r["answered"] for r in tested)
    return {"resolvers": resolvers, "resolv_conf": conf, "nsswitch": nsswitch}
