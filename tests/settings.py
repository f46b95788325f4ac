"""Test settings: the product's settings with a fast password hasher.

The database comes from DATABASE_URL as in production (CI points it at
PostgreSQL); without it the suite runs on SQLite.
"""

import os

from tests.parallel import redis_url_for_worker
from triage.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files are served from the app's finders in tests; nothing is collected. Looked up when asked
# for (autorefresh): otherwise every test client's new handler stats and indexes every static file at
# WhiteNoise's start, a quarter of the CPU of a module of client tests such as test_access.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# A file, not memory, so a forked "worker" process in the tests sees the same test database;
# one per test session, so two runs in one checkout never share it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405

# Under pytest-xdist each worker publishes to a Redis database of its own (tests/parallel.py): CI's
# redis://.../0 becomes /0 for gw0 and /1 for gw1, so no worker's queues meet another's.
CELERY_BROKER_URL = redis_url_for_worker(CELERY_BROKER_URL)  # noqa: F405

# Tasks the tests enqueue must never reach a worker of the developer's own desk, which
# shares the default filesystem broker under var/; CI's Redis broker is kept.
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_URL = "memory://"
    CELERY_BROKER_TRANSPORT = None
    CELERY_BROKER_TRANSPORT_OPTIONS = {}

# One process's memory unless a test (or CI) names a shared cache: the developer's desk keeps its
# file cache under var/, which the tests' cache.clear() must not wipe.
if not os.environ.get("TRIAGE_CACHE_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
