"""One bounded HTTP POST with the standard library (no new dependency).

Connect and each read have their own timeout; the response body is read only up to a small cap,
and within an overall deadline, so a receiver that trickles bytes cannot hold a worker. Redirects
are never followed: http.client does not follow them, and the caller treats 3xx as an answer.
"""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

EXCERPT_BYTES = 2048


@dataclass(frozen=True)
class Response:
    status: int | None  # None: no HTTP answer (see error)
    headers: dict[str, str]
    excerpt: str
    error: str
    duration: float
    timed_out: bool = False


def post(
    *, url: str, body: bytes, headers: dict[str, str], connect_timeout: float, read_timeout: float,
    total_timeout: float,
) -> Response:
    started = time.monotonic()
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    kwargs = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
    conn = connection_class(parts.hostname, parts.port, timeout=connect_timeout, **kwargs)
    phase = "connect"
    try:
        conn.connect()
        phase = "response"
        conn.sock.settimeout(read_timeout)
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        excerpt = _read_bounded(answer, deadline=started + total_timeout)
        return Response(
            status=answer.status,
            headers={k.lower(): v for k, v in answer.getheaders()},
            excerpt=excerpt.decode("utf-8", errors="replace"),
            error="",
            duration=time.monotonic() - started,
        )
    except TimeoutError:
        limit = connect_timeout if phase == "connect" else read_timeout
        return Response(None, {}, "", f"timed out after {limit:g} s waiting for the {phase}",
                        time.monotonic() - started, timed_out=True)
    except (OSError, http.client.HTTPException) as exc:
        return Response(None, {}, "", f"{type(exc).__name__}: {exc}"[:400], time.monotonic() - started)
    finally:
        conn.close()


def _read_bounded(answer: http.client.HTTPResponse, *, deadline: float) -> bytes:
    chunks, size = [], 0
    while size < EXCERPT_BYTES and time.monotonic() < deadline:
        chunk = answer.read1(EXCERPT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
