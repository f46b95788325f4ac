"""What one pytest-xdist worker keeps to itself when the suite runs in several processes (`make test`).

Each worker (gw0, gw1, ...; a serial run counts as worker 0) gets its own Redis databases:

- the configured broker (CELERY_BROKER_URL, CI's redis://.../0): worker k uses database N + k, so with
  N = 0 four workers use 0 to 3; a serial run uses N itself;
- the scratch database some tests flush or fill on the shared Redis (``scratch_redis_db``): worker k
  uses 15 - k, so four workers use 15, 14, 13 and 12. A worker runs one test at a time and each module's
  tests one after another, so the modules that use it (a Celery worker on its own queue, a sweep's
  broker, gunicorn's cache, which flushes it) never meet there.

Redis has 16 databases (0-15): the broker's databases counted up from N and the scratch ones counted
down from 15 must not meet, so N = 0 allows eight workers. The test database is per worker already
(pytest-django: test_<name>_gw0, ...; on SQLite a file named after the process), labs pick their own
prefixes and subnets (tests/lab.py), and ports come from the kernel (conftest.free_port).
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
    if db >= scratch_redis_db():
        raise RuntimeError(
            f"{url}: worker {worker_index()} would publish to Redis database {db}, which is a worker's "
            f"scratch database (counted down from {REDIS_DATABASES - 1}); use fewer workers or a lower database"
        )
    return urlunsplit(parts._replace(path=f"/{db}"))


def scratch_redis_db() -> int:
    """This worker's scratch Redis database on 127.0.0.1:6379."""
    return REDIS_DATABASES - 1 - worker_index()
