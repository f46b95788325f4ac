"""What became of each fix recipe on each ticket: suggested, accepted, fixed.

The matcher records "suggested" whenever a finished run of a ticket matched a symptom the
recipe fixes; techs record "accepted" (they are applying it) and "fixed" (they resolved the
ticket with it). Each kind is recorded once per ticket and recipe, so counts are of tickets.
"""

from __future__ import annotations

from django.db.models import Count, Q

from diagnostics.models import CollectionRun, FixRecipe, RecipeOutcome


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


__all__ = ["outcomes_record_suggested", "recipe_outcome_counts"]
