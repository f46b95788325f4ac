"""Outbound webhooks: endpoints that subscribe to desk events, and one delivery row per event per endpoint."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone

from triage import crypto
from triage.models import Customer


class EventType(models.TextChoices):
    TICKET_CREATED = "ticket.created", "Ticket created"
    TICKET_UPDATED = "ticket.updated", "Ticket updated (status, assignment, priority, tags, servers, public reply)"
    COLLECTION_FINISHED = "collection.finished", "Collection finished"
    FIX_SUGGESTED = "fix.suggested", "Fix suggested"


# Sent only by "send test event"; no endpoint subscribes to it.
PING = "ping"

http_url = URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// URL.")


class Endpoint(models.Model):
    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(max_length=500, validators=[http_url])
    # Fernet token (triage.crypto, CREDENTIALS_KEYS); the plaintext is shown once, on creation or rotation.
    secret_token = models.BinaryField()
    event_types = models.JSONField(default=list, help_text="The EventType values this endpoint receives.")
    enabled = models.BooleanField(default=True)
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        help_text="Only this customer's tickets; empty for every customer.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    secret_rotated_at = models.DateTimeField(default=timezone.now)
    disabled_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def secret(self) -> str:
        return crypto.decrypt(self.secret_token)


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (not retried)"
    GAVE_UP = "gave_up", "Gave up after retries"


class Delivery(models.Model):
    """One event for one endpoint. ``event_id`` is the receiver's idempotency key: it is the same on
    every attempt and on a redelivery, so a receiver that saw it already can ignore it."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40)
    event_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    payload = models.JSONField()
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Held by the worker sending it; a worker that dies mid-send lets go when this passes.
    locked_until = models.DateTimeField(null=True, blank=True)

    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)
    last_duration = models.FloatField(null=True, blank=True, help_text="Seconds the last attempt took.")

    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["endpoint", "-created_at", "-id"], name="delivery_endpoint_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.endpoint_id} ({self.state})"
