"""CACHES from one URL (TRIAGE_CACHE_URL), and which URL to default to.

The cache holds the rate limits' counters (api/throttling.py), so it must be shared by every
process that serves requests: Redis in production (a DB number of its own on the broker's
server), a directory under var/ in development (shared by the processes of one desk).
A per-process cache (locmem, dummy) would let each gunicorn worker count alone, and only
Redis increments atomically, so production refuses anything else.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from triage.env import ConfigError

REDIS_CACHE_BACKEND = "django.core.cache.backends.redis.RedisCache"


def default_cache_url(*, broker_url: str, var_dir: Path) -> str:
    """The broker's Redis server with the next DB number (0 -> 1), else a directory under var/."""
    parts = urlsplit(broker_url)
    if parts.scheme in ("redis", "rediss"):
        db = parts.path.strip("/")
        db_number = int(db) if db.isdigit() else 0
        return urlunsplit(parts._replace(path=f"/{(db_number + 1) % 16}"))
    return f"file://{var_dir / 'cache'}"


def cache_settings(url: str) -> dict:
    """Django's CACHES['default'] for redis://, rediss://, file:///path, locmem:// or dummy://."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        # Bounded, like the broker's sockets: a hung Redis must not hold a request for minutes.
        return {
            "BACKEND": REDIS_CACHE_BACKEND,
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    if scheme == "file":
        path = urlsplit(url).path
        if not path.startswith("/"):
            raise ConfigError(f"TRIAGE_CACHE_URL must name an absolute directory (file:///path), got {url!r}")
        return {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": path}
    if scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if scheme == "dummy":
        return {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    raise ConfigError(
        f"TRIAGE_CACHE_URL must start with redis://, rediss://, file://, locmem:// or dummy://, got {url!r}"
    )
