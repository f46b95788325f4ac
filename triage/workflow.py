"""The ticket status workflow: which status may follow which.

new -> triaging -> waiting on customer -> resolved -> closed, with shortcuts a
desk really uses (resolving straight from new, waiting before triage) and
reopening (resolved or closed back to triaging). Nothing returns to "new":
once somebody has looked at a ticket, it has been looked at.
"""

from __future__ import annotations

from triage.models import Status

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.TRIAGING, Status.WAITING, Status.RESOLVED}),
    Status.TRIAGING: frozenset({Status.WAITING, Status.RESOLVED}),
    Status.WAITING: frozenset({Status.TRIAGING, Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.CLOSED, Status.TRIAGING}),
    Status.CLOSED: frozenset({Status.TRIAGING}),
}

REOPENING = frozenset({(Status.RESOLVED, Status.TRIAGING), (Status.CLOSED, Status.TRIAGING)})


class TransitionRefused(Exception):
    """The requested status change is not allowed from the ticket's current status."""


def allowed_next(status: str) -> list[str]:
    """Statuses reachable from `status`, in workflow order (for forms and buttons)."""
    order = [choice.value for choice in Status]
    return [s for s in order if s in TRANSITIONS.get(status, ())]


def check_transition(*, current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, ()):
        raise TransitionRefused(
            f"A ticket that is {Status(current).label.lower()} cannot become {Status(target).label.lower()}."
        )


def is_reopening(*, current: str, target: str) -> bool:
    return (current, target) in REOPENING


# Merging closes the merged ticket from any status (services via triage.merging), outside TRANSITIONS:
# a tech may not close a new ticket by hand, but a duplicate is done with the moment it is merged.
MERGE_CLOSES_FROM = frozenset({Status.NEW, Status.TRIAGING, Status.WAITING, Status.RESOLVED})


def check_merge_close(*, current: str) -> None:
    """May merging close a ticket that is ``current``? (A closed one stays closed: no move at all.)"""
    if current not in MERGE_CLOSES_FROM and current != Status.CLOSED:
        raise TransitionRefused(f"A ticket that is {Status(current).label.lower()} cannot be closed by a merge.")


# A public reply on a new ticket means somebody is on it (services.ticket_reply).
REPLY_MOVES: dict[str, str] = {Status.NEW: Status.TRIAGING}


def send_and_set_choices(status: str) -> list[str]:
    """Statuses a reply may set in the same step ("Send and set …"): those the workflow allows
    from `status`, less the one the reply alone moves the ticket to (plain "Send" does that)."""
    moved = REPLY_MOVES.get(status)
    return [s for s in allowed_next(status) if s != moved]
