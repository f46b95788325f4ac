"""The knowledge base (symptoms, fix recipes, their history) and the matches of runs against it.

Signatures are data validated by ``diagnostics.knowledge.signature``; writes go through
``diagnostics.knowledge.services`` so that every change leaves a KnowledgeRevision.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from diagnostics.models.collection import CollectionRun


class KnowledgeEntry(models.Model):
    """What symptoms and recipes share: a stable key, a title, and a version bumped by every
    change the knowledge services save (see ``services._save_versioned``)."""

    key = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True
        ordering = ["key"]

    def __str__(self) -> str:
        return self.title


class Symptom(KnowledgeEntry):
    """A known failure: what it looks like in the evidence (signature) and why it matters."""

    explanation = models.TextField(blank=True)
    impact = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(5)])
    likelihood = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(5)])
    signature = models.JSONField(default=dict)
    threshold = models.FloatField(default=0.6, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    enabled = models.BooleanField(default=True)
    # Root cause before consequence: when a cause matched on the same run, this symptom's
    # recipes rank below the cause's (raising the fd limit only moves a hung upstream's failure).
    caused_by = models.ManyToManyField("self", symmetrical=False, related_name="consequences", blank=True)


class FixRecipe(KnowledgeEntry):
    """How to fix one or more symptoms: steps a tech follows by hand, snippets to copy, and the risk."""

    RISKS = [("low", "Low"), ("medium", "Medium"), ("high", "High")]
    NEEDS = [("none", "Nothing"), ("restart", "A service restart"), ("reboot", "A reboot")]

    steps = models.JSONField(default=list)
    snippets = models.JSONField(default=list, help_text="[{label, language, text}]")
    risk = models.CharField(max_length=10, choices=RISKS, default="low")
    needs = models.CharField(max_length=10, choices=NEEDS, default="none")
    references = models.JSONField(default=list)
    symptoms = models.ManyToManyField(Symptom, related_name="recipes", blank=True)
    # A signature over the run that says this recipe fits the host (tcpserver runs, exim runs...);
    # empty means general advice. Evaluated by the matcher into a RecipeFit per run.
    applies_when = models.JSONField(default=dict, blank=True)


class KnowledgeRevision(models.Model):
    """One saved version of a symptom or recipe, as a snapshot. Append-only."""

    SYMPTOM = "symptom"
    RECIPE = "recipe"
    KINDS = [(SYMPTOM, "Symptom"), (RECIPE, "Fix recipe")]

    kind = models.CharField(max_length=10, choices=KINDS)
    key = models.CharField(max_length=80)
    version = models.PositiveIntegerField()
    data = models.JSONField(default=dict)
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["kind", "key", "-version"]
        constraints = [models.UniqueConstraint(fields=["kind", "key", "version"], name="knowledge_revision_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} v{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("knowledge revisions are append-only")
        super().save(*args, **kwargs)


class Confidence(models.TextChoices):
    STRONG = "strong", "Strong"
    LIKELY = "likely", "Likely"
    POSSIBLE = "possible", "Possible"


class Match(models.Model):
    """How well one symptom's signature fits one run, and the evidence lines that say so."""

    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="matches")
    symptom = models.ForeignKey(Symptom, on_delete=models.CASCADE, related_name="matches")
    score = models.FloatField()
    confidence = models.CharField(max_length=10, choices=Confidence.choices)
    matched = models.BooleanField(default=False, help_text="The signature held and the score reached the threshold.")
    near_miss = models.BooleanField(default=False, help_text="Some conditions held; shown to admins only.")
    why = models.TextField(blank=True)
    citations = models.JSONField(default=list, help_text="[{evidence_id, step, probe, line_start, line_end, text}]")
    symptom_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "-score", "symptom_id"]
        constraints = [models.UniqueConstraint(fields=["run", "symptom"], name="match_once_per_run_symptom")]
        indexes = [models.Index(fields=["symptom", "matched"], name="match_symptom_matched")]

    def __str__(self) -> str:
        return f"{self.symptom_id} on run {self.run_id}: {self.score:.2f} ({self.confidence})"


class RecipeFit(models.Model):
    """Whether a recipe with an ``applies_when`` signature fits the host of one run, and why."""

    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="recipe_fits")
    recipe = models.ForeignKey(FixRecipe, on_delete=models.CASCADE, related_name="fits")
    applies = models.BooleanField()
    why = models.TextField(blank=True)
    citations = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "recipe"], name="recipe_fit_once_per_run")]

    def __str__(self) -> str:
        return f"{self.recipe_id} on run {self.run_id}: {'fits' if self.applies else 'does not fit'}"


class RecipeOutcome(models.Model):
    """What happened to a recipe on a ticket: suggested (by the matcher), accepted (a tech is
    applying it), fixed (the tech resolved the ticket with it), rejected (a tech says it does
    not apply, with an optional reason in ``note``) or verified (a Verify run re-collected what
    proved its symptom and the symptom was gone). Once per kind per ticket."""

    SUGGESTED = "suggested"
    ACCEPTED = "accepted"
    FIXED = "fixed"
    REJECTED = "rejected"
    VERIFIED = "verified"
    KINDS = [
        (SUGGESTED, "Suggested"),
        (ACCEPTED, "Accepted"),
        (FIXED, "Fixed the ticket"),
        (REJECTED, "Rejected: does not apply"),
        (VERIFIED, "Verified: the symptom is gone"),
    ]

    ticket = models.ForeignKey("triage.Ticket", on_delete=models.CASCADE, related_name="recipe_outcomes")
    recipe = models.ForeignKey(FixRecipe, on_delete=models.CASCADE, related_name="outcomes")
    kind = models.CharField(max_length=10, choices=KINDS)
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=500, blank=True, help_text="Why a tech rejected it (optional).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket", "recipe", "kind"], name="recipe_outcome_once_per_kind")
        ]
        indexes = [models.Index(fields=["recipe", "kind"], name="recipe_outcome_recipe_kind")]

    def __str__(self) -> str:
        return f"{self.recipe_id} {self.kind} on ticket {self.ticket_id}"
