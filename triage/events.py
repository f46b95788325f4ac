"""The desk's event bus: what the rest of the product hears about, and who hears it.

Writers publish by calling a named function here, explicitly, after the row is written and
inside their own transaction; there are no ``post_save`` receivers and no Django signals, so a
reader of a service sees every side effect it starts. Two things are published:

- ``ticket_event_recorded(event)``: a timeline entry was appended. Called by
  ``triage.services._event``, the one writer of ``TicketEvent`` rows (a row written any other
  way, such as ``TicketEvent.objects.create`` or a fixture load, is published to nobody).
- ``fixes_suggested(run=..., recipe_ids=...)``: a run's diagnosis suggested fixes the ticket had
  not had before. Called by ``diagnostics.knowledge.diagnosis.run_diagnose`` in the diagnosis's
  own transaction, next to the outcome rows it announces.

Subscribers, registered in their app's ``AppConfig.ready`` (the desk must not import the apps
built on it, so they sign up here instead of being called by name):

====================  =====================================  ==================================
published             subscriber                             what it does
====================  =====================================  ==================================
ticket_event_recorded ``webhooks.subscribers.ticket_event``  Delivery rows for ticket.created,
                                                             ticket.updated and
                                                             collection.finished, in the
                                                             writer's transaction; each handed
                                                             to the broker on commit
ticket_event_recorded ``mailgate.subscribers.ticket_event``  for a fresh reply or assignment,
                                                             enqueues ``notify_event`` on commit
fixes_suggested       ``webhooks.subscribers.fixes``         a fix.suggested Delivery row per
                                                             endpoint, enqueued on commit
====================  =====================================  ==================================

``tests/test_events.py`` pins this table against what is registered.

The contract for a subscriber: it runs inside the writer's transaction (so what it writes
rolls back with the write), it talks to nothing outside the database before the commit
(``transaction.on_commit``), and it contains its own faults: a webhook bug must never stop a
tech from filing a ticket or a run from finishing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from triage.models import TicketEvent

TICKET_EVENT_RECORDED = "ticket_event_recorded"
FIXES_SUGGESTED = "fixes_suggested"
TOPICS = (TICKET_EVENT_RECORDED, FIXES_SUGGESTED)

# topic -> [(name, handler)], in registration order (the order INSTALLED_APPS gives).
_subscribers: dict[str, list[tuple[str, Callable[..., None]]]] = {topic: [] for topic in TOPICS}


def subscribe(topic: str, handler: Callable[..., None]) -> None:
    """Register ``handler`` for ``topic`` (once: a second registration of the same function is ignored,
    as AppConfig.ready may run twice in a test process)."""
    if topic not in _subscribers:
        raise ValueError(f"unknown topic {topic!r}; the topics are {', '.join(TOPICS)}")
    name = f"{handler.__module__}.{handler.__qualname__}"
    if name not in (registered for registered, _ in _subscribers[topic]):
        _subscribers[topic].append((name, handler))


def subscribers() -> dict[str, list[str]]:
    """{topic: the dotted names of its subscribers, in calling order}: what the table above must say."""
    return {topic: [name for name, _ in handlers] for topic, handlers in _subscribers.items()}


def ticket_event_recorded(event: TicketEvent) -> None:
    """A timeline entry was just written (in the caller's transaction)."""
    for _, handler in _subscribers[TICKET_EVENT_RECORDED]:
        handler(event=event)


def fixes_suggested(*, run: Any, recipe_ids: list[int]) -> None:
    """``run`` (a diagnostics CollectionRun) suggested the fix recipes ``recipe_ids`` for the first
    time on its ticket (in the diagnosis's transaction)."""
    for _, handler in _subscribers[FIXES_SUGGESTED]:
        handler(run=run, recipe_ids=recipe_ids)
