"""Fleet sweeps: run one playbook on every server of a customer (or those with a role), group
what the runs found by symptom across the fleet, and file one ticket per symptom.

- ``sweep_start`` commits a sweep and one queued run per server, and enqueues the runs after the
  commit in batches (``run_batches``: a few broker messages, each batch's connects started at once).
  Each host is its own run on a thread of its own, so an unreachable host holds up nobody but itself.
- ``sweep_settle`` is called after each of its runs is diagnosed (``diagnosis.run_diagnose``): the
  call that finds every run settled marks the sweep finished (a conditional UPDATE: one caller
  wins) and, when the sweep was asked to, files its tickets.
- ``sweep_file_tickets`` files one ticket per symptom found, or adds to the customer's open ticket
  that a sweep filed for the same symptom, so a nightly sweep never opens the same ticket twice.
- ``sweeps_start_due`` is beat's: it starts each schedule's sweep once per due time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from diagnostics.models import (
    AuditEntry,
    CollectionRun,
    FixRecipe,
    Playbook,
    RecipeOutcome,
    Sweep,
    SweepFinding,
    SweepSchedule,
)
from diagnostics.services import run_batches
from diagnostics.services.runs import _address
from triage import services as desk
from triage.models import OPEN_STATUSES, Customer, Server, ServerRole, Ticket

log = logging.getLogger(__name__)


def sweep_servers(*, customer: Customer, role: ServerRole | None = None) -> list[Server]:
    servers = customer.servers.all()
    if role is not None:
        servers = servers.filter(roles=role)
    return list(servers.order_by("name", "pk"))


def sweep_start(
    *,
    customer: Customer,
    playbook: Playbook,
    role: ServerRole | None = None,
    by=None,
    open_tickets: bool = False,
    schedule: SweepSchedule | None = None,
    enqueue: bool = True,
) -> Sweep:
    """Queue ``playbook`` on each of the customer's servers (with ``role``, when given)."""
    if not playbook.enabled:
        raise ValidationError({"playbook": "That playbook is disabled."})
    if not playbook.steps:
        raise ValidationError({"playbook": "That playbook has no steps."})
    servers = sweep_servers(customer=customer, role=role)
    if not servers:
        where = f" with the role {role.name}" if role is not None else ""
        raise ValidationError(
            {"role" if role is not None else "customer": f"{customer.name} has no server{where} to sweep."}
        )
    with transaction.atomic():
        sweep = Sweep.objects.create(
            customer=customer,
            playbook=playbook,
            playbook_name=playbook.name,
            role=role,
            requested_by=by,
            open_tickets=open_tickets,
            schedule=schedule,
        )
        # One INSERT for the runs and one for their audit entries, whatever the size of the fleet: this is
        # the request that starts the sweep.
        runs = CollectionRun.objects.bulk_create(
            [
                CollectionRun(
                    sweep=sweep,
                    server=server,
                    playbook=playbook,
                    playbook_name=playbook.name,
                    steps=playbook.steps,
                    requested_by=by,
                )
                for server in servers
            ]
        )
        AuditEntry.objects.bulk_create(
            [
                AuditEntry(
                    actor=by,
                    action="run_requested",
                    server=run.server,
                    run=run,
                    address=_address(run.server),
                    detail={"playbook": playbook.name, "sweep": sweep.pk},
                )
                for run in runs
            ]
        )
        if enqueue:  # a few messages for the whole fleet, once committed (see run_batches)
            transaction.on_commit(lambda: run_batches.runs_enqueue([run.pk for run in runs]))
    return sweep


def sweep_settle(*, sweep_id: int) -> bool:
    """Mark the sweep finished once every run is terminal and diagnosed; file its tickets when it
    was asked to. Safe to call after every run and from any number of workers: True only for the
    call that finished it."""
    if CollectionRun.objects.filter(sweep_id=sweep_id, diagnosed_at__isnull=True).exists():
        return False
    # Finished and filed in one transaction: a page that sees the sweep finished sees its tickets too.
    with transaction.atomic():
        finished = Sweep.objects.filter(pk=sweep_id, finished_at__isnull=True).update(finished_at=timezone.now())
        if not finished:
            return False
        sweep = Sweep.objects.select_related("customer", "requested_by").get(pk=sweep_id)
        if sweep.open_tickets:
            try:
                with transaction.atomic():
                    sweep_file_tickets(sweep=sweep, by=sweep.requested_by)
            except Exception:  # the sweep still finishes; its page offers to file the tickets by hand
                log.exception("sweep %s: filing its tickets failed", sweep_id)
    return True


def _host_list(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _description(group, sweep: Sweep) -> str:
    lines = [f"Sweep #{sweep.pk} ({sweep.playbook_name}) found this on {group.count} of {group.total} hosts.", ""]
    for host in group.hosts:
        lines.append(f"{host.server_name} (run {host.run_id}):")
        lines += [
            f"  {c.probe} line {c.line}: {c.text}" if c.line is not None else f"  {c.probe}: {c.text}"
            for c in host.citations[:5]
        ]
    return "\n".join(lines)[:20000]


def sweep_file_tickets(*, sweep: Sweep, by=None) -> list[tuple[Ticket, bool]]:
    """One ticket per symptom the finished sweep found: [(ticket, opened)], opened False when the
    symptom was added to the customer's open ticket that a sweep filed for it before.

    Deduplicated by (customer, symptom) over open tickets holding a SweepFinding of the symptom,
    under a lock on the customer row, so two sweeps filing at once cannot both open one; a
    symptom this sweep already filed is skipped, so filing twice files nothing twice."""
    from diagnostics.sweep_selectors import sweep_results

    if sweep.finished_at is None:
        raise ValidationError("The sweep is still running; tickets are filed once every host has finished.")
    results = sweep_results(sweep=sweep)
    filed: list[tuple[Ticket, bool]] = []
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=sweep.customer_id)
        for group in results.groups:
            symptom = group.symptom
            if SweepFinding.objects.filter(sweep=sweep, symptom=symptom).exists():
                continue
            servers = [host.server for host in group.hosts]
            ticket = (
                Ticket.objects.filter(
                    customer_id=sweep.customer_id, status__in=OPEN_STATUSES, sweep_findings__symptom=symptom
                )
                .order_by("created_at", "pk")
                .first()
            )
            names = [host.server_name for host in group.hosts]
            if ticket is None:
                ticket = desk.ticket_create(
                    subject=f"{symptom.title} ({group.count} of {group.total} hosts)"[:200],
                    description=_description(group, sweep),
                    customer=sweep.customer,
                    servers=servers,
                    created_by=by,
                )
                opened = True
            else:
                current = list(ticket.servers.all())
                added = [s for s in servers if s not in current]
                if added:
                    desk.ticket_set_servers(ticket=ticket, servers=current + added, by=by)
                desk.ticket_add_note(
                    ticket=ticket,
                    author=by,
                    body=(
                        f"Seen again on {group.count} of {group.total} hosts (sweep #{sweep.pk}): {_host_list(names)}."
                    ),
                )
                opened = False
            SweepFinding.objects.bulk_create(
                [SweepFinding(ticket=ticket, sweep=sweep, run_id=host.run_id, symptom=symptom) for host in group.hosts],
                ignore_conflicts=True,
            )
            recipes = FixRecipe.objects.filter(symptoms=symptom).values_list("pk", flat=True)
            RecipeOutcome.objects.bulk_create(
                [RecipeOutcome(ticket=ticket, recipe_id=pk, kind=RecipeOutcome.SUGGESTED) for pk in recipes],
                ignore_conflicts=True,
            )
            filed.append((ticket, opened))
        Sweep.objects.filter(pk=sweep.pk, tickets_filed_at__isnull=True).update(tickets_filed_at=timezone.now())
    return filed


# --- Schedules --------------------------------------------------------------------------


def schedule_due_at(schedule: SweepSchedule, *, now: datetime) -> datetime:
    """The latest due time of a daily schedule at or before ``now`` (UTC)."""
    due = now.astimezone(UTC).replace(hour=schedule.hour, minute=schedule.minute, second=0, microsecond=0)
    return due if due <= now else due - timedelta(days=1)


def schedule_save(*, schedule: SweepSchedule, now: datetime | None = None) -> SweepSchedule:
    """Save a new or edited schedule; it first fires at its next due time, not for one already past."""
    schedule.full_clean()
    schedule.last_due_at = schedule_due_at(schedule, now=now or timezone.now())
    schedule.save()
    return schedule


def sweeps_start_due(*, now: datetime | None = None) -> list[Sweep]:
    """Start the sweep of every enabled schedule whose due time has come since it last started one.

    The claim is a conditional UPDATE of ``last_due_at`` in the sweep's own transaction: a second
    beat, or a retry, for the same due time updates no row and starts nothing."""
    now = now or timezone.now()
    started = []
    for schedule in SweepSchedule.objects.filter(enabled=True).select_related("customer", "playbook", "role"):
        due = schedule_due_at(schedule, now=now)
        if schedule.last_due_at is not None and schedule.last_due_at >= due:
            continue
        try:
            with transaction.atomic():
                claimed = SweepSchedule.objects.filter(
                    pk=schedule.pk, enabled=True, last_due_at=schedule.last_due_at
                ).update(last_due_at=due)
                if not claimed:
                    continue
                started.append(
                    sweep_start(
                        customer=schedule.customer,
                        playbook=schedule.playbook,
                        role=schedule.role,
                        by=schedule.created_by,
                        open_tickets=schedule.open_tickets,
                        schedule=schedule,
                    )
                )
        except ValidationError as exc:  # a disabled playbook, no server with the role: try again next time
            log.warning("sweep schedule %s not started: %s", schedule.pk, "; ".join(exc.messages))
            SweepSchedule.objects.filter(pk=schedule.pk).update(last_due_at=due)
    return started
