"""Pre-aggregated dashboard data, kept by ``reports.rollups`` (refresh and rebuild).

Days are UTC days. Rows with ``customer`` NULL hold the total over all customers, so
the unfiltered dashboard reads one row per day instead of one per customer and day.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from diagnostics.models import FixRecipe, Symptom
from reports.histograms import NUM_BUCKETS
from triage.models import Customer


class TicketFact(models.Model):
    """What the rollups counted for one ticket. Kept so that when a ticket changes (a reply,
    a resolution, a reopen clearing ``resolved_at``) the days it used to count on are
    recomputed as well as the days it counts on now."""

    ticket_id = models.BigIntegerField(primary_key=True)
    customer_id = models.BigIntegerField()
    created_day = models.DateField()
    breached = models.BooleanField(default=False)
    first_response_day = models.DateField(null=True)
    first_response_bucket = models.PositiveSmallIntegerField(null=True)
    resolved_day = models.DateField(null=True)
    resolution_bucket = models.PositiveSmallIntegerField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_day"], name="fact_created_day"),
            models.Index(fields=["first_response_day"], name="fact_first_response_day"),
            models.Index(fields=["resolved_day"], name="fact_resolved_day"),
        ]

    def __str__(self) -> str:
        return f"facts of #{self.ticket_id}"

    def days(self) -> set:
        return {d for d in (self.created_day, self.first_response_day, self.resolved_day) if d is not None}


def _per_day_constraints(prefix: str, fields: list[str]) -> list[models.BaseConstraint]:
    """One row per key and day for each customer, and one total row (customer NULL)."""
    return [
        models.UniqueConstraint(
            fields=["day", "customer", *fields], condition=Q(customer__isnull=False), name=f"{prefix}_once_per_customer"
        ),
        models.UniqueConstraint(
            fields=["day", *fields], condition=Q(customer__isnull=True), name=f"{prefix}_once_in_total"
        ),
    ]


class DailyTicketStats(models.Model):
    """Tickets per day and customer: opened (and how many of those breached an SLA target),
    first responses and resolutions that day, with their durations as histograms
    (``frt_NN`` / ``ttr_NN`` count durations in bucket NN of ``reports.histograms``).
    Buckets are columns, not JSON, so the database sums them over any range."""

    day = models.DateField()
    customer = models.ForeignKey(Customer, null=True, on_delete=models.CASCADE, related_name="+")
    opened = models.PositiveIntegerField(default=0)
    breached = models.PositiveIntegerField(default=0)
    first_responses = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = _per_day_constraints("daily_tickets", [])
        indexes = [models.Index(fields=["customer", "day"], name="daily_tickets_customer_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.customer_id or 'all'}"


FRT_FIELDS = [f"frt_{i:02d}" for i in range(NUM_BUCKETS)]
TTR_FIELDS = [f"ttr_{i:02d}" for i in range(NUM_BUCKETS)]
for _name in FRT_FIELDS + TTR_FIELDS:
    DailyTicketStats.add_to_class(_name, models.PositiveIntegerField(default=0))


class DailySymptomStats(models.Model):
    """Matched symptoms per day (of the run) and customer, counted in runs."""

    day = models.DateField()
    customer = models.ForeignKey(Customer, null=True, on_delete=models.CASCADE, related_name="+")
    symptom = models.ForeignKey(Symptom, on_delete=models.CASCADE, related_name="+")
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = _per_day_constraints("daily_symptoms", ["symptom"])
        indexes = [models.Index(fields=["customer", "day"], name="daily_symptoms_customer_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.symptom_id}: {self.runs}"


class DailyRecipeStats(models.Model):
    """Recipe outcomes (suggested / accepted / fixed) of the tickets opened on a day, in tickets."""

    day = models.DateField()
    customer = models.ForeignKey(Customer, null=True, on_delete=models.CASCADE, related_name="+")
    recipe = models.ForeignKey(FixRecipe, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10)
    tickets = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = _per_day_constraints("daily_recipes", ["recipe", "kind"])
        indexes = [models.Index(fields=["customer", "day"], name="daily_recipes_customer_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.recipe_id} {self.kind}: {self.tickets}"


class DailyRunStats(models.Model):
    """Collection runs per day (of the request), customer, state and failure kind."""

    day = models.DateField()
    customer = models.ForeignKey(Customer, null=True, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=12)
    failure_kind = models.CharField(max_length=30, blank=True)
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = _per_day_constraints("daily_runs", ["state", "failure_kind"])
        indexes = [models.Index(fields=["customer", "day"], name="daily_runs_customer_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.state} {self.failure_kind}: {self.runs}"


class RollupCursor(models.Model):
    """How far the periodic refresh has looked (one row). Each refresh scans from the
    *previous* refresh's marks, not its own, so a write committed up to one interval after
    it took its timestamp or id is still seen."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    started_at = models.DateTimeField(null=True)
    event_id = models.BigIntegerField(default=0)
    match_id = models.BigIntegerField(default=0)
    outcome_id = models.BigIntegerField(default=0)
    previous_started_at = models.DateTimeField(null=True)
    previous_event_id = models.BigIntegerField(default=0)
    previous_match_id = models.BigIntegerField(default=0)
    previous_outcome_id = models.BigIntegerField(default=0)
    rebuilt_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"reports refreshed at {self.started_at}"
