"""Evidence collection: credentials, pinned host keys, playbooks, runs, evidence and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from triage.models import Customer, Server, Ticket, ssh_user_validator


class Credential(models.Model):
    """An SSH credential for all of a customer's servers, or for one server.

    The secret (private key or password) and the key's passphrase are stored
    only as Fernet tokens (see triage.crypto); they are never rendered back.
    """

    KEY = "key"
    PASSWORD = "password"  # noqa: S105 - a kind, not a secret
    KINDS = [(KEY, "Private key"), (PASSWORD, "Password")]

    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="credentials")
    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=10, choices=KINDS)
    secret_token = models.BinaryField()
    passphrase_token = models.BinaryField(null=True, blank=True)
    # The login user this credential belongs to; blank: each server's own SSH user (Server.ssh_user).
    username = models.CharField(max_length=32, blank=True, validators=[ssh_user_validator])
    # For a login user whose sudo asks for a password: fed to `sudo -S` on stdin, never on a command line.
    sudo_password_token = models.BinaryField(null=True, blank=True)
    public_fingerprint = models.CharField(
        max_length=80, blank=True, help_text="SHA256 fingerprint of the public key, for recognising it."
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(customer__isnull=False) & Q(server__isnull=True))
                | (Q(customer__isnull=True) & Q(server__isnull=False)),
                name="credential_for_customer_xor_server",
            ),
            models.UniqueConstraint(
                fields=["customer"], condition=Q(server__isnull=True), name="one_credential_per_customer"
            ),
            models.UniqueConstraint(
                fields=["server"], condition=Q(customer__isnull=True), name="one_credential_per_server"
            ),
        ]

    def __str__(self) -> str:
        owner = self.server or self.customer
        return f"{self.get_kind_display()} for {owner}"

    def __repr__(self) -> str:
        return f"<Credential {self.pk} {self.kind}>"

    def login_user(self, server: Server) -> str:
        """Who this credential logs in as on ``server``."""
        return self.username or server.ssh_user


class HostKey(models.Model):
    """A server's SSH host key: pending until an admin trusts it; only trusted keys are pinned."""

    PENDING = "pending"
    TRUSTED = "trusted"
    REVOKED = "revoked"
    STATUSES = [(PENDING, "Waiting for approval"), (TRUSTED, "Trusted"), (REVOKED, "Revoked")]

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="host_keys")
    key_type = models.CharField(max_length=40)
    key_base64 = models.TextField()
    fingerprint = models.CharField(max_length=80)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    source = models.CharField(max_length=20, default="seen", help_text="seen on connect, or known_hosts import")
    first_seen_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["server", "-first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["server", "key_type", "key_base64"], name="host_key_unique_per_server")
        ]

    def __str__(self) -> str:
        return f"{self.key_type} {self.fingerprint} ({self.status})"


class Playbook(models.Model):
    """A named set of probes with parameters; steps are validated against the probe registry."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    steps = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    CONNECTING = "connecting", "Connecting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"


TERMINAL_STATES = (RunState.SUCCEEDED, RunState.PARTIAL, RunState.FAILED)
ACTIVE_STATES = (RunState.CONNECTING, RunState.RUNNING)


class CollectionRun(models.Model):
    # A run belongs to a ticket, or to a fleet sweep (no ticket until the sweep files one: SweepFinding).
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="collection_runs")
    sweep = models.ForeignKey("diagnostics.Sweep", null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    server = models.ForeignKey(Server, on_delete=models.PROTECT, related_name="collection_runs")
    playbook = models.ForeignKey(Playbook, null=True, on_delete=models.SET_NULL, related_name="runs")
    playbook_name = models.CharField(max_length=100)
    steps = models.JSONField(default=list, help_text="The playbook's steps as they were when the run was requested.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=12, choices=RunState.choices, default=RunState.QUEUED)
    reason = models.TextField(blank=True, help_text="What happened, in words a tech can act on.")
    failure_kind = models.CharField(max_length=30, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    connect_seconds = models.FloatField(null=True, blank=True)
    banner_seconds = models.FloatField(null=True, blank=True)
    handshake_seconds = models.FloatField(null=True, blank=True)
    auth_seconds = models.FloatField(null=True, blank=True)
    # Diagnosis is its own step after the run reaches a terminal state (see
    # diagnostics.knowledge.diagnosis): until it is done, pages keep the run "finishing".
    diagnosed_at = models.DateTimeField(null=True, blank=True)
    diagnosis_note = models.CharField(
        max_length=300, blank=True, help_text="Why the diagnosis is incomplete or failed, in words; empty when whole."
    )
    # A Verify run re-collects what proved a recipe's symptom after the tech applied it.
    verifies_recipe = models.ForeignKey(
        "diagnostics.FixRecipe", null=True, blank=True, on_delete=models.SET_NULL, related_name="verify_runs"
    )
    verifies_run = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="verified_by",
        help_text="The run whose evidence proved the symptom being verified (the 'before').",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "heartbeat_at"], name="run_state_heartbeat"),
            models.Index(fields=["ticket", "-created_at"], name="run_ticket_created"),
            models.Index(fields=["server", "-created_at"], name="run_server_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ticket__isnull=False) | Q(sweep__isnull=False), name="run_for_ticket_or_sweep"
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.playbook_name} on {self.server_id}"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def is_settled(self) -> bool:
        """Finished and diagnosed: what pages wait for before they stop following the run."""
        return self.is_terminal and self.diagnosed_at is not None

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Evidence(models.Model):
    """One probe's result within a run. Keyed by (run, step) so a re-delivered run never duplicates it."""

    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="evidence")
    step = models.PositiveSmallIntegerField()
    probe = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    command = models.TextField(help_text="Exactly what was executed on the host.")
    exit_status = models.IntegerField(null=True, blank=True)
    output = models.BinaryField(default=b"")
    stderr = models.BinaryField(default=b"")
    binary = models.BooleanField(default=False)
    output_bytes = models.BigIntegerField(default=0)
    stderr_bytes = models.BigIntegerField(default=0)
    truncated = models.BooleanField(default=False)
    timed_out = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    duration = models.FloatField(default=0)
    recorded_at = models.DateTimeField(default=timezone.now)
    # Set when retention (`manage.py prune`) emptied output and stderr; the rest of the row, and the
    # matches and timeline entries made from it, are kept.
    output_pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="evidence_once_per_step")]
        # Retention's daily scan for old outputs not yet pruned.
        indexes = [
            models.Index(
                fields=["recorded_at"], name="evidence_unpruned_recorded", condition=Q(output_pruned_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.probe} (run {self.run_id} step {self.step})"

    @property
    def text(self) -> str:
        return bytes(self.output).decode("utf-8", errors="replace")

    @property
    def needs_root(self) -> str:
        """Why the probe could not run as root (its "probe: needs root:" line), or '' if it did not say so."""
        from diagnostics.probes.privilege import NEEDS_ROOT, needs_root_note

        if self.exit_status != NEEDS_ROOT:
            return ""
        return needs_root_note(bytes(self.output[:4096]).decode("utf-8", errors="replace")) or "needs root"

    PREVIEW_BYTES = 256 << 10

    @property
    def preview(self) -> str:
        """The start of the output for the page; the rest is a download away."""
        return bytes(self.output[: self.PREVIEW_BYTES]).decode("utf-8", errors="replace")

    @property
    def preview_cut(self) -> bool:
        return len(self.output) > self.PREVIEW_BYTES

    @property
    def pruned_notice(self) -> str:
        return (
            f"Output pruned on {self.output_pruned_at:%Y-%m-%d} under the retention policy "
            f"({self.output_bytes} bytes were recorded); the findings it proved are kept."
        )

    @property
    def stderr_text(self) -> str:
        return bytes(self.stderr).decode("utf-8", errors="replace")


class AuditEntry(models.Model):
    """Who ran which command where and when. Append-only."""

    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=40)
    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run = models.ForeignKey(CollectionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    address = models.CharField(max_length=300, blank=True, help_text="user@host:port as connected to")
    command = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["server", "-at"], name="audit_server_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("the audit log is append-only")
        super().save(*args, **kwargs)
