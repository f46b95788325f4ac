"""One bounded HTTP POST with the standard library (no new dependency).

The host is resolved and its addresses checked first (webhooks/addresses.py); the connection
goes to the checked address, with the URL's name kept for the Host header and TLS. Connect
(and the TLS handshake) and each read have their own timeout; only the status line and headers
are read, within an overall deadline, and the body is never read: what a receiver says is not
shown to anyone, so an endpoint cannot be used to read an internal service's pages. Redirects
are never followed: http.client does not follow them, and the caller treats 3xx as an answer.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from webhooks import addresses

REASON_CHARS = 60


@dataclass(frozen=True)
class Response:
    status: int | None  # None: no HTTP answer (see error)
    headers: dict[str, str]
    reason: str  # the status line's reason phrase, printable ASCII only
    error: str
    duration: float
    timed_out: bool = False
    refused: bool = False  # not sent: the address is not allowed (final, not retried)


def printable(text: str, limit: int) -> str:
    """Text a receiver chose, made safe to show: printable ASCII, at most `limit` characters."""
    return re.sub(r"[^\x20-\x7e]", "", text)[:limit]


def _connect(parts, port: int, *, allow_private: bool, timeout: float) -> http.client.HTTPConnection:
    addresses_ = addresses.checked_addresses(parts.hostname, port, allow_private=allow_private)
    https = parts.scheme == "https"
    connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
    conn = connection_class(parts.hostname, port, timeout=timeout)
    error: OSError | None = None
    for address in addresses_:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            error = exc
            continue
        try:
            conn.sock = (
                ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname) if https else sock
            )
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        return conn
    raise error or OSError(f"no address for {parts.hostname}")


def post(
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    connect_timeout: float,
    read_timeout: float,
    total_timeout: float,
    allow_private: bool = False,
) -> Response:
    started = time.monotonic()
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    phase, conn, watchdog, cut = "connect", None, None, threading.Event()
    try:
        conn = _connect(parts, port, allow_private=allow_private, timeout=connect_timeout)
        phase = "response"
        conn.sock.settimeout(read_timeout)
        # Each read has its own timeout; this ends a receiver that trickles its headers byte by byte.
        watchdog = threading.Timer(max(0.1, started + total_timeout - time.monotonic()), _cut, [conn.sock, cut])
        watchdog.start()
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        return Response(
            status=answer.status,
            headers={k.lower(): v for k, v in answer.getheaders()},
            reason=printable(answer.reason or "", REASON_CHARS),
            error="",
            duration=time.monotonic() - started,
        )
    except addresses.Refused as exc:
        return Response(None, {}, "", str(exc), time.monotonic() - started, refused=True)
    except (OSError, http.client.HTTPException) as exc:
        elapsed = time.monotonic() - started
        if cut.is_set():
            return Response(None, {}, "", f"timed out after {total_timeout:g} s in all", elapsed, timed_out=True)
        if isinstance(exc, TimeoutError):
            limit = connect_timeout if phase == "connect" else read_timeout
            return Response(
                None, {}, "", f"timed out after {limit:g} s waiting for the {phase}", elapsed, timed_out=True
            )
        return Response(None, {}, "", f"{type(exc).__name__}: {exc}"[:400], elapsed)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if conn is not None:
            conn.close()


def _cut(sock: socket.socket, cut: threading.Event) -> None:
    cut.set()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
