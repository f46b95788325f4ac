"""What one pytest-xdist worker keeps to itself when the suite runs in several processes (`make test`: -n 2).

Each worker (gw0, gw1, ...; a serial run counts as worker 0) gets its own Redis databases:

- the configured broker (CELERY_BROKER_URL, CI's redis://.../0): worker k uses database N + k, so with
  N = 0 the two workers use 0 and 1; a serial run uses N itself, as before;
- the scratch databases some tests flush or fill on the shared Redis (``scratch_redis_db``): worker k
  uses 15 - 2k and 14 - 2k, so two workers use 15, 14, 13 and 12.

Redis has 16 databases (0-15), so with two workers the broker's N must stay below 11 to keep clear of the
scratch databases. The test database is per worker already (pytest-django: test_<name>_gw0, ...; on
SQLite a file named after the process), labs pick their own prefixes and subnets (tests/lab.py), and
ports come from the kernel (conftest.free_port).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

REDIS_DATABASES = 16


def worker_index() -> int:
    """0 for gw0 (or a run without xdist), 1 for gw1, ..."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name.removeprefix("gw")) if name.startswith("gw") else 0


def redis_url_for_worker(url: str) -> str:
    """`url` with its database number moved on by this worker's index (redis:// URLs only)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return url
    db = int(parts.path.strip("/") or 0) + worker_index()
    if db >= REDIS_DATABASES:
        raise RuntimeError(
            f"{url}: worker {worker_index()} would need Redis database {db}; "
            f"Redis has {REDIS_DATABASES} (0-{REDIS_DATABASES - 1}); configure a lower one"
        )
    return urlunsplit(parts._replace(path=f"/{db}"))


def scratch_redis_db(slot: int) -> int:
    """This worker's scratch Redis database number `slot` (0 or 1) on 127.0.0.1:6379."""
    if slot not in (0, 1):
        raise ValueError("two scratch databases per worker: slot 0 or 1")
    db = REDIS_DATABASES - 1 - 2 * worker_index() - slot
    if db < 0:
        raise RuntimeError(f"worker {worker_index()} has no scratch Redis database left")
    return db
