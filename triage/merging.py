"""Writes that relate tickets to each other: merging duplicates into one, and linking related ones.

Merging. Source tickets (the duplicates) are merged into a survivor of the same customer, in
one transaction with every row locked in id order (two merges of overlapping tickets cannot
deadlock). The timeline is append-only, so nothing is moved off it: the survivor's timeline is
read together with its merged tickets' (triage.selectors.ticket_timeline), each entry marked
with the ticket it was written on. What the survivor works with is moved onto it instead:
- collection runs and sweep findings (their ``ticket``; diagnostics moves its own rows, through
  triage.extensions): the survivor's diagnosis, ranked
  fixes and "what fixed it" choices then come from all of the evidence, through the same code
  that reads a single ticket's, and runs still going report to the survivor;
- the recipes' suggested/accepted/rejected/verified records the survivor does not have yet
  (a source's "fixed" stays: the survivor was not fixed with it);
- servers and tags (unioned onto the survivor), and its related tickets (links).
Each source gets "Merged into #34", is closed (a merge may close from any status: its own rule,
workflow.check_merge_close) and points at the survivor; the survivor gets "Merged #12 into this
ticket". Mail threading onto a source lands on the survivor (mailgate.services._find_thread).

Refused, with a sentence: a ticket into itself, tickets of another customer, a survivor that
is closed or itself merged, a source already merged, and a source that others were merged into
(that would make a chain; merge into it instead).

Links. Two tickets, of any customers, related both ways (one TicketLink row per pair). Adding
or removing one is a change to both tickets: an entry on each timeline and both versions move.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from triage import access, extensions, services, workflow
from triage.models import EventKind, Status, Ticket, TicketLink


def merge_refusal(*, source: Ticket, into: Ticket, has_merged: bool | None = None) -> str | None:
    """Why ``source`` cannot be merged into ``into``, in a sentence; None when it can.

    ``has_merged``: whether tickets were merged into ``source`` (read when not given)."""
    if source.pk == into.pk:
        return f"{source.reference} cannot be merged into itself."
    if into.merged_into_id is not None:
        return f"{into.reference} was itself merged into #{into.merged_into_id}: merge into #{into.merged_into_id}."
    if into.status == Status.CLOSED:
        return f"{into.reference} is closed: reopen it first, or merge into an open ticket."
    if source.merged_into_id is not None:
        return f"{source.reference} is already merged into #{source.merged_into_id}."
    if source.customer_id != into.customer_id:
        return (
            f"{source.reference} is for {source.customer.name} and {into.reference} for {into.customer.name}: "
            "only tickets of the same customer can be merged."
        )
    if has_merged is None:
        has_merged = source.merged_tickets.exists()
    if has_merged:
        return (
            f"Tickets were merged into {source.reference}, so it cannot be merged in turn: "
            f"merge {into.reference} into {source.reference} instead."
        )
    try:
        workflow.check_merge_close(current=source.status)
    except workflow.TransitionRefused as exc:
        return str(exc)
    return None


def tickets_merge(*, sources: Iterable[Ticket], into: Ticket, by, now: datetime | None = None) -> Ticket:
    """Merge ``sources`` into ``into`` (see the module docstring); all or nothing. Returns the survivor.

    Raises ValidationError with the first refusal's sentence."""
    access.ticket_access(user=by, action="work")
    now = now or timezone.now()
    source_ids = sorted({t.pk for t in sources})
    if not source_ids:
        raise ValidationError("Choose the tickets to merge.")
    with transaction.atomic():
        # Every row locked in one statement, in id order: the fixed order is what rules out deadlocks.
        locked = {
            t.pk: t for t in Ticket.objects.select_for_update().filter(pk__in=[*source_ids, into.pk]).order_by("pk")
        }
        if into.pk not in locked:
            raise ValidationError(f"There is no ticket {into.reference}.")
        survivor = locked[into.pk]
        merged_already = set(Ticket.objects.filter(merged_into__in=source_ids).values_list("merged_into", flat=True))
        for pk in source_ids:
            refusal = merge_refusal(source=locked[pk], into=survivor, has_merged=pk in merged_already)
            if refusal:
                raise ValidationError(refusal)
        services._changed(survivor, now=now)
        survivor.save(update_fields=["updated_at", "version"])
        for pk in source_ids:
            _merge_one(source=locked[pk], survivor=survivor, by=by, now=now)
        _union_servers_and_tags(survivor=survivor, source_ids=source_ids, by=by, now=now)
        _union_people(survivor=survivor, sources=[locked[pk] for pk in source_ids], by=by, now=now)
    return survivor


def _merge_one(*, source: Ticket, survivor: Ticket, by, now: datetime) -> None:
    note = f"Merged into {survivor.reference}."
    source.merged_into = survivor
    source.save(update_fields=["merged_into"])
    if source.status != Status.CLOSED:
        services.status_apply_locked(
            ticket=source, status=Status.CLOSED, by=by, note=note, now=now, data={"merged_into": survivor.pk}
        )
    else:
        services._changed(source, now=now)
        source.save(update_fields=["updated_at", "version"])
    services._event(
        ticket=source,
        kind=EventKind.MERGE,
        actor=by,
        at=now,
        version=source.version,
        body=note,
        data={"into": survivor.pk, "subject": survivor.subject},
    )
    services._event(
        ticket=survivor,
        kind=EventKind.MERGE,
        actor=by,
        at=now,
        version=survivor.version,
        body=f"Merged {source.reference} into this ticket.",
        data={"source": source.pk, "subject": source.subject},
    )
    # Collections, sweep findings and fix verdicts (diagnostics') follow, through the desk's extension point.
    extensions.ticket_merged(source=source, survivor=survivor)
    _move_links(source=source, survivor=survivor)


def _move_links(*, source: Ticket, survivor: Ticket) -> None:
    """The source's related tickets become the survivor's (a link to the survivor itself just goes)."""
    links = list(TicketLink.objects.filter(Q(low=source) | Q(high=source)))
    TicketLink.objects.filter(pk__in=[link.pk for link in links]).delete()
    for link in links:
        other = link.other(source.pk)
        if other != survivor.pk:
            low, high = sorted((other, survivor.pk))
            TicketLink.objects.get_or_create(
                low_id=low, high_id=high, defaults={"created_by_id": link.created_by_id, "created_at": link.created_at}
            )


def _union_servers_and_tags(*, survivor: Ticket, source_ids: list[int], by, now: datetime) -> None:
    """The sources' servers and tags added to the survivor's, each addition on its timeline."""
    for kind, relation in ((EventKind.SERVERS, "servers"), (EventKind.TAGS, "tags")):
        manager = getattr(survivor, relation)
        model = manager.model
        have = set(manager.values_list("pk", flat=True))
        extra = list(model.objects.filter(tickets__in=source_ids).exclude(pk__in=have).distinct())
        if not extra:
            continue
        before = sorted(manager.values_list("name", flat=True))
        manager.add(*extra)
        services._event(
            ticket=survivor,
            kind=kind,
            actor=by,
            at=now,
            version=survivor.version,
            data={"from": before, "to": sorted([*before, *(o.name for o in extra)])},
        )


def _union_people(*, survivor: Ticket, sources: list[Ticket], by, now: datetime) -> None:
    """Who the merged tickets were for is copied on the survivor, so a reply there reaches them: its
    requester stays (or the first source's, when it had none), the sources' requesters and CCs join
    its CCs, its own first, up to services.MAX_CCS (the rest are named on the timeline entry)."""
    requester = survivor.requester or next((s.requester for s in sources if s.requester_id), None)
    wanted = [*survivor.ccs.all()]
    for source in sources:
        wanted += [source.requester] if source.requester is not None else []
        wanted += list(source.ccs.order_by("email"))
    ccs = list({c.pk: c for c in wanted if requester is None or c.pk != requester.pk}.values())
    kept, left_out = ccs[: services.MAX_CCS], ccs[services.MAX_CCS :]
    before = (
        survivor.requester.email if survivor.requester is not None else None,
        sorted(survivor.ccs.values_list("email", flat=True)),
    )
    after = (requester.email if requester else None, sorted(c.email for c in kept))
    if before == after:
        return
    survivor.requester = requester
    survivor.save(update_fields=["requester"])
    survivor.ccs.set(kept)
    body = (
        f"Not copied (at most {services.MAX_CCS} in copy): {', '.join(c.email for c in left_out)}." if left_out else ""
    )
    services._event(
        ticket=survivor,
        kind=EventKind.PEOPLE,
        actor=by,
        at=now,
        version=survivor.version,
        body=body,
        data={"requester": {"from": before[0], "to": after[0]}, "ccs": {"from": before[1], "to": after[1]}},
    )


# --- Links ------------------------------------------------------------------------------


def _pair(a: Ticket, b: Ticket) -> tuple[int, int]:
    return (a.pk, b.pk) if a.pk < b.pk else (b.pk, a.pk)


def _lock_both(a: Ticket, b: Ticket) -> tuple[Ticket, Ticket]:
    """Both rows locked in id order, each refused if it was merged away."""
    rows = {t.pk: t for t in Ticket.objects.select_for_update().filter(pk__in=[a.pk, b.pk]).order_by("pk")}
    for row in rows.values():
        services.check_not_merged(row)
    return rows[a.pk], rows[b.pk]


def _link_entries(*, a: Ticket, b: Ticket, by, now: datetime, added: bool) -> None:
    for this, other in ((a, b), (b, a)):
        services._changed(this, now=now)
        this.save(update_fields=["updated_at", "version"])
        services._event(
            ticket=this,
            kind=EventKind.LINK,
            actor=by,
            at=now,
            version=this.version,
            data={"other": other.pk, "added": added},
        )


def ticket_link(*, ticket: Ticket, other: Ticket, by, now: datetime | None = None) -> TicketLink:
    """Relate two tickets (any customers); refused for the ticket itself, a merged one, or a pair already related."""
    access.ticket_access(user=by, action="work")
    now = now or timezone.now()
    if other.pk == ticket.pk:
        raise ValidationError("A ticket cannot be related to itself.")
    with transaction.atomic():
        ticket, other = _lock_both(ticket, other)
        low, high = _pair(ticket, other)
        if TicketLink.objects.filter(low_id=low, high_id=high).exists():
            raise ValidationError(f"{ticket.reference} and {other.reference} are already related.")
        link = TicketLink.objects.create(low_id=low, high_id=high, created_by=by, created_at=now)
        _link_entries(a=ticket, b=other, by=by, now=now, added=True)
    return link


def ticket_unlink(*, ticket: Ticket, link_id: int, by, now: datetime | None = None) -> None:
    """Remove one of ``ticket``'s links (either way round); refused if it is not one of its links."""
    access.ticket_access(user=by, action="work")
    now = now or timezone.now()
    link = TicketLink.objects.filter(pk=link_id).first()
    if link is None or ticket.pk not in (link.low_id, link.high_id):
        raise ValidationError("That link is no longer there.")
    with transaction.atomic():
        a, b = _lock_both(Ticket(pk=link.low_id), Ticket(pk=link.high_id))
        if not TicketLink.objects.filter(pk=link.pk).delete()[0]:
            raise ValidationError("That link is no longer there.")
        _link_entries(a=a, b=b, by=by, now=now, added=False)
