"""Is a worker alive? Read from the heartbeat beat records every 30 s (triage.tasks)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from triage.models import Heartbeat


@dataclass(frozen=True)
class WorkerHealth:
    last_seen: dt.datetime | None
    max_age: dt.timedelta
    now: dt.datetime

    @property
    def alive(self) -> bool:
        return self.last_seen is not None and self.now - self.last_seen <= self.max_age

    @property
    def problem(self) -> str:
        """Why no worker counts as alive, in words for staff and monitors ('' when one is)."""
        if self.alive:
            return ""
        if self.last_seen is None:
            return "no worker has reported since the desk started"
        age = int((self.now - self.last_seen).total_seconds())
        return f"no worker heartbeat for {age} s (last {self.last_seen:%Y-%m-%d %H:%M:%S} UTC)"


def worker_health() -> WorkerHealth:
    """The worker is alive when its heartbeat is at most TRIAGE_WORKER_HEARTBEAT_MAX_AGE seconds old."""
    beat = Heartbeat.objects.filter(name="worker").only("seen_at").first()
    return WorkerHealth(
        last_seen=beat.seen_at if beat else None,
        now=timezone.now(),
        max_age=dt.timedelta(seconds=settings.TRIAGE_WORKER_HEARTBEAT_MAX_AGE),
    )
