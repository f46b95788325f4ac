"""What became of each fix recipe on each ticket: suggested, accepted, fixed, rejected.

The matcher records "suggested" whenever a finished run of a ticket matched a symptom the
recipe fixes; techs record "accepted" (they are applying it), "fixed" (they resolved the
ticket with it) or "rejected" (it does not apply here). Each kind is recorded once per ticket
and recipe, so counts are of tickets.

Every writer takes an optional ``now`` so the demo loader can record outcomes at the
simulated time they happened, as the desk services do.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from diagnostics.models import CollectionRun, FixRecipe, RecipeOutcome
from triage import services as desk
from triage import workflow
from triage.models import EventKind, Status, Ticket


def outcomes_record_suggested(*, run: CollectionRun) -> list[int]:
    """Record "suggested" for every recipe of every symptom matched on ``run``; returns the ids of the
    recipes new to the ticket. Announcing them (``triage.events.fixes_suggested``) is the caller's
    step, in the same transaction (``diagnosis.run_diagnose``)."""
    if run.ticket_id is None:
        return []
    recipe_ids = set(
        FixRecipe.objects.filter(symptoms__matches__run=run, symptoms__matches__matched=True).values_list(
            "pk", flat=True
        )
    )
    already = set(
        RecipeOutcome.objects.filter(
            ticket_id=run.ticket_id, recipe_id__in=recipe_ids, kind=RecipeOutcome.SUGGESTED
        ).values_list("recipe_id", flat=True)
    )
    new = [
        RecipeOutcome(ticket_id=run.ticket_id, recipe_id=pk, kind=RecipeOutcome.SUGGESTED)
        for pk in sorted(recipe_ids - already)
    ]
    RecipeOutcome.objects.bulk_create(new, ignore_conflicts=True)
    return [outcome.recipe_id for outcome in new]


def recipe_outcome_counts(recipes=None) -> dict[int, dict[str, int]]:
    """{recipe id: {"suggested": n, "accepted": n, "fixed": n, "rejected": n}} counted in tickets."""
    rows = FixRecipe.objects.all() if recipes is None else recipes
    counted = rows.annotate(
        **{kind: Count("outcomes", filter=Q(outcomes__kind=kind)) for kind, _ in RecipeOutcome.KINDS}
    ).values("pk", *(kind for kind, _ in RecipeOutcome.KINDS))
    return {row.pop("pk"): row for row in counted}


def _check_open(ticket: Ticket) -> None:
    """Verdicts on fixes belong to a ticket being worked: a closed one is reopened first (read from the
    database: the caller's copy may predate the close)."""
    if Ticket.objects.filter(pk=ticket.pk, status=Status.CLOSED).exists():
        raise ValidationError("This ticket is closed: reopen it to record a verdict on a fix.")


def _check_suggested(*, ticket: Ticket, recipe: FixRecipe) -> None:
    if not RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe, kind=RecipeOutcome.SUGGESTED).exists():
        raise ValidationError(f"{recipe.title} was not suggested on this ticket.")


def outcome_record_accepted(*, ticket: Ticket, recipe: FixRecipe, by, now: datetime | None = None) -> bool:
    """A tech is applying ``recipe`` on ``ticket``: recorded once, with a timeline entry the first
    time. Returns whether this call recorded it. Only a recipe suggested on the ticket can be accepted;
    accepting a recipe rejected earlier withdraws the rejection (it applies after all)."""
    _check_open(ticket)
    _check_suggested(ticket=ticket, recipe=recipe)
    now = now or timezone.now()
    with transaction.atomic():
        RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe, kind=RecipeOutcome.REJECTED).delete()
        _, created = RecipeOutcome.objects.get_or_create(
            ticket=ticket, recipe=recipe, kind=RecipeOutcome.ACCEPTED, defaults={"by": by, "at": now}
        )
        if created:
            desk.ticket_record_event(
                ticket=ticket,
                kind=EventKind.FIX,
                actor=by,
                body=f"Applying suggested fix: {recipe.title}",
                data={"recipe": recipe.key, "outcome": RecipeOutcome.ACCEPTED},
                now=now,
            )
    return created


def outcome_record_fixed(*, ticket: Ticket, recipe: FixRecipe, by, now: datetime | None = None) -> bool:
    """``recipe`` fixed ``ticket`` (recorded as the tech resolves it). A ticket has one fixing
    recipe: resolving again after a reopen names what fixed it this time, so an earlier "fixed"
    on another recipe is withdrawn. Fixing implies accepting (and withdraws a rejection of it).
    Returns whether this call recorded it."""
    _check_suggested(ticket=ticket, recipe=recipe)
    now = now or timezone.now()
    with transaction.atomic():
        RecipeOutcome.objects.filter(ticket=ticket, kind=RecipeOutcome.FIXED).exclude(recipe=recipe).delete()
        RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe, kind=RecipeOutcome.REJECTED).delete()
        RecipeOutcome.objects.get_or_create(
            ticket=ticket, recipe=recipe, kind=RecipeOutcome.ACCEPTED, defaults={"by": by, "at": now}
        )
        _, created = RecipeOutcome.objects.get_or_create(
            ticket=ticket, recipe=recipe, kind=RecipeOutcome.FIXED, defaults={"by": by, "at": now}
        )
        if created:
            desk.ticket_record_event(
                ticket=ticket,
                kind=EventKind.FIX,
                actor=by,
                body=f"Fixed by: {recipe.title}",
                data={"recipe": recipe.key, "outcome": RecipeOutcome.FIXED},
                now=now,
            )
    return created


def outcome_record_rejected(
    *, ticket: Ticket, recipe: FixRecipe, by, reason: str = "", now: datetime | None = None
) -> bool:
    """A tech says ``recipe`` does not apply to ``ticket``: recorded once (a second rejection
    changes nothing, not even the reason), with one timeline entry. Returns whether this call
    recorded it. Refused for a recipe that was not suggested, or that fixed the ticket, and on a closed
    ticket."""
    _check_open(ticket)
    _check_suggested(ticket=ticket, recipe=recipe)
    now = now or timezone.now()
    reason = reason.strip()
    with transaction.atomic():
        if RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe, kind=RecipeOutcome.FIXED).exists():
            raise ValidationError(f"{recipe.title} fixed this ticket; it cannot be rejected.")
        _, created = RecipeOutcome.objects.get_or_create(
            ticket=ticket, recipe=recipe, kind=RecipeOutcome.REJECTED, defaults={"by": by, "at": now, "note": reason}
        )
        if created:
            # A rejected fix is no longer being applied.
            RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe, kind=RecipeOutcome.ACCEPTED).delete()
            desk.ticket_record_event(
                ticket=ticket,
                kind=EventKind.FIX,
                actor=by,
                body=f"Rejected suggested fix: {recipe.title}" + (f". Reason: {reason}" if reason else ""),
                data={"recipe": recipe.key, "outcome": RecipeOutcome.REJECTED, "reason": reason},
                now=now,
            )
    return created


def ticket_resolve_with_fix(
    *,
    ticket: Ticket,
    recipe: FixRecipe,
    by,
    note: str = "",
    now: datetime | None = None,
    expected_version: int | None = None,
) -> Ticket:
    """Resolve ``ticket`` and record that ``recipe`` fixed it, in one transaction: both or neither.
    The one way to do it: the fix panel's button and the status form's "fixed by" both come here.

    Raises triage.services.TicketChanged when the ticket is no longer at ``expected_version`` (given),
    workflow.TransitionRefused (saying why) when it cannot be resolved from its status, and
    ValidationError when the recipe was not suggested on it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # The row lock first: the status checked here is the one the resolution moves from.
        current, version = Ticket.objects.select_for_update().values_list("status", "version").get(pk=ticket.pk)
        if expected_version is not None and version != expected_version:
            raise desk.TicketChanged(seen=expected_version, current=version)
        if Status.RESOLVED not in workflow.allowed_next(current):
            raise workflow.TransitionRefused(
                f"This ticket is {Status(current).label.lower()}: it cannot be resolved with a fix. "
                "Reopen it first if the problem came back."
            )
        _check_suggested(ticket=ticket, recipe=recipe)
        resolved = desk.ticket_change_status(
            ticket=ticket, status=Status.RESOLVED, by=by, note=note or f"Resolved with fix: {recipe.title}", now=now
        )
        outcome_record_fixed(ticket=resolved, recipe=recipe, by=by, now=now)
    return resolved


def ticket_suggested_recipes(*, ticket: Ticket) -> QuerySet[FixRecipe]:
    """Every recipe suggested on ``ticket`` so far (any run), by title: the choices for "what fixed it"."""
    return (
        FixRecipe.objects.filter(outcomes__ticket=ticket, outcomes__kind=RecipeOutcome.SUGGESTED)
        .distinct()
        .order_by("title", "key")
    )


def ticket_recipe_progress(*, ticket: Ticket, recipe_ids) -> dict[int, set[str]]:
    """{recipe id: the kinds among accepted/fixed/rejected/verified recorded on ``ticket``} for those recipes."""
    done: dict[int, set[str]] = {}
    for recipe_id, kind in RecipeOutcome.objects.filter(
        ticket=ticket,
        recipe_id__in=list(recipe_ids),
        kind__in=(RecipeOutcome.ACCEPTED, RecipeOutcome.FIXED, RecipeOutcome.REJECTED, RecipeOutcome.VERIFIED),
    ).values_list("recipe_id", "kind"):
        done.setdefault(recipe_id, set()).add(kind)
    return done


def ticket_rejection_reasons(*, ticket: Ticket, recipe_ids) -> dict[int, str]:
    """{recipe id: the reason given} for the recipes among ``recipe_ids`` rejected on ``ticket``."""
    return dict(
        RecipeOutcome.objects.filter(
            ticket=ticket, recipe_id__in=list(recipe_ids), kind=RecipeOutcome.REJECTED
        ).values_list("recipe_id", "note")
    )


__all__ = [
    "outcome_record_accepted",
    "outcome_record_fixed",
    "outcome_record_rejected",
    "outcomes_record_suggested",
    "recipe_outcome_counts",
    "ticket_recipe_progress",
    "ticket_rejection_reasons",
    "ticket_resolve_with_fix",
    "ticket_suggested_recipes",
]
