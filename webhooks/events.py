"""What each event says: payloads built from the desk's own rows.

Which timeline entries become which event is decided here, in one table:
internal notes (and SLA and fix-verdict entries) send nothing. A note is a tech's working
text for colleagues; a webhook leaves the building (customer portals, chat rooms), so even a
body-less "updated" ping for a note would tell outsiders that something internal happened.
"""

from __future__ import annotations

from django.db.models import Count, Q

from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import TERMINAL_STATES, CollectionRun
from triage.models import EventKind, Ticket, TicketEvent
from webhooks.models import EventType

UPDATE_KINDS = {
    EventKind.STATUS,
    EventKind.ASSIGNMENT,
    EventKind.PRIORITY,
    EventKind.TAGS,
    EventKind.SERVERS,
    EventKind.REPLY,
}


def event_type_for(event: TicketEvent) -> str | None:
    if event.kind == EventKind.CREATED:
        return EventType.TICKET_CREATED
    if event.kind in UPDATE_KINDS:
        return EventType.TICKET_UPDATED
    if event.kind == EventKind.COLLECTION and event.data.get("state") in TERMINAL_STATES:
        return EventType.COLLECTION_FINISHED
    return None


def ticket_summary(ticket: Ticket) -> dict:
    return {
        "id": ticket.pk,
        "reference": ticket.reference,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "customer": {"id": ticket.customer_id, "name": ticket.customer.name},
        "assignee": ticket.assignee.get_username() if ticket.assignee else None,
        "servers": sorted(ticket.servers.values_list("name", flat=True)),
        "tags": sorted(ticket.tags.values_list("name", flat=True)),
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


def _actor(event: TicketEvent) -> str | None:
    return event.actor.get_username() if event.actor else None


def ticket_payload(event: TicketEvent, event_type: str) -> dict:
    ticket = Ticket.objects.select_related("customer", "assignee").get(pk=event.ticket_id)
    data = {"ticket": ticket_summary(ticket), "actor": _actor(event), "at": event.created_at.isoformat()}
    if event_type == EventType.TICKET_CREATED:
        data["description"] = ticket.description
    else:
        change = {"kind": event.kind}
        if event.kind == EventKind.REPLY:
            change["body"] = event.body  # public: the customer was sent this text
        else:
            # A status change may carry a note; like internal notes, it stays inside.
            change.update({"from": event.data.get("from"), "to": event.data.get("to")})
        data["change"] = change
    return data


def collection_payload(event: TicketEvent) -> dict:
    # The entry written when a run ends (runs._finish) names a terminal state; the request entry says "queued".
    run = CollectionRun.objects.select_related("server", "ticket__customer", "ticket__assignee").get(
        pk=event.data["run"]
    )
    assert run.ticket is not None  # the run was named by an entry on its ticket's timeline
    counts = run.evidence.aggregate(
        stored=Count("pk"),
        succeeded=Count("pk", filter=Q(exit_status=0)),
        timed_out=Count("pk", filter=Q(timed_out=True)),
        truncated=Count("pk", filter=Q(truncated=True)),
    )
    return {
        "ticket": ticket_summary(run.ticket),
        "run": {
            "id": run.pk,
            "state": run.state,
            "reason": run.reason,
            "failure_kind": run.failure_kind,
            "playbook": run.playbook_name,
            "server": run.server.name,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "counts": {"probes": len(run.steps), **counts},
        },
    }


def fixes_payload(run, recipe_ids: list[int]) -> dict:
    wanted = set(recipe_ids)
    ranked = [entry for entry in ranked_fixes(run=run) if entry["recipe"].pk in wanted]
    ticket = Ticket.objects.select_related("customer", "assignee").get(pk=run.ticket_id)
    return {
        "ticket": ticket_summary(ticket),
        "run": {"id": run.pk, "state": run.state, "server": run.server.name},
        "recipes": [
            {
                "key": entry["recipe"].key,
                "title": entry["recipe"].title,
                "score": entry["score"],
                "risk": entry["recipe"].risk,
                "symptoms": [{"key": s.key, "title": s.title} for s in entry["symptoms"]],
            }
            for entry in ranked
        ],
    }
