"""Jump hosts (bastions): the hosts a customer's servers are reached through, hop by hop.

A jump host has its own login user, its own credential (stored only as Fernet tokens, like
`Credential`) and its own pinned host keys, and may set its own connect bounds (blank: the
server defaults, settings.TRIAGE_SSH_TIMEOUTS). A server's chain is its `JumpLink` rows in
order; a server without any uses its customer's default chain.

Why not `Credential`/`HostKey` rows pointed at a jump host: both are keyed to a server or a
customer by constraints that the collection code relies on; a jump host's secret and keys
never apply to a server, so they live here, beside it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from diagnostics.models.collection import Credential, HostKey
from triage.models import Customer, Server, slug_token, ssh_user_validator

# The connect bounds a jump host may set for itself, in seconds.
JUMP_BOUNDS = ("connect", "banner", "handshake", "auth")


class JumpHost(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="jump_hosts")
    name = models.CharField(max_length=40, validators=[slug_token], help_text="Named in errors: 'jump host <name>: …'.")
    address = models.CharField(max_length=253, help_text="Host name or IP address, as the hop before it reaches it.")
    ssh_port = models.PositiveIntegerField(default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    username = models.CharField(max_length=32, validators=[ssh_user_validator])
    credential_kind = models.CharField(max_length=10, choices=Credential.KINDS, blank=True)
    secret_token = models.BinaryField(null=True, blank=True)
    passphrase_token = models.BinaryField(null=True, blank=True)
    public_fingerprint = models.CharField(max_length=80, blank=True)
    connect_timeout = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.5)])
    banner_timeout = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.5)])
    handshake_timeout = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.5)])
    auth_timeout = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.5)])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["customer__name", "name"]
        constraints = [models.UniqueConstraint(fields=["customer", "name"], name="jump_host_name_unique_per_customer")]

    def __str__(self) -> str:
        return f"jump host {self.name} ({self.address})"

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_kind and self.secret_token)

    def bounds(self) -> dict[str, float]:
        """The bounds this jump host sets for itself (the others come from the server defaults)."""
        return {bound: value for bound in JUMP_BOUNDS if (value := getattr(self, f"{bound}_timeout")) is not None}


class JumpHostKey(models.Model):
    """A jump host's SSH host key: pending until an admin trusts it; only trusted keys are pinned."""

    jump_host = models.ForeignKey(JumpHost, on_delete=models.CASCADE, related_name="host_keys")
    key_type = models.CharField(max_length=40)
    key_base64 = models.TextField()
    fingerprint = models.CharField(max_length=80)
    status = models.CharField(max_length=10, choices=HostKey.STATUSES, default=HostKey.PENDING)
    source = models.CharField(max_length=20, default="seen", help_text="seen on connect, or known_hosts import")
    first_seen_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["jump_host", "-first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["jump_host", "key_type", "key_base64"], name="jump_host_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key_type} {self.fingerprint} ({self.status})"


class JumpLink(models.Model):
    """One hop of a chain: the server's own, or its customer's default (exactly one of the two)."""

    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    jump_host = models.ForeignKey(JumpHost, on_delete=models.PROTECT, related_name="links")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(customer__isnull=False) & Q(server__isnull=True))
                | (Q(customer__isnull=True) & Q(server__isnull=False)),
                name="jump_link_for_customer_xor_server",
            ),
            models.UniqueConstraint(
                fields=["server", "position"], condition=Q(server__isnull=False), name="jump_link_position_per_server"
            ),
            models.UniqueConstraint(
                fields=["customer", "position"],
                condition=Q(customer__isnull=False),
                name="jump_link_position_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"hop {self.position + 1}: {self.jump_host.name}"
