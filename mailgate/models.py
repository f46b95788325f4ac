"""Mail in and out of the desk: which addresses belong to which customer, every
message received (raw bytes kept, with the outcome and why), its attachments,
every notification sent (with the Message-ID we generated, so replies thread),
and the hosted mailboxes the desk polls over IMAP."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from triage import crypto
from triage.models import Customer, Ticket, TicketEvent


class RouteKind(models.TextChoices):
    ADDRESS = "address", "Address"
    DOMAIN = "domain", "Domain"


class MailRoute(models.Model):
    """Mail from this address (or from any address at this domain or its sub-domains) is the customer's."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="mail_routes")
    kind = models.CharField(max_length=8, choices=RouteKind.choices)
    # Lower-case; an address or a domain name. One customer per address or domain.
    value = models.CharField(max_length=254, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["customer__name", "kind", "value"]

    def __str__(self) -> str:
        return f"{self.value} -> {self.customer}"


class Outcome(models.TextChoices):
    CREATED = "created", "Ticket created"
    THREADED = "threaded", "Added to a ticket"
    AUTO_REPLY = "auto_reply", "Auto-reply ignored"
    BOUNCE = "bounce", "Bounce ignored"
    UNMATCHED = "unmatched", "Unknown sender, held"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed, kept for retry"
    # A held or rejected message a tech or admin looked at and turned away (decided_by says who).
    DISMISSED = "dismissed", "Rejected on the desk"


# What the Held mail page lists until someone decides: a ticket for a customer, or a rejection.
HELD_OUTCOMES = (Outcome.UNMATCHED, Outcome.REJECTED)


class InboundMessage(models.Model):
    """One message handed to the desk, kept whatever became of it."""

    # Message-ID, or a digest of the raw bytes when there is none: a redelivered message is recognised.
    dedupe_key = models.CharField(max_length=300, unique=True, null=True, blank=True)
    message_id = models.CharField(max_length=300, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=300, blank=True)
    references = models.JSONField(default=list, blank=True)
    envelope_from = models.CharField(max_length=254, blank=True)
    envelope_to = models.JSONField(default=list, blank=True)
    from_address = models.CharField(max_length=254, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    peer = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    size = models.PositiveIntegerField(default=0)
    raw = models.BinaryField(blank=True, default=b"")
    raw_pruned_at = models.DateTimeField(null=True, blank=True)  # retention emptied `raw` (manage.py prune)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    redeliveries = models.PositiveIntegerField(default=0)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_mail")
    event = models.ForeignKey(TicketEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Who took a held or rejected message off the Held mail page (filed it as a ticket, or rejected it), and when.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["outcome", "-received_at"], name="inbound_outcome_received"),
            # Retention's daily scan for old raw mail not yet pruned.
            models.Index(
                fields=["received_at"], name="inbound_unpruned_received", condition=Q(raw_pruned_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.subject or self.message_id}"

    @property
    def sender_domain(self) -> str:
        """The domain of the From address ("" without a usable one): what "route this domain" routes."""
        return self.from_address.rsplit("@", 1)[-1] if "@" in self.from_address else ""


class Attachment(models.Model):
    """A file on a ticket: from an inbound message (``message``), or uploaded in the desk to a reply,
    a note or a new ticket (``event``, the timeline entry it came with; mailgate.upload_services).
    Either way it is only ever served as a download (mailgate.views.attachment_download)."""

    message = models.ForeignKey(
        InboundMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    event = models.ForeignKey(TicketEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    content = models.BinaryField()
    content_pruned_at = models.DateTimeField(null=True, blank=True)  # retention emptied `content` (manage.py prune)

    class Meta:
        ordering = ["message_id", "id"]

    def __str__(self) -> str:
        return self.filename


class OutboundState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Audience(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    ASSIGNEE = "assignee", "Assignee"


class OutboundMessage(models.Model):
    """One notification: planned once per (event, audience), sent at most once."""

    event = models.ForeignKey(TicketEvent, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="outbound_mail")
    audience = models.CharField(max_length=10, choices=Audience.choices)
    to_address = models.CharField(max_length=254)
    # Further correspondents copied (Cc); see services.ticket_correspondents.
    cc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    message_id = models.CharField(max_length=300, unique=True)
    in_reply_to = models.CharField(max_length=300, blank=True)
    references = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=8, choices=OutboundState.choices, default=OutboundState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["event", "audience"], name="outbound_one_per_event_audience")]
        indexes = [
            models.Index(
                fields=["state", "created_at"],
                name="outbound_state_created",
                condition=Q(state__in=["pending", "sending"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} -> {self.to_address} ({self.state})"


class Security(models.TextChoices):
    IMAPS = "imaps", "IMAPS (TLS from the start)"
    STARTTLS = "starttls", "STARTTLS"
    PLAIN = "plain", "Plain text (loopback only)"


class Mailbox(models.Model):
    """A hosted mailbox (the support team's address) polled over IMAP; its new mail is taken in
    like mail to the SMTP listener (mailgate.mailbox_services)."""

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField()
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.IMAPS)
    username = models.CharField(max_length=254)
    # Fernet token (triage.crypto, CREDENTIALS_KEYS), like SSH credentials; never shown again.
    password_token = models.BinaryField()
    folder = models.CharField(max_length=200, default="INBOX")
    enabled = models.BooleanField(default=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # Why the last poll failed (or which messages it could not take in); blank after a clean poll.
    last_error = models.TextField(blank=True)
    # A poll claims the mailbox until this passes (a conditional UPDATE), so two beats never poll it at once.
    polling_until = models.DateTimeField(null=True, blank=True)
    # Where the poller is in the folder (it changes no flag on the server; mailgate.mailbox_services):
    # the folder's UIDVALIDITY when last polled (None: never polled, or settings changed since), the
    # highest UID taken, and UIDs that failed to process and are tried again (a few, oldest dropped).
    uid_validity = models.PositiveBigIntegerField(null=True, blank=True)
    last_uid = models.PositiveBigIntegerField(default=0)
    retry_uids = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return self.name

    def password(self) -> str:
        return crypto.decrypt(self.password_token)

    @property
    def address(self) -> str:
        """Where it is, for the page and for the record of each message taken from it."""
        return f"imap://{self.username}@{self.host}:{self.port}/{self.folder}"
