"""A collection run's life: request, enqueue on commit, claim, execute, finish, sweep.

`run_request` commits a queued run and enqueues it after the commit;
`run_execute` (called by the Celery task or `manage.py collect`) takes the run through its
named steps, each its own transaction (its docstring lists them): collect (claim with a
conditional UPDATE, connect once, run the playbook's probes over few channels and store each
probe's evidence as it finishes), record the terminal state, diagnose. `runs_sweep`
re-enqueues runs that never reached a worker and recovers runs whose worker died.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from diagnostics import probes, ssh, ssh_lanes
from diagnostics.knowledge import diagnosis
from diagnostics.models import (
    ACTIVE_STATES,
    AuditEntry,
    CollectionRun,
    Evidence,
    Playbook,
    RunState,
)
from diagnostics.probes import privilege
from diagnostics.services import host_keys, jump_hosts
from diagnostics.services.credentials import credential_for, credential_secret, credential_sudo_password
from diagnostics.services.database import with_database
from triage import crypto
from triage import services as desk
from triage.models import EventKind, Server, Ticket

log = logging.getLogger(__name__)

# A run whose heartbeat is older than this lost its worker.
STALE_AFTER = timedelta(seconds=90)
HEARTBEAT_EVERY = 10.0
MAX_ATTEMPTS = 2
# A queued run not picked up within this long is enqueued again (broker was down, or the message was lost).
REQUEUE_AFTER = timedelta(seconds=60)
# Seconds between checks of the run's own time limit while its probes run, and how long after the
# limit the run stops itself: on a prefork worker Celery's soft time limit (at the limit) comes first.
_LIMIT_POLL = 0.5
_LIMIT_GRACE = 2.0


def run_request(
    *,
    ticket: Ticket,
    server: Server,
    playbook: Playbook | None = None,
    by,
    enqueue: bool = True,
    steps: list[dict] | None = None,
    name: str = "",
    verifies: tuple | None = None,
) -> CollectionRun:
    """Queue a collection of a playbook, or of ad-hoc ``steps`` named ``name`` (the probes that
    settle a possible symptom, or a Verify); the task is enqueued only once the run is committed.
    ``verifies`` is (recipe, run that proved its symptom) for a Verify run."""
    if server.customer_id != ticket.customer_id:
        raise ValidationError({"server": "That server does not belong to this ticket's customer."})
    if ticket.merged_into_id is not None:  # its evidence moved to the survivor (triage.merging): collect there
        raise ValidationError(
            f"{ticket.reference} was merged into #{ticket.merged_into_id}: collect on #{ticket.merged_into_id} instead."
        )
    if playbook is not None and not playbook.enabled:
        raise ValidationError({"playbook": "That playbook is disabled."})
    if playbook is None:
        if not steps:
            raise ValidationError({"playbook": "Choose a playbook."})
        for index, step in enumerate(steps):
            try:
                probes.build(step["probe"], step.get("params") or {})
            except (probes.ProbeError, KeyError, TypeError) as exc:
                raise ValidationError({"playbook": f"Step {index + 1} is not a valid probe: {exc}"}) from exc
    name = playbook.name if playbook is not None else name[:100]
    recipe, proved_by = verifies or (None, None)
    with transaction.atomic():
        run = CollectionRun.objects.create(
            ticket=ticket,
            server=server,
            playbook=playbook,
            playbook_name=name,
            steps=playbook.steps if playbook is not None else steps,
            requested_by=by,
            verifies_recipe=recipe,
            verifies_run=proved_by,
        )
        ticket.servers.add(server)
        desk.ticket_record_event(
            ticket=ticket,
            kind=EventKind.COLLECTION,
            actor=by,
            body=f"Collection requested: {name} on {server.name}.",
            data={"run": run.pk, "state": RunState.QUEUED, "server": server.name},
        )
        AuditEntry.objects.create(
            actor=by,
            action="run_requested",
            server=server,
            ticket=ticket,
            run=run,
            address=_address(server),
            detail={"playbook": name},
        )
        if enqueue:
            transaction.on_commit(lambda: run_enqueue(run_id=run.pk))
    return run


QUEUE_DOWN = "Waiting for the task queue (the broker did not answer); it will be sent again automatically."


def run_enqueue(*, run_id: int) -> bool:
    """Hand the run to the broker; bounded, and harmless to repeat (the task claims the run)."""
    from diagnostics import tasks

    try:
        # No time limits in the message: the worker's own (TRIAGE_COLLECT_TIME_LIMIT) apply, not
        # whatever the process that pressed Collect was configured with.
        tasks.collect_run.apply_async(args=[run_id], retry=False, time_limit=None, soft_time_limit=None)
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the run queued for the sweeper
        log.warning("could not enqueue run %s: %s", run_id, exc)
        CollectionRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(reason=QUEUE_DOWN)
        return False
    CollectionRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(enqueued_at=timezone.now(), reason="")
    return True


def _address(server: Server, run: CollectionRun | None = None) -> str:
    """user@address:port, with the login user the run's credential names once the run knows it; an IPv6
    address in brackets, as OpenSSH writes it: root@[fd00::1]:22; and the jump hosts once the run knows
    them: root@10.0.0.5:22 via bastion1, bastion2."""
    user = getattr(run, "login_user", None) or server.ssh_user
    host = f"[{server.address}]" if ":" in server.address else server.address
    via = getattr(run, "via", "")
    return f"{user}@{host}:{server.ssh_port}" + (f" via {via}" if via else "")


def _claim(run_id: int, worker: str, now: datetime) -> bool:
    """Take the run for this worker: queued runs, or active runs whose worker stopped beating."""
    fresh = CollectionRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(
        state=RunState.CONNECTING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        worker=worker,
        reason="",
    )
    if fresh:
        return True
    return bool(
        CollectionRun.objects.filter(
            pk=run_id,
            state__in=ACTIVE_STATES,
            heartbeat_at__lt=now - STALE_AFTER,
            attempts__lt=MAX_ATTEMPTS,
        ).update(state=RunState.CONNECTING, heartbeat_at=now, attempts=F("attempts") + 1, worker=worker)
    )


class _Heartbeats:
    """One thread per process keeps heartbeat_at fresh for every run the process has in progress,
    in one UPDATE per beat on one database connection, given back after each beat: a collector
    with 64 runs in flight beats them all with one connection, not 64 threads and 64 connections.
    The thread starts with the first run and ends when the last one is done."""

    def __init__(self, every: float = HEARTBEAT_EVERY):
        self.every = every
        self.lock = threading.Lock()
        self.runs: dict[int, int] = {}  # run id -> how many times it is being beaten (a run redelivered to us)
        self.thread: threading.Thread | None = None

    @contextlib.contextmanager
    def beating(self, run_id: int):
        with self.lock:
            self.runs[run_id] = self.runs.get(run_id, 0) + 1
            if self.thread is None:
                self.thread = threading.Thread(target=self._beat, name="runs-heartbeat", daemon=True)
                self.thread.start()
        try:
            yield
        finally:
            with self.lock:
                self.runs[run_id] -= 1
                if not self.runs[run_id]:
                    del self.runs[run_id]

    def _beat(self) -> None:
        while True:
            time.sleep(self.every)
            with self.lock:
                run_ids = list(self.runs)
                if not run_ids:
                    self.thread = None  # under the lock: the next run to start starts a new thread
                    return
            try:
                CollectionRun.objects.filter(pk__in=run_ids, state__in=ACTIVE_STATES).update(
                    heartbeat_at=timezone.now()
                )
            except Exception as exc:  # noqa: BLE001 - one thread beats every run: it must outlive any failure
                # A database restart, or the pool busy past its wait: the next beat opens a new connection.
                log.warning("heartbeat of runs %s: %s", run_ids, exc)
            finally:
                with contextlib.suppress(DatabaseError):
                    connection.close()


_heartbeats = _Heartbeats()


def _release_connection() -> None:
    """Give this thread's database connection back (to the collector's pool, or closed) before the
    run waits on its host: connections bound how many runs read or write at once, not how many run."""
    if not connection.in_atomic_block:
        connection.close()


@dataclass(frozen=True)
class Ending:
    """How a collection ended, as the collect step found it; ``_finish`` records it."""

    state: str
    reason: str
    kind: str = ""  # the failure kind (diagnostics.failure_kinds), empty for a success


def _finish(run: CollectionRun, *, state: str, reason: str, kind: str = "") -> CollectionRun:
    """Record the terminal state, in one transaction: the run's row, its timeline entry, and that
    entry's publication on the desk's event bus (``triage.events``: webhooks write their
    collection.finished rows here and send them on commit). Nothing else: diagnosis is the next
    step, with transactions of its own (``run_execute``); pages wait for ``diagnosed_at`` before
    they stop following the run. Survives a database restart (the conditional UPDATE makes it safe
    to repeat: a second attempt after a commit whose answer was lost records nothing twice)."""
    return with_database(lambda: _finish_once(run, state=state, reason=reason, kind=kind), what=f"run {run.pk}")


def _finish_once(run: CollectionRun, *, state: str, reason: str, kind: str) -> CollectionRun:
    now = timezone.now()
    with transaction.atomic():
        updated = CollectionRun.objects.filter(pk=run.pk, state__in=ACTIVE_STATES).update(
            state=state, reason=reason, failure_kind=kind, finished_at=now, heartbeat_at=now
        )
        run.refresh_from_db()
        if updated and run.ticket is not None:  # a sweep's run has no ticket timeline: its sweep page shows it
            # Published on the event bus in this transaction (triage.services._event).
            desk.ticket_record_event(
                ticket=run.ticket,
                kind=EventKind.COLLECTION,
                actor=None,
                body=(
                    f"Collection {run.get_state_display().lower()}: {run.playbook_name} on {run.server.name}. {reason}"
                ),
                data={"run": run.pk, "state": state, "server": run.server.name},
                now=now,
            )
    return run


def run_execute(
    *,
    run_id: int,
    worker: str | None = None,
    on_evidence: Callable[[Evidence], None] | None = None,
    dialled: ssh.Dialled | None = None,
) -> CollectionRun | None:
    """Take a queued run to its diagnosis, in named steps, each committed on its own so that none
    widens another's transaction. Returns None if the run is gone or someone else has it.
    `dialled`: see ``run_collect``."""
    # 1. Collect: claim (a conditional UPDATE), connect, run the probes. Each batch of evidence
    #    commits as it arrives; no transaction is open while the host is waited on.
    collected = _collect(run_id=run_id, worker=worker, on_evidence=on_evidence, dialled=dialled)
    if collected is None:
        return None
    run, ending = collected
    # 2. Record the terminal state, one transaction: the run's row, its timeline entry and that
    #    entry's webhooks (collection.finished rows, sent on commit; triage.events).
    run = _finish(run, state=ending.state, reason=ending.reason, kind=ending.kind)
    # 3. Diagnose: match with no transaction held, then one transaction records the fixes it
    #    suggests and announces them (fix.suggested rows, sent on commit), settles a Verify and
    #    marks the run diagnosed; then its sweep, if any, is settled (run_diagnose).
    return diagnosis.run_diagnose(run_id=run.pk) or run


def run_collect(
    *,
    run_id: int,
    worker: str | None = None,
    on_evidence: Callable[[Evidence], None] | None = None,
    dialled: ssh.Dialled | None = None,
) -> CollectionRun | None:
    """Steps 1 and 2 of ``run_execute``, without the diagnosis: claim the run, collect its evidence
    and record its terminal state. Returns None if the run is gone or someone else has it.

    `dialled` is a TCP connection made ahead to the server (``run_batches``): the login uses it only
    if it is to the server's address and port as read now and the route has no jump host; it is
    closed in every other case."""
    collected = _collect(run_id=run_id, worker=worker, on_evidence=on_evidence, dialled=dialled)
    if collected is None:
        return None
    run, ending = collected
    return _finish(run, state=ending.state, reason=ending.reason, kind=ending.kind)


def _collect(
    *,
    run_id: int,
    worker: str | None,
    on_evidence: Callable[[Evidence], None] | None,
    dialled: ssh.Dialled | None,
) -> tuple[CollectionRun, Ending] | None:
    """Claim the run and collect it: the run and how its collection ended (not yet recorded), or None
    if the run is gone or someone else has it. `dialled` is closed in every case."""
    worker = worker or socket.gethostname()
    try:
        if not _claim(run_id, worker, timezone.now()):
            return None
        run = CollectionRun.objects.select_related("server__customer", "ticket").get(pk=run_id)
        return run, _collect_claimed(run, worker, on_evidence, dialled)
    finally:
        if dialled is not None:
            dialled.close()


def _collect_claimed(run: CollectionRun, worker, on_evidence, dialled) -> Ending:
    """How the claimed run's collection ended; every failure, a bug included, is an Ending."""
    # The run bounds itself (a thread pool has no Celery time limits); on a prefork worker Celery's
    # soft limit comes first and raises SoftTimeLimitExceeded here. Either is the run's time limit.
    deadline = time.monotonic() + settings.TRIAGE_COLLECT_TIME_LIMIT + _LIMIT_GRACE
    with _heartbeats.beating(run.pk):
        try:
            return _execute_claimed(run, run.server, worker, on_evidence, deadline=deadline, dialled=dialled)
        except SoftTimeLimitExceeded:
            log.warning("run %s: stopped by the worker's soft time limit", run.pk)
            return _time_limited(run)
        except Exception as exc:  # a run must never stay active because of a bug
            log.exception("run %s failed unexpectedly", run.pk)
            return Ending(RunState.FAILED, f"internal error: {type(exc).__name__}: {exc}", "internal")


def _time_limited(run: CollectionRun) -> Ending:
    limit = settings.TRIAGE_COLLECT_TIME_LIMIT
    finished = run.evidence.exclude(exit_status=None).exclude(step=probes.SESSION_STEP)
    done = with_database(finished.count, what=f"run {run.pk}")
    state = RunState.PARTIAL if done else RunState.FAILED
    reason = (
        f"The run exceeded its time limit of {limit} s and was stopped; {done} of {len(run.steps)} probes had finished."
    )
    return Ending(state, reason, "time_limit")


def _execute_claimed(
    run, server, worker, on_evidence, *, deadline: float, dialled: ssh.Dialled | None = None
) -> Ending:
    credential = credential_for(server)
    if credential is None:
        return Ending(
            state=RunState.FAILED,
            kind="no_credential",
            reason=f"No SSH credential is stored for {server.name} or {server.customer.name}; "
            "an admin can add one on the server page.",
        )
    try:
        secret = credential_secret(credential)
        sudo_password = credential_sudo_password(credential)
    except crypto.CredentialUnreadable as exc:
        return Ending(state=RunState.FAILED, kind="bad_credential", reason=str(exc).capitalize() + ".")
    login_user = credential.login_user(server)
    run.login_user = login_user  # for _address: the audit and the session evidence name who logged in

    all_specs, binary_steps, invalid = _built_steps(run, sudo_password=sudo_password if login_user != "root" else None)
    # A redelivered run keeps what it already has (a first attempt has nothing: no query).
    done = set(run.evidence.values_list("step", flat=True)) if run.attempts > 1 else set()
    specs = [spec for spec in all_specs if int(spec.key) not in done]

    timeouts = ssh.Timeouts(**settings.TRIAGE_SSH_TIMEOUTS)
    chain = jump_hosts.jump_chain(server)
    run.via = jump_hosts.path_label(chain)  # for _address, like login_user
    try:
        via = jump_hosts.hops_for(chain, defaults=settings.TRIAGE_SSH_TIMEOUTS)
    except jump_hosts.JumpHostUnusable as exc:
        return Ending(state=RunState.FAILED, kind="bad_credential", reason=f"{exc}.")
    trust = host_keys.connect_trust(server)
    _release_connection()  # connecting waits on the network (up to the connect and banner bounds)
    try:
        # A quick transient fault (refused, reset, closed before the banner) is tried once more.
        session = ssh.connect_retrying(
            address=server.address,
            port=server.ssh_port,
            username=login_user,
            secret=secret,
            timeouts=timeouts,
            allow_legacy=server.allow_legacy_ssh,
            via=via,
            dialled=dialled,
            **trust,
        )
    except ssh.SshError as exc:
        return _connection_failed(run, server, exc)

    with session:
        host_keys.host_key_proven(server=server, key=session.host_key)
        t = session.timings
        with_database(lambda: _record_connected(run, server, worker, t), what=f"run {run.pk}")

        # Probes run on the session's threads; their results are stored here, on this
        # thread, so database writes stay on the task's own connection.
        finished: queue.Queue[ssh.CommandResult | None] = queue.Queue()

        def run_all() -> None:
            try:
                # Few channels per host: each is a login shell there (see diagnostics.ssh_lanes).
                lanes = ssh_lanes.assign_lanes(specs, settings.TRIAGE_SSH_CHANNELS_PER_HOST)
                session.run_lanes(lanes, on_result=finished.put)
            finally:
                finished.put(None)

        runner = threading.Thread(target=run_all, name=f"run-{run.pk}-probes", daemon=True)
        runner.start()
        over_time = False
        while True:
            try:
                result = finished.get(timeout=_LIMIT_POLL)
            except queue.Empty:
                over_time = time.monotonic() > deadline
                if over_time:
                    break  # leaving `with session` closes the connection: every channel still open ends
                continue
            if result is None:
                break
            # Whatever else has finished meanwhile goes in the same transaction: a lane's quick probes end
            # within milliseconds of each other, and a fleet's runs all store at once through a small pool.
            batch, last = [result], False
            while not last:
                try:
                    waiting = finished.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:
                    last = True
                else:
                    batch.append(waiting)
            stored = with_database(
                functools.partial(_store_evidence, run, batch, binary_steps=binary_steps), what=f"run {run.pk}"
            )
            if on_evidence is not None:
                for one in stored:
                    on_evidence(one)
            if last:
                break
        dropped = not session.alive
    if over_time:
        with_database(lambda: _store_session_evidence(run, t), what=f"run {run.pk}")
        return _time_limited(run)
    evidence = with_database(lambda: list(run.evidence.all()), what=f"run {run.pk}")
    # After the count above: it is no probe of the playbook.
    with_database(lambda: _store_session_evidence(run, t), what=f"run {run.pk}")
    incomplete = [e for e in evidence if e.exit_status is None]
    if dropped and incomplete:
        return Ending(
            state=RunState.PARTIAL,
            kind="dropped",
            reason=f"The connection dropped during the run; {len(evidence) - len(incomplete)} of "
            f"{len(run.steps)} probes finished.",
        )
    if incomplete or invalid:
        names = ", ".join(sorted({e.probe for e in incomplete}))
        problems = [f"{len(incomplete)} probe(s) did not finish ({names})"] if incomplete else []
        problems += invalid
        return Ending(state=RunState.PARTIAL, kind="incomplete", reason="; ".join(problems) + ".")
    needs_root = sorted({e.probe for e in evidence if e.exit_status == privilege.NEEDS_ROOT})
    if needs_root:
        return Ending(
            state=RunState.PARTIAL,
            kind="needs_root",
            reason=f"{len(evidence) - len(needs_root)} of {len(evidence)} probes finished; "
            f"{', '.join(needs_root)} needed root, which {login_user} could not get through sudo "
            "(the server's Access page lists the sudoers lines that allow them).",
        )
    summary = f"All {len(evidence)} probes finished." if len(evidence) != 1 else "The probe finished."
    return Ending(state=RunState.SUCCEEDED, reason=f"{summary} Login took {t.auth:.2f} s.")


def _record_connected(run: CollectionRun, server: Server, worker: str, t: ssh.Timings) -> None:
    """Record the login; the connection is given back after it (the probes run next)."""
    _record_connected_in_transaction(run, server, worker, t)
    _release_connection()


def _record_connected_in_transaction(run: CollectionRun, server: Server, worker: str, t: ssh.Timings) -> None:
    with transaction.atomic():
        CollectionRun.objects.filter(pk=run.pk).update(
            state=RunState.RUNNING,
            connect_seconds=t.connect,
            banner_seconds=t.banner,
            handshake_seconds=t.handshake,
            auth_seconds=t.auth,
            heartbeat_at=timezone.now(),
        )
        AuditEntry.objects.create(
            action="connected",
            server=server,
            ticket=run.ticket,
            run=run,
            address=_address(server, run),
            detail={
                "worker": worker,
                "login_seconds": t.auth,
                "attempts": t.attempts,
                **({"jump_hosts_seconds": t.via} if t.via is not None else {}),
            },
        )


def _built_steps(
    run: CollectionRun, *, sudo_password: str | None = None
) -> tuple[list[ssh.CommandSpec], set[int], list[str]]:
    """The run's steps as commands (keyed by step number), the steps whose output is binary,
    and a message for each step that no longer validates. Probes that run commands as root get
    ``sudo_password`` (when sudo asks for one) on their stdin, read by a prefix to their script."""
    specs, binary, invalid = [], set(), []
    for index, step in enumerate(run.steps):
        try:
            command = probes.build(step["probe"], step.get("params") or {})
        except probes.ProbeError as exc:
            invalid.append(f"step {index + 1} ({step.get('probe')}) skipped: {exc}")
            continue
        text, stdin = command.command, None
        if command.needs_root and sudo_password:
            text, stdin = privilege.reading_sudo_password(text), (sudo_password + "\n").encode()
        specs.append(
            ssh.CommandSpec(
                key=str(index),
                command=text,
                timeout=command.timeout,
                output_cap=command.output_cap,
                stdin=stdin,
                waits=command.waits,
            )
        )
        if command.binary:
            binary.add(index)
    return specs, binary, invalid


def _store_evidence(run: CollectionRun, results: list[ssh.CommandResult], *, binary_steps: set[int]) -> list[Evidence]:
    """Store probes' results, each with its audit entry, in one transaction (so a retry after a lost
    connection stores all or finds all); the new evidence rows (a step that already had its evidence,
    from an earlier delivery of the run, gives none: it was audited then). A handful of statements
    whatever the batch: a fleet's runs all store at once through the collector's small pool. The
    database connection is given back after it: the run waits on its host for more."""
    with transaction.atomic():
        # The heartbeat first: its UPDATE locks the run's row until commit, so a second delivery of the
        # same run (a worker presumed dead that was not) stores after this one and sees its rows below.
        CollectionRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
        steps = [int(result.key) for result in results]
        stored_before = set(Evidence.objects.filter(run=run, step__in=steps).values_list("step", flat=True))
        rows = [
            _evidence_row(run, result, int(result.key), binary=int(result.key) in binary_steps)
            for result in results
            if int(result.key) not in stored_before
        ]
        Evidence.objects.bulk_create(rows)
        AuditEntry.objects.bulk_create([_command_audit(run, row) for row in rows])
    _release_connection()
    return rows


def _evidence_row(run: CollectionRun, result: ssh.CommandResult, step: int, *, binary: bool) -> Evidence:
    spec = run.steps[step]
    return Evidence(
        run=run,
        step=step,
        probe=spec["probe"],
        params=spec.get("params") or {},
        command=result.command,
        exit_status=result.exit_status,
        output=result.stdout,
        stderr=result.stderr,
        binary=binary,
        output_bytes=result.stdout_bytes,
        stderr_bytes=result.stderr_bytes,
        truncated=result.truncated,
        timed_out=result.timed_out,
        error=result.error,
        duration=result.duration,
    )


def _command_audit(run: CollectionRun, evidence: Evidence) -> AuditEntry:
    return AuditEntry(
        action="command",
        server=run.server,
        ticket=run.ticket,
        run=run,
        address=_address(run.server, run),
        command=evidence.command,
        detail={
            "probe": evidence.probe,
            "exit_status": evidence.exit_status,
            "timed_out": evidence.timed_out,
            "seconds": round(evidence.duration, 3),
        },
    )


def _store_session_evidence(run: CollectionRun, timings: ssh.Timings) -> None:
    """The login this run measured, as evidence signatures read (``ssh_session``, after every step).
    A redelivered run keeps the login of the attempt that finished it."""
    phases = {phase: getattr(timings, phase) for phase in probes.measured.PHASES}
    text = probes.session_output(target=_address(run.server, run), timings=phases)
    Evidence.objects.update_or_create(run=run, step=probes.SESSION_STEP, defaults={
        "probe": probes.SESSION_PROBE, "command": "(measured by the product's SSH client; nothing run on the host)",
        "exit_status": 0, "output": text.encode(), "output_bytes": len(text), "duration": timings.auth or 0,
        "recorded_at": timezone.now(),
    })  # fmt: skip


def _connection_failed(run: CollectionRun, server: Server, exc: ssh.SshError) -> Ending:
    if exc.hop is not None:  # a jump host's key: kept on the jump host, the server's pinned keys are not in question
        if exc.host_key is not None:
            jump_hosts.jump_host_key_offered(server=server, hop=exc.hop, key=exc.host_key)
    elif exc.kind == "host_key_unknown" and exc.host_key is not None:
        host_keys.record_offered_key(server, exc.host_key)
    elif exc.kind == "host_key_changed" and exc.host_key is not None:
        host_keys.record_offered_key(server, exc.host_key)
        Server.objects.filter(pk=server.pk).update(host_key_changed_at=timezone.now())
    AuditEntry.objects.create(
        action="connect_failed",
        server=server,
        ticket=run.ticket,
        run=run,
        address=_address(server, run),
        detail={"kind": exc.kind, "message": exc.message, "attempts": exc.attempts},
    )
    return Ending(state=RunState.FAILED, reason=exc.message[:1].upper() + exc.message[1:] + ".", kind=exc.kind)


def run_fail_stuck(*, run_id: int, reason: str) -> None:
    """Steps 2 and 3 of ``run_execute`` for a run whose worker died: record it failed, then diagnose
    what it did collect (it still counts)."""
    run = CollectionRun.objects.select_related("server", "ticket").get(pk=run_id)
    _finish(run, state=RunState.FAILED, reason=reason, kind="worker_lost")
    diagnosis.run_diagnose(run_id=run_id)


def runs_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue runs that never reached a worker; recover runs whose worker died."""
    now = now or timezone.now()
    requeued = 0
    stale_queued = CollectionRun.objects.filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - REQUEUE_AFTER),
        state=RunState.QUEUED,
        created_at__lt=now - REQUEUE_AFTER,
    )
    for run_id in stale_queued.values_list("pk", flat=True)[:500]:
        requeued += run_enqueue(run_id=run_id)
    failed = 0
    lost = CollectionRun.objects.filter(state__in=ACTIVE_STATES, heartbeat_at__lt=now - STALE_AFTER)
    for run_id, attempts in lost.values_list("pk", "attempts")[:500]:
        if attempts >= MAX_ATTEMPTS:
            run_fail_stuck(
                run_id=run_id,
                reason=f"The worker stopped responding during the run ({attempts} attempts); start a new collection.",
            )
            failed += 1
        else:
            requeued += run_enqueue(run_id=run_id)
    # Finished runs whose diagnosis never happened (the worker died between the two steps).
    rediagnosed = 0
    for run_id in diagnosis.runs_undiagnosed(older_than=now - REQUEUE_AFTER):
        rediagnosed += _enqueue_diagnosis(run_id)
    return {"requeued": requeued, "failed": failed, "rediagnosed": rediagnosed}


def _enqueue_diagnosis(run_id: int) -> bool:
    from diagnostics import tasks

    try:
        tasks.diagnose_run.apply_async(args=[run_id], retry=False)
    except Exception as exc:  # noqa: BLE001 - the next sweep tries again
        log.warning("could not enqueue the diagnosis of run %s: %s", run_id, exc)
        return False
    return True
