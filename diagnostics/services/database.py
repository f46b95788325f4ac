"""Database work that outlives a lost connection (PostgreSQL restarted, a failover)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

# A restart drops every connection; work waits this long for the database rather than losing
# what it has in hand (a probe's evidence) or leaving a run active.
RETRY_SECONDS = 30.0

T = TypeVar("T")


def with_database(work: Callable[[], T], *, what: str) -> T:
    """Do `work`, again on a new connection if the connection was lost, for at most RETRY_SECONDS
    (backing off from 0.25 s to 2 s). Only for work that is safe to repeat: reads, writes keyed by
    (run, step), conditional UPDATEs, or one transaction that either committed or did not. Inside
    an open transaction nothing is retried (the transaction is lost with its connection)."""
    deadline = time.monotonic() + RETRY_SECONDS
    pause = 0.25
    while True:
        try:
            return work()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise
            log.warning("%s: lost the database (%s); trying again in %.2f s", what, exc, pause)
            with contextlib.suppress(DatabaseError):
                connection.close()
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
