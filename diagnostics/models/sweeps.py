"""Fleet sweeps: one playbook run across a customer's servers (or those with a role), its
schedules, and the tickets it filed per symptom.

A sweep's progress and results are derived from its runs (``CollectionRun.sweep``); the sweep
row itself records who asked, what for, and when every run had settled (``finished_at``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from diagnostics.models.collection import CollectionRun, Playbook
from diagnostics.models.knowledge import Symptom
from triage.models import Customer, ServerRole, Ticket


class SweepSchedule(models.Model):
    """Sweep a customer's servers every day at hour:minute UTC (started by beat's ``start_due_sweeps``)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="sweep_schedules")
    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="sweep_schedules")
    role = models.ForeignKey(
        ServerRole,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only servers with this role; blank: every server of the customer.",
    )
    hour = models.PositiveSmallIntegerField(validators=[MaxValueValidator(23)])
    minute = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(59)])
    open_tickets = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    # The due time of the last sweep this schedule started: the claim that makes a second beat (or a
    # retried task) for the same due time start nothing (see services.sweeps.sweeps_start_due).
    last_due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["customer", "hour", "minute", "id"]

    def __str__(self) -> str:
        return f"{self.playbook} daily at {self.hour:02d}:{self.minute:02d} UTC for {self.customer}"


class Sweep(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="sweeps")
    playbook = models.ForeignKey(Playbook, null=True, on_delete=models.SET_NULL, related_name="sweeps")
    playbook_name = models.CharField(max_length=100)
    role = models.ForeignKey(ServerRole, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    schedule = models.ForeignKey(
        SweepSchedule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sweeps",
        help_text="The schedule that started it, if one did.",
    )
    open_tickets = models.BooleanField(default=False, help_text="File a ticket per symptom found once it finishes.")
    created_at = models.DateTimeField(default=timezone.now)
    # Set once every run is terminal and diagnosed (services.sweeps.sweep_settle), by one caller only.
    finished_at = models.DateTimeField(null=True, blank=True)
    tickets_filed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="sweep_customer_created")]

    def __str__(self) -> str:
        return f"sweep {self.pk} of {self.playbook_name} for {self.customer_id}"


class SweepFinding(models.Model):
    """A ticket a sweep filed (or added to) for a symptom, and a run of the sweep that proved it.

    Two jobs: the ticket's diagnosis reads these runs as its own for that symptom (so the ticket
    shows ranked fixes with the proving lines), and an open ticket with a finding of a symptom is
    where the customer's next sweep that finds the same symptom adds its hosts (deduplication).
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="sweep_findings")
    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="findings")
    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="sweep_findings")
    symptom = models.ForeignKey(Symptom, on_delete=models.CASCADE, related_name="sweep_findings")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket", "run", "symptom"], name="sweep_finding_once"),
            # One ticket per symptom per sweep: a second filing of the same sweep adds nothing.
            models.UniqueConstraint(fields=["sweep", "run", "symptom"], name="sweep_finding_once_per_sweep"),
        ]
        indexes = [models.Index(fields=["symptom", "ticket"], name="sweep_finding_symptom")]

    def __str__(self) -> str:
        return f"{self.symptom_id} on run {self.run_id} -> ticket {self.ticket_id}"
