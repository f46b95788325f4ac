"""A fleet's runs handed to the collector in batches, each batch's connects started at once.

Measured (``bench/sweep_fleet.py``): with one task per run, a 50-host sweep's last runs reached a
collector thread up to ~1.6 s after the first, and then waited up to ~1 s more for a database
connection before they connected: the runs ahead of them were already in their key exchanges, on
the same CPUs and the same GIL as the broker's consumer thread. A host that drops SYNs spends the
whole connect bound whenever its connect starts, so a sweep's wall was that lateness plus the bound.

So a sweep sends its runs in batches of ``BATCH_SIZE`` (a few broker messages, not one per host). A
batch reads every direct route (address and port of the runs with no jump host and a credential) in
one query, then starts one thread per run, which starts dialling its host (``ssh.dial``, on a thread
of its own) and then collects the run as ``run_execute`` does: the claim and the reads of the
credential and keys happen while the TCP connect is in flight, and the login uses that connection.
Runs through jump hosts are not dialled ahead: their address may mean another machine from here.

Every run of a collector process, batched or not, holds one of the process's run slots: as many as
the worker has threads (``TRIAGE_COLLECT_CONCURRENCY`` split over its processes), so batches do not
raise how many collections run at once. A batch is one broker message, so one process may take more
batches than it has free slots while another idles (measured: runs of a 50-host sweep waited 4.8 s
for a slot): a run that finds no free slot is sent back to the broker on its own (``run_enqueue``),
for whichever process has room.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from diagnostics import ssh
from diagnostics.models import CollectionRun, Credential, JumpLink, RunState
from diagnostics.services.runs import QUEUE_DOWN, run_enqueue, run_execute

log = logging.getLogger(__name__)

# Runs per broker message. Small enough that two collector processes share a 50-host sweep evenly,
# large enough that a sweep is a few messages.
BATCH_SIZE = 8

_slots: threading.BoundedSemaphore | None = None


def bound_runs_per_process(slots: int) -> None:
    """Let at most `slots` runs of this process collect at once (called at worker start)."""
    global _slots  # one bound per process, set once before any task runs
    _slots = threading.BoundedSemaphore(slots)


@contextlib.contextmanager
def run_slot() -> Iterator[None]:
    """Hold one of this process's run slots (no bound outside a collector worker)."""
    if _slots is None:
        yield
        return
    with _slots:
        yield


def batches(run_ids: Sequence[int]) -> list[list[int]]:
    return [list(run_ids[n : n + BATCH_SIZE]) for n in range(0, len(run_ids), BATCH_SIZE)]


def runs_enqueue(run_ids: Sequence[int]) -> None:
    """Hand the runs to the broker, a batch per message; bounded, and harmless to repeat (each run is
    claimed once). A batch the broker refused stays queued, saying so, for the sweeper to send again."""
    from diagnostics import tasks

    for batch in batches(run_ids):
        queued = CollectionRun.objects.filter(pk__in=batch, state=RunState.QUEUED)
        try:
            tasks.collect_runs.apply_async(args=[batch], retry=False, time_limit=None, soft_time_limit=None)
        except Exception as exc:  # noqa: BLE001 - any broker failure leaves the runs queued for the sweeper
            log.warning("could not enqueue runs %s: %s", batch, exc)
            queued.update(reason=QUEUE_DOWN)
            continue
        queued.update(enqueued_at=timezone.now(), reason="")


def direct_routes(run_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """(address, port) of each queued run whose server is reached with no jump host and has a credential
    to log in with (a host the run cannot log in to is not touched): one query."""
    owned = Q(server_id=OuterRef("server_id")) | Q(customer_id=OuterRef("server__customer_id"), server__isnull=True)
    rows = (
        CollectionRun.objects.filter(pk__in=run_ids, state=RunState.QUEUED)
        .filter(Exists(Credential.objects.filter(owned)))
        .exclude(Exists(JumpLink.objects.filter(owned)))
        .values_list("pk", "server__address", "server__ssh_port")
    )
    return {run_id: (address, port) for run_id, address, port in rows}


def runs_execute_together(run_ids: Sequence[int], *, worker: str) -> None:
    """Collect and diagnose every run of the batch at once, each on a thread of its own; returns when
    all have ended. A run that someone else has (or that is gone) is skipped, as ``run_execute`` does."""
    routes = direct_routes(run_ids)
    threads, elsewhere = [], []
    for run_id in run_ids:
        if _slots is not None and not _slots.acquire(blocking=False):
            elsewhere.append(run_id)
            continue
        thread = threading.Thread(target=_execute_one, args=(run_id, worker, routes.get(run_id)), name=f"run-{run_id}")
        thread.start()
        threads.append(thread)
    for run_id in elsewhere:  # this process is full: a run of its own, for a process with room
        run_enqueue(run_id=run_id)
    if not connection.in_atomic_block:
        connection.close()  # back to the pool while the batch waits for its runs
    for thread in threads:
        thread.join()


def _execute_one(run_id: int, worker: str, route: tuple[str, int] | None) -> None:
    """One run of the batch, holding the slot taken for it."""
    try:
        dialled = ssh.dial(*route, settings.TRIAGE_SSH_TIMEOUTS["connect"]) if route else None
        run_execute(run_id=run_id, worker=worker, dialled=dialled)
    except Exception:  # a run's own failures are recorded on it; this is the database or a bug
        log.exception("run %s: the batch could not collect it; the sweeper will send it again", run_id)
    finally:
        if _slots is not None:
            _slots.release()
        connection.close()  # this thread ends: its connection goes back to the pool
