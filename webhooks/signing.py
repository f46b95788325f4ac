"""The signature a receiver checks: ``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body``.

The timestamp is signed with the body so a captured request cannot be replayed later with a
fresh timestamp; receivers should also refuse timestamps older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "sha256="


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def verify(*, secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance: int = 300) -> bool:
    """What a receiver does (the README shows the same steps)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret=secret, timestamp=int(timestamp), body=body), signature)
