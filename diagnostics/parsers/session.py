"""The measured ``ssh_session`` evidence (``diagnostics.probes.measured``) -> ``ssh_session``.

Our own format, so our own parser: ``phase seconds`` lines under one header, each phase's time counted
from the start of the TCP connect. ``auth_wait_seconds`` is the time the server took between the end
of the key exchange and accepting the login: where sshd's reverse lookup of the client (UseDNS),
PAM and GSSAPI spend their time. The row cites the ``auth`` line.
"""

from __future__ import annotations

from typing import TypedDict

from diagnostics.parsers.sections import split_sections, to_float


class SshSession(TypedDict):
    line_no: int | None  # the auth line
    target: str | None  # user@address:port as connected to
    connect_seconds: float | None  # TCP connected
    banner_seconds: float | None  # the server's SSH banner received
    handshake_seconds: float | None  # key exchange done
    auth_seconds: float | None  # logged in: the whole login
    auth_wait_seconds: float | None  # auth - handshake: the server's part of the login


def parse_session(text: str) -> list[SshSession]:
    rows: list[SshSession] = []
    for part in split_sections(text):
        title = part.title or ""
        if not title.startswith("ssh login to "):
            continue
        times: dict[str, float | None] = {}
        auth_line = None
        for line_no, line in part.numbered():
            phase, _, value = line.strip().partition(" ")
            if phase in ("connect", "banner", "handshake", "auth") and phase not in times:
                times[phase] = to_float(value.strip())
                auth_line = line_no if phase == "auth" else auth_line
        if not times:
            continue
        auth, handshake = times.get("auth"), times.get("handshake")
        rows.append({
            "line_no": auth_line, "target": title.removeprefix("ssh login to ").rsplit(", seconds since", 1)[0] or None,
            "connect_seconds": times.get("connect"), "banner_seconds": times.get("banner"),
            "handshake_seconds": handshake, "auth_seconds": auth,
            "auth_wait_seconds": round(auth - handshake, 4) if auth is not None and handshake is not None else None,
        })  # fmt: skip
    return rows
