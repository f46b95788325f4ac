"""The collector's database connections: one bounded pool shared by all its threads.

Django gives each thread its own connection, so a thread-pool worker with 64 collections in flight
would otherwise open 64 (PostgreSQL refuses past ``max_connections``, 100 by default, shared by
every process of the desk). In a worker on a thread pool, every thread's connection comes from one
psycopg pool of at most ``TRIAGE_COLLECT_DB_CONNECTIONS`` (Django 5.2's ``OPTIONS["pool"]``); a
run gives its connection back (``connection.close()``) before it waits on a host and after each
store, so the pool's size bounds how many runs read or write at once, not how many run. A thread
that finds every connection taken waits for one (``POOL_WAIT`` seconds at most, then an
OperationalError that ``with_database`` retries).

Prefork processes (the general worker) keep their one connection each; so do web and beat.
"""

from __future__ import annotations

from django.conf import settings

# Seconds a thread waits for a free connection before the pool gives up with an error.
POOL_WAIT = 30.0
# Seconds an unused pooled connection is kept open before the pool closes it.
POOL_MAX_IDLE = 60.0


def is_thread_pool(pool_cls) -> bool:
    """Whether a worker's ``--pool`` runs its tasks as threads of one process."""
    name = pool_cls if isinstance(pool_cls, str) else f"{pool_cls.__module__}.{pool_cls.__name__}"
    return name == "threads" or name.endswith(".thread.TaskPool")


def share_a_bounded_pool(*, max_size: int) -> bool:
    """Make every thread of this process take its PostgreSQL connection from one pool of at most
    ``max_size``. Called at worker start, before any connection is opened. False (nothing changed)
    on other databases: SQLite is the one-machine desk, whose file allows one writer at a time anyway."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        return False
    # Django's pool refuses persistent connections: a closed connection goes back to the pool instead.
    database["CONN_MAX_AGE"] = 0
    database["OPTIONS"] = {
        **database.get("OPTIONS", {}),
        "pool": {"min_size": 0, "max_size": max_size, "timeout": POOL_WAIT, "max_idle": POOL_MAX_IDLE},
    }
    return True
