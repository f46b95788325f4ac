"""What became of each fix recipe on each ticket: suggested, accepted, fixed.

The matcher records "suggested" whenever a finished run of a ticket matched a symptom the
recipe fixes; techs record "accepted" (they are applying it) and "fixed" (they resolved the
ticket with it). Each kind is recorded once per ticket and recipe, so counts are of tickets.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet

from diagnostics.models import CollectionRun, FixRecipe, RecipeOutcome
from triage import services as desk
from triage.models import EventKind, Ticket


def outcomes_record_suggested(*, run: CollectionRun) -> int:
    """Record "suggested" for every recipe of every symptom matched on ``run``; returns how many were new."""
    if run.ticket_id is None:
        return 0
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
    return len(new)


def recipe_outcome_counts(recipes=None) -> dict[int, dict[str, int]]:
    """{recipe id: {"suggested": n, "accepted": n, "fixed": n}} counted in tickets."""
    rows = FixRecipe.objects.all() if recipes is None else recipes
    counted = rows.annotate(
        **{kind: Count("outcomes", filter=Q(outcomes__kind=kind)) for kind, _ in RecipeOutcome.KINDS}
    ).values("pk", *(kind for kind, _ in RecipeOutcome.KINDS))
    return {row.pop("pk"): row for row in counted}


def _check_suggested(*, ticket: Ticket, recipe: FixRecipe) -> None:
    if not RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe, kind=RecipeOutcome.SUGGESTED).exists():
        raise ValidationError(f"{recipe.title} was not suggested on this ticket.")


def outcome_record_accepted(*, ticket: Ticket, recipe: FixRecipe, by) -> bool:
    """A tech is applying ``recipe`` on ``ticket``: recorded once, with a timeline entry the first
    time. Returns whether this call recorded it. Only a recipe suggested on the ticket can be accepted."""
    _check_suggested(ticket=ticket, recipe=recipe)
    with transaction.atomic():
        _, created = RecipeOutcome.objects.get_or_create(
            ticket=ticket, recipe=recipe, kind=RecipeOutcome.ACCEPTED, defaults={"by": by}
        )
        if created:
            desk.ticket_record_event(
                ticket=ticket,
                kind=EventKind.FIX,
                actor=by,
                body=f"Applying suggested fix: {recipe.title}",
                data={"recipe": recipe.key, "outcome": RecipeOutcome.ACCEPTED},
            )
    return created


def outcome_record_fixed(*, ticket: Ticket, recipe: FixRecipe, by) -> bool:
    """``recipe`` fixed ``ticket`` (recorded as the tech resolves it). A ticket has one fixing
    recipe: resolving again after a reopen names what fixed it this time, so an earlier "fixed"
    on another recipe is withdrawn. Fixing implies accepting. Returns whether this call recorded it."""
    _check_suggested(ticket=ticket, recipe=recipe)
    with transaction.atomic():
        RecipeOutcome.objects.filter(ticket=ticket, kind=RecipeOutcome.FIXED).exclude(recipe=recipe).delete()
        RecipeOutcome.objects.get_or_create(
            ticket=ticket, recipe=recipe, kind=RecipeOutcome.ACCEPTED, defaults={"by": by}
        )
        _, created = RecipeOutcome.objects.get_or_create(
            ticket=ticket, recipe=recipe, kind=RecipeOutcome.FIXED, defaults={"by": by}
        )
        if created:
            desk.ticket_record_event(
                ticket=ticket,
                kind=EventKind.FIX,
                actor=by,
                body=f"Fixed by: {recipe.title}",
                data={"recipe": recipe.key, "outcome": RecipeOutcome.FIXED},
            )
    return created


def ticket_suggested_recipes(*, ticket: Ticket) -> QuerySet[FixRecipe]:
    """Every recipe suggested on ``ticket`` so far (any run), by title: the choices for "what fixed it"."""
    return (
        FixRecipe.objects.filter(outcomes__ticket=ticket, outcomes__kind=RecipeOutcome.SUGGESTED)
        .distinct()
        .order_by("title", "key")
    )


def ticket_recipe_progress(*, ticket: Ticket, recipe_ids) -> dict[int, set[str]]:
    """{recipe id: the kinds among accepted/fixed recorded on ``ticket``} for those recipes."""
    done: dict[int, set[str]] = {}
    for recipe_id, kind in RecipeOutcome.objects.filter(
        ticket=ticket, recipe_id__in=list(recipe_ids), kind__in=(RecipeOutcome.ACCEPTED, RecipeOutcome.FIXED)
    ).values_list("recipe_id", "kind"):
        done.setdefault(recipe_id, set()).add(kind)
    return done


__all__ = [
    "outcome_record_accepted",
    "outcome_record_fixed",
    "outcomes_record_suggested",
    "recipe_outcome_counts",
    "ticket_recipe_progress",
    "ticket_suggested_recipes",
]
