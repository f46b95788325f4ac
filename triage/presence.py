"""Who else is on a ticket right now: "Ada is replying", "Bob is viewing".

Kept in the shared cache (Redis in production: every gunicorn worker sees the same), one entry per
ticket mapping each user to what they were last doing and when; an entry older than ``FRESH`` is
gone. A page reports itself viewing as it polls (every ``POLL_SECONDS``), and typing comes from the
composers' draft autosaves. Nothing here is a lock: it only tells a tech before they collide.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

POLL_SECONDS = 10
FRESH = 3 * POLL_SECONDS  # seconds a report counts: a closed tab drops off within this
VIEWING, REPLYING, NOTING = "viewing", "replying", "writing a note"
# Typing outranks viewing: a poll does not turn "replying" back into "viewing" while it is fresh.
_RANK = {VIEWING: 0, NOTING: 1, REPLYING: 2}


@dataclass(frozen=True)
class Presence:
    user_id: int
    name: str
    doing: str


def _key(ticket_id: int) -> str:
    return f"presence:ticket:{ticket_id}"


def presence_report(*, ticket_id: int, user, doing: str, now: float | None = None) -> None:
    """Record that ``user`` is ``doing`` something on the ticket (read-modify-write: a report lost
    to a concurrent one is made again at the next poll or keystroke)."""
    now = time.time() if now is None else now
    entries = {uid: e for uid, e in (cache.get(_key(ticket_id)) or {}).items() if now - e[2] < FRESH}
    previous = entries.get(user.pk)
    if previous and previous[1] != doing and _RANK[previous[1]] > _RANK[doing] and now - previous[2] < FRESH:
        doing = previous[1]  # still typing as far as anyone can tell
        now = previous[2]
    name = user.get_full_name() or user.get_username()
    entries[user.pk] = (name, doing, now)
    cache.set(_key(ticket_id), entries, FRESH)


def presence_others(*, ticket_id: int, user, now: float | None = None) -> list[Presence]:
    """Everyone but ``user`` active on the ticket within ``FRESH`` seconds, typists first."""
    now = time.time() if now is None else now
    entries = cache.get(_key(ticket_id)) or {}
    others = [
        Presence(uid, name, doing) for uid, (name, doing, at) in entries.items() if uid != user.pk and now - at < FRESH
    ]
    return sorted(others, key=lambda p: (-_RANK[p.doing], p.name))
