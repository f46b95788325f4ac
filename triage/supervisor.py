"""A small process supervisor for the one-machine desk (`manage.py rundesk`).

It starts each child, watches them all, restarts one that exits with an exponential
backoff, and gives up when a child keeps dying: more than `max_restarts` restarts
within `window` seconds. Giving up stops every other child and returns non-zero, so
whoever started the desk sees it fail instead of a desk that serves pages with no
worker behind them (what happened when kombu's transport killed the worker).

Each child runs in its own process group, so stopping or reaping one also reaches its
own children (a Celery worker's pool processes), and a terminal's Ctrl-C reaches only
the supervisor, which then stops the children in order.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("triage.supervisor")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None


@dataclass(frozen=True)
class ChildSpec:
    """One supervised program: a name for the logs and the command that runs it."""

    name: str
    argv: list[str]


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5  # restarts of one child allowed within `window`...
    window: float = 120.0  # ...seconds; one more and the desk stops
    backoff_initial: float = 1.0  # seconds before the first restart, doubled each time
    backoff_max: float = 30.0
    stop_timeout: float = 15.0  # SIGTERM, then SIGKILL after this many seconds


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen | _NeverStarted | None = None
    restarts: deque[float] = field(default_factory=deque)  # monotonic times of recent restarts
    restart_at: float | None = None  # when a dead child is due to be started again


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Supervisor:
    def __init__(
        self, specs: list[ChildSpec], *, policy: RestartPolicy, cwd: Path | None = None, poll_interval: float = 0.2
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self.children = [_Child(spec) for spec in specs]
        self.policy = policy
        self.cwd = cwd
        self.poll_interval = poll_interval
        self._stop_requested: int | None = None

    # --- lifecycle ------------------------------------------------------------------
    def run(self) -> int:
        """Run until a stop signal (returns 0) or a child that cannot be kept up (returns 1)."""
        stop_signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._request_stop) for sig in stop_signals}
        try:
            for child in self.children:
                self._start(child)
            failed = self._watch()
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if failed else 0

    def _request_stop(self, signum, _frame) -> None:
        self._stop_requested = signum

    def _watch(self) -> bool:
        while self._stop_requested is None:
            now = time.monotonic()
            for child in self.children:
                exited = child.process is not None and child.process.poll() is not None
                if exited and not self._child_died(child, now):
                    return True
                if child.restart_at is not None and now >= child.restart_at:
                    self._start(child)
            time.sleep(self.poll_interval)
        logger.info("rundesk: %s received, stopping", signal.Signals(self._stop_requested).name)
        return False

    def _child_died(self, child: _Child, now: float) -> bool:
        """Log the death and schedule a restart; False when the restart budget is spent."""
        process = child.process
        assert process is not None  # _watch saw it exit
        child.process = None
        self._reap_group(process)
        logger.error("rundesk: %s (pid %d) %s", child.spec.name, process.pid, describe_exit(process.returncode))
        while child.restarts and now - child.restarts[0] > self.policy.window:
            child.restarts.popleft()
        if len(child.restarts) >= self.policy.max_restarts:
            logger.critical(
                "rundesk: %s died %d times within %.0f s; giving up and stopping the desk",
                child.spec.name,
                len(child.restarts) + 1,
                self.policy.window,
            )
            return False
        delay = min(self.policy.backoff_initial * 2 ** len(child.restarts), self.policy.backoff_max)
        child.restarts.append(now)
        child.restart_at = now + delay
        logger.error(
            "rundesk: restarting %s in %.1f s (restart %d of %d allowed within %.0f s)",
            child.spec.name,
            delay,
            len(child.restarts),
            self.policy.max_restarts,
            self.policy.window,
        )
        return True

    def _start(self, child: _Child) -> None:
        child.restart_at = None
        try:
            child.process = subprocess.Popen(  # noqa: S603 - our own argv
                child.spec.argv, cwd=self.cwd, process_group=0, preexec_fn=die_with_parent
            )
        except OSError as exc:
            # A missing program is a death like any other: it is retried, then given up on.
            logger.error("rundesk: %s could not be started: %s", child.spec.name, exc)
            child.process = _NeverStarted()
            return
        logger.info("rundesk: started %s (pid %d)", child.spec.name, child.process.pid)

    def stop_all(self) -> None:
        """SIGTERM every live child, wait, then SIGKILL the process groups of those still running.

        The leader alone gets SIGTERM: a Celery worker then stops its own pool (warm shutdown) instead
        of finding its pool processes killed under it; whatever a leader leaves in its group is
        SIGKILLed once it has gone (``_reap_group``)."""
        # A _NeverStarted stand-in has always exited (its poll() is its exit status).
        live = [
            c.process for c in self.children if isinstance(c.process, subprocess.Popen) and c.process.poll() is None
        ]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.policy.stop_timeout
        for process in live:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error(
                    "rundesk: pid %d did not stop within %.0f s; killing it", process.pid, self.policy.stop_timeout
                )
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for child in self.children:
            if child.process is not None:
                self._reap_group(child.process)
                child.process = None

    @staticmethod
    def _reap_group(process: subprocess.Popen | _NeverStarted) -> None:
        # The leader is gone; anything it left in its group (pool processes) goes with it.
        _signal_group(process, signal.SIGKILL)


def die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the supervisor dies, even by SIGKILL (Linux only).

    Children live in their own process groups, so nothing else would reach them then."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class _NeverStarted:
    """Stands in for a process whose program could not be executed at all."""

    pid = 0
    returncode = 127

    def poll(self) -> int:
        return self.returncode


def _signal_group(process, sig: int) -> None:
    if not process.pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
