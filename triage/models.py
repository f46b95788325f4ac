"""The ticket desk: customers and their SLA tiers, servers, tickets and timelines."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from triage import business_hours, sla

slug_token = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{0,39}$",
    "Use lower-case letters, digits and dashes (at most 40, starting with a letter or digit).",
)
ssh_user_validator = RegexValidator(
    r"^[a-z_][a-z0-9_.-]{0,31}$",
    "Not a valid Unix user name (lower-case letters, digits, '_', '.', '-'; at most 32).",
)


class Priority(models.IntegerChoices):
    P1 = 1, "P1 critical"
    P2 = 2, "P2 high"
    P3 = 3, "P3 normal"
    P4 = 4, "P4 low"


def default_weekly_hours() -> dict[str, list[str]]:
    return {day: ["09:00-17:00"] for day in business_hours.WEEKDAYS[:5]}


class BusinessCalendar(models.Model):
    """When a customer's desk hours run: weekly working intervals and holidays, in one IANA time zone.

    Stored as JSON in the shape `triage.business_hours` parses: weekly_hours maps mon..sun to lists of
    'HH:MM-HH:MM' (a missing day is a day off); holidays is a list of {date, name}.
    """

    name = models.CharField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64)  # an IANA name: Europe/Berlin, America/New_York
    weekly_hours = models.JSONField(default=default_weekly_hours)
    holidays = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.time_zone})"

    def clean(self) -> None:
        errors = {}
        try:
            business_hours.parse_zone(self.time_zone)
        except business_hours.ScheduleError as exc:
            errors["time_zone"] = str(exc)
        try:
            business_hours.parse_weekly(self.weekly_hours)
        except business_hours.ScheduleError as exc:
            errors["weekly_hours"] = str(exc)
        try:
            business_hours.parse_holidays(self.holidays)
        except business_hours.ScheduleError as exc:
            errors["holidays"] = str(exc)
        if errors:
            raise ValidationError(errors)

    def schedule(self) -> business_hours.Schedule:
        return business_hours.Schedule(
            zone=business_hours.parse_zone(self.time_zone),
            weekly=business_hours.parse_weekly(self.weekly_hours),
            holidays=frozenset(day for day, _ in business_hours.parse_holidays(self.holidays)),
        )

    def weekly_rows(self) -> list[tuple[str, str]]:
        """(weekday name, '09:00-17:00' or '') for display."""
        weekly = business_hours.parse_weekly(self.weekly_hours)
        return [
            (name, business_hours.format_intervals(day))
            for name, day in zip(business_hours.WEEKDAY_NAMES, weekly, strict=True)
        ]


class SlaTier(models.Model):
    name = models.CharField(max_length=60, unique=True)
    description = models.CharField(max_length=200, blank=True)
    # None: the clock runs 24x7.
    calendar = models.ForeignKey(
        BusinessCalendar, null=True, blank=True, on_delete=models.PROTECT, related_name="tiers"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def schedule(self) -> business_hours.Schedule | None:
        return self.calendar.schedule() if self.calendar is not None else None

    def target_for(self, priority: int) -> SlaTarget:
        return self.targets.get(priority=priority)


class SlaTarget(models.Model):
    """How fast a tier's tickets of one priority must get a first response and a resolution."""

    tier = models.ForeignKey(SlaTier, on_delete=models.CASCADE, related_name="targets")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices)
    first_response_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    resolution_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["tier", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "priority"], name="sla_target_one_per_priority"),
            models.CheckConstraint(
                condition=Q(resolution_minutes__gte=models.F("first_response_minutes")),
                name="sla_target_resolution_after_first_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier} P{self.priority}"


class Customer(models.Model):
    name = models.CharField(max_length=120, unique=True)
    sla_tier = models.ForeignKey(SlaTier, on_delete=models.PROTECT, related_name="customers")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # OpenSSH CA public keys (one per line) whose host certificates stand in for pinned keys
    # on this customer's servers; set on a server's Access page.
    host_ca_keys = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def first_contact(self) -> Contact | None:
        """The customer's main contact: the oldest one (Contact's ordering). Mail goes there when a
        ticket has no requester and nobody has written on it (mailgate.selectors.ticket_correspondents)."""
        return self.contacts.first()


class Contact(models.Model):
    """A person at a customer: mail from their address is the customer's, and tickets name them
    as requester or copy them (Ticket.requester, Ticket.ccs).

    An address belongs to one contact at most, whatever its case, so routing mail by address is
    never ambiguous (triage.contacts.services checks it with a clear message; the constraint holds
    against races). Stored lower-case."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField()
    phone = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(Lower("email"), name="contact_email_unique_ci")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def display_name(self) -> str:
        """Their name, else their address: what a macro's {{requester}} calls them."""
        return self.name.strip() or self.email


class ServerRole(models.Model):
    """A role tag on a server (mail, web, cache, ...), used to pick playbooks and sweeps."""

    name = models.CharField(max_length=40, unique=True, validators=[slug_token])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Server(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="servers")
    name = models.CharField(max_length=100)
    address = models.CharField(max_length=253, help_text="Host name or IP address SSH connects to.")
    ssh_port = models.PositiveIntegerField(default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    ssh_user = models.CharField(max_length=32, default="root", validators=[ssh_user_validator])
    roles = models.ManyToManyField(ServerRole, blank=True, related_name="servers")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the server offered a host key other than the pinned one; cleared by an admin.
    host_key_changed_at = models.DateTimeField(null=True, blank=True)
    # An admin's exception for an old server that offers only SHA-1 key exchange or ssh-rsa host keys.
    allow_legacy_ssh = models.BooleanField(default=False)

    class Meta:
        ordering = ["customer__name", "name"]
        constraints = [models.UniqueConstraint(fields=["customer", "name"], name="server_name_unique_per_customer")]

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"


class Tag(models.Model):
    name = models.CharField(max_length=40, unique=True, validators=[slug_token])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Status(models.TextChoices):
    NEW = "new", "New"
    TRIAGING = "triaging", "Triaging"
    WAITING = "waiting", "Waiting on customer"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = (Status.NEW, Status.TRIAGING, Status.WAITING)


class Ticket(models.Model):
    subject = models.CharField(max_length=200)
    description = models.TextField()
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    servers = models.ManyToManyField(Server, blank=True, related_name="tickets")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.P3)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_tickets"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets")
    # Who the ticket is for (public replies are mailed to them) and who is copied: contacts of the
    # ticket's customer (services.ticket_set_people checks it).
    requester = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="requested_tickets"
    )
    ccs = models.ManyToManyField(Contact, blank=True, related_name="copied_tickets")

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    # SLA clock. Deadlines are stored so the queue can filter and sort on them.
    first_response_due = models.DateTimeField()
    resolution_due = models.DateTimeField()
    waiting_since = models.DateTimeField(null=True, blank=True)
    # Measured on the tier's clock: business seconds when the tier has a calendar.
    paused_seconds = models.PositiveIntegerField(default=0)
    next_due_at = models.DateTimeField(null=True, blank=True)
    first_response_breached = models.BooleanField(default=False)
    resolution_breached = models.BooleanField(default=False)

    # Counts the changes made to the ticket (see services.ticket_record_event): a form rendered
    # at one version and posted after another is refused rather than overwriting the change between.
    version = models.PositiveIntegerField(default=1)

    # Set when the ticket was merged into another (services_merge.tickets_merge): it is closed, its
    # timeline shows on the survivor's, and mail that threads onto it lands on the survivor.
    # PROTECT: deleting a survivor must not quietly turn its merged tickets back into closed strays.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_tickets"
    )

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_due_at", "id"], name="ticket_status_due"),
            models.Index(fields=["status", "-created_at", "-id"], name="ticket_status_created"),
            models.Index(fields=["-created_at", "-id"], name="ticket_created"),
            models.Index(fields=["-updated_at", "-id"], name="ticket_updated"),
            models.Index(fields=["assignee", "status", "next_due_at"], name="ticket_assignee_status"),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_created"),
            models.Index(fields=["priority", "status", "-created_at"], name="ticket_priority_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def reference(self) -> str:
        return f"#{self.pk}"

    def sla_deadlines(
        self, *, target: SlaTarget, schedule: business_hours.Schedule | None = None
    ) -> tuple[datetime, datetime]:
        return sla.deadlines(
            created_at=self.created_at,
            first_response_minutes=target.first_response_minutes,
            resolution_minutes=target.resolution_minutes,
            paused=timedelta(seconds=self.paused_seconds),
            schedule=schedule,
        )

    def compute_next_due(self) -> datetime | None:
        return sla.next_deadline(
            status=self.status,
            first_response_at=self.first_response_at,
            first_response_due=self.first_response_due,
            resolution_due=self.resolution_due,
        )

    def sla_state(self, *, now: datetime | None = None) -> str:
        return sla.state(status=self.status, next_due_at=self.next_due_at, now=now or timezone.now())


class EventKind(models.TextChoices):
    CREATED = "created", "Ticket filed"
    REPLY = "reply", "Public reply"
    NOTE = "note", "Internal note"
    STATUS = "status", "Status change"
    ASSIGNMENT = "assignment", "Assignment"
    PRIORITY = "priority", "Priority change"
    TAGS = "tags", "Tags changed"
    SERVERS = "servers", "Servers linked"
    PEOPLE = "people", "People changed"
    SLA = "sla", "SLA breach"
    COLLECTION = "collection", "Collection"
    FIX = "fix", "Fix"
    MERGE = "merge", "Merge"
    LINK = "link", "Related tickets"


class TicketEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("the ticket timeline is append-only")


class TicketEvent(models.Model):
    """One entry on a ticket's timeline. Append-only: entries are never edited."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    # The ticket version this entry made; null for the machine's own records (SLA clock,
    # collection progress), which change nothing a tech's form could overwrite, and for
    # entries written before versions were kept.
    version = models.PositiveIntegerField(null=True, blank=True)

    objects = TicketEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at", "id"], name="event_ticket_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on #{self.ticket_id}"

    def save(self, *args, **kwargs):
        # Append-only is a contract of the timeline, so it is enforced where rows are written.
        if not self._state.adding:
            raise TypeError("the ticket timeline is append-only")
        super().save(*args, **kwargs)


class TicketLink(models.Model):
    """Two related tickets (a shared upstream outage, say), across customers too. Symmetric:
    stored once with the lower id first, so "A relates to B" and "B relates to A" are one row."""

    low = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    high = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["low", "high"], name="ticket_link_once_per_pair"),
            # lower id first: also rules out a ticket linked to itself
            models.CheckConstraint(condition=Q(low__lt=models.F("high")), name="ticket_link_ordered_pair"),
        ]
        indexes = [models.Index(fields=["high"], name="ticket_link_high")]

    def __str__(self) -> str:
        return f"#{self.low_id} <-> #{self.high_id}"

    def other(self, ticket_id: int) -> int:
        return self.high_id if self.low_id == ticket_id else self.low_id


class DraftKind(models.TextChoices):
    REPLY = "reply", "Public reply"
    NOTE = "note", "Internal note"


class TicketDraft(models.Model):
    """What a tech has typed in a ticket's composer and not sent yet, saved as they type.

    Theirs alone: nobody else is shown it. Deleted when they send it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ticket_drafts")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="drafts")
    kind = models.CharField(max_length=5, choices=DraftKind.choices)
    body = models.TextField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "ticket", "kind"], name="ticket_draft_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} draft by {self.user_id} on #{self.ticket_id}"


class Heartbeat(models.Model):
    """Last time a background process proved it was alive (shown to staff)."""

    name = models.CharField(max_length=40, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%H:%M:%S}"


class Macro(models.Model):
    """A canned reply a tech applies in one click: its body (with placeholders, see
    triage/macros/placeholders.py) goes into the reply composer, its actions to the ticket."""

    name = models.CharField(max_length=80, unique=True)
    body = models.TextField(blank=True)
    set_status = models.CharField(max_length=12, choices=Status.choices, blank=True)
    # "A user or me": a named tech, or whoever applies the macro; never both.
    assign_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assign_to_me = models.BooleanField(default=False)
    add_tags = models.JSONField(default=list, blank=True)  # tag names, validated like a ticket's
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~(Q(assign_to_me=True) & Q(assign_to__isnull=False)), name="macro_assigns_to_one"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def action_summary(self) -> list[str]:
        """What applying it does to the ticket besides filling the reply, for people."""
        actions = []
        if self.set_status:
            actions.append(f"sets status {self.get_set_status_display()}")
        if self.assign_to_me:
            actions.append("assigns to the tech applying it")
        elif self.assign_to is not None:
            actions.append(f"assigns to {self.assign_to.get_username()}")
        if self.add_tags:
            actions.append(f"adds tags {', '.join(self.add_tags)}")
        return actions


class SavedView(models.Model):
    """A tech's named queue: the queue's query string (filters and sort), validated by
    QueueFilterForm when saved, so following it shows exactly the tickets it counts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=60)
    query = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_view_name_per_user")]

    def __str__(self) -> str:
        return self.name
