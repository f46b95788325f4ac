"""Request and response shapes of the API; they validate types and sizes, the services decide."""

from __future__ import annotations

from typing import Any, cast

from django import forms as forms_lib
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.settings import api_settings

from diagnostics.services.jump_hosts import jump_chain
from triage import forms, selectors
from triage.models import Contact, Customer, Priority, Server, Status, Ticket

MAX_ID = 2**63 - 1


# DRF's CharField already refuses NUL and lone surrogates (which no database driver can store).
Text = serializers.CharField


class Id(serializers.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


def _tag_names(values: list[str]) -> list[str]:
    try:
        return forms.parse_tag_names(", ".join(values))
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None


def tag_list(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=Text(max_length=40), max_length=20, **kwargs)


# --- Shared references ------------------------------------------------------------


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class CustomerRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ContactRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()


class ServerRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()


class PageSerializer(serializers.Serializer):
    """Cursor pagination: follow ``next`` until it is null."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)
    previous_cursor = serializers.CharField(allow_null=True)


# --- Tickets ----------------------------------------------------------------------


class TicketSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    subject = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    priority = serializers.ChoiceField(choices=Priority.choices)
    customer = CustomerRefSerializer()
    assignee = UserRefSerializer(allow_null=True)
    tags = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    next_due_at = serializers.DateTimeField(allow_null=True)
    sla_state = serializers.SerializerMethodField()
    version = serializers.IntegerField(
        help_text="Moves on by one with every change; send it back (If-Match, "
        "or `version` in the body) to refuse a change to a ticket "
        "that changed since you read it."
    )
    merged_into = serializers.IntegerField(
        source="merged_into_id", allow_null=True, help_text="The ticket this one was merged into (it is closed)."
    )

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, ticket) -> list[str]:
        names = getattr(ticket, "tag_names", None)
        return names if names is not None else sorted(ticket.tags.values_list("name", flat=True))

    def get_sla_state(self, ticket) -> str:
        return ticket.sla_state()


class TicketPageSerializer(PageSerializer):
    results = TicketSummarySerializer(many=True)


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ticket = serializers.IntegerField(
        source="ticket_id",
        help_text="The ticket it was written on: on a ticket "
        "others were merged into, their entries are in its timeline too.",
    )
    kind = serializers.CharField()
    actor = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    body = serializers.CharField()
    # DRF's metaclass takes declared fields off the class, so Serializer.data is not shadowed.
    data = serializers.JSONField()  # type: ignore[assignment]
    version = serializers.IntegerField(
        allow_null=True,
        help_text="The ticket's version this entry made; null for the machine's own records (SLA, runs).",
    )

    def get_actor(self, event) -> str | None:
        return event.actor.get_username() if event.actor else None


class RelatedTicketSerializer(serializers.Serializer):
    """A ticket related to this one (either way round)."""

    link = serializers.IntegerField(source="link.pk")
    id = serializers.IntegerField(source="ticket.pk")
    reference = serializers.CharField(source="ticket.reference")
    subject = serializers.CharField(source="ticket.subject")
    status = serializers.ChoiceField(choices=Status.choices, source="ticket.status")


class TicketDetailSerializer(TicketSummarySerializer):
    description = serializers.CharField()
    servers = ServerRefSerializer(many=True, source="servers.all")
    requester = ContactRefSerializer(allow_null=True, help_text="Who the ticket is for: public replies go to them.")
    ccs = ContactRefSerializer(many=True, source="ccs.all", help_text="Contacts copied on public replies.")
    created_by = UserRefSerializer(allow_null=True)
    first_response_at = serializers.DateTimeField(allow_null=True)
    first_response_due = serializers.DateTimeField()
    resolution_due = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    allowed_statuses = serializers.SerializerMethodField()
    merged_tickets = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()
    timeline = EventSerializer(many=True)

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_merged_tickets(self, ticket) -> list[int]:
        return [t.pk for t in selectors.ticket_merged_tickets(ticket=ticket)]

    @extend_schema_field(RelatedTicketSerializer(many=True))
    def get_links(self, ticket) -> list[dict]:
        related = selectors.ticket_related(user=self.context["request"].user, ticket=ticket)
        # many=True makes a ListSerializer, whose data is a list; the stubs type the serializer's own class.
        return RelatedTicketSerializer(related, many=True).data  # type: ignore[return-value]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_statuses(self, ticket) -> list[str]:
        from triage.workflow import allowed_next

        return allowed_next(ticket.status)


def _documented(field: forms_lib.Field) -> serializers.Field:
    """A browser form's field as the API schema describes it; the form itself does the checking."""
    options: dict[str, Any] = {"help_text": field.help_text or None}
    if field.initial is not None:
        options["default"] = field.initial
    else:
        options["required"] = False
    if isinstance(field, forms_lib.ModelChoiceField):
        return serializers.IntegerField(min_value=1, **options)
    if isinstance(field, forms_lib.ChoiceField):
        # A ChoiceField keeps its choices normalised to a list of pairs (the stubs allow the raw input too).
        pairs = cast("list[tuple[Any, Any]]", field.choices)
        return serializers.ChoiceField(choices=[(v, label) for v, label in pairs if v != ""], **options)
    if isinstance(field, forms_lib.BooleanField):
        return serializers.BooleanField(help_text=options["help_text"], default=False)
    if isinstance(field, forms_lib.CharField):
        return serializers.CharField(max_length=field.max_length, allow_blank=True, **options)
    raise TypeError(f"no API description for {type(field).__name__}")


class FormQuerySerializer(serializers.Serializer):
    """Query parameters checked by one of the browser's forms (``form_class``), so the browser and the API
    accept and refuse the same values with the same messages. The form's fields are described for the
    schema (``_documented``); fields declared here are the API's own and validate as usual."""

    form_class: type[forms_lib.Form]

    def get_fields(self):
        own = super().get_fields()
        return {**{name: _documented(field) for name, field in self.form_class.base_fields.items()}, **own}

    def to_internal_value(self, data):
        form = self.form_class(data)
        errors: dict[str, Any] = {}
        if not form.is_valid():
            for name, messages in form.errors.items():
                errors[api_settings.NON_FIELD_ERRORS_KEY if name == "__all__" else name] = list(messages)
        values = {"form": form}
        for name in self._declared_fields:
            field = self.fields[name]
            try:
                values[name] = field.run_validation(field.get_value(data))
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            except SkipField:
                pass
        if errors:
            raise serializers.ValidationError(errors)
        return values


class QueueQuerySerializer(FormQuerySerializer):
    """The queue's filters, checked by the browser queue's own form (triage.forms.QueueFilterForm)."""

    form_class = forms.QueueFilterForm
    page_size = serializers.IntegerField(min_value=1, max_value=100, default=50)

    def filters(self) -> selectors.QueueFilters:
        return self.validated_data["form"].filters()


class TicketCreateSerializer(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    subject = Text(max_length=200, validators=[forms.validate_one_line])
    description = Text(max_length=100_000)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.P3)
    servers = serializers.PrimaryKeyRelatedField(queryset=Server.objects.all(), many=True, required=False)
    tags = tag_list(required=False)
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=selectors.assignable_users(), allow_null=True, required=False, help_text="A tech or admin, by user id."
    )
    requester = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(), allow_null=True, required=False, help_text="A contact of the customer, by id."
    )
    ccs = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(), many=True, required=False, help_text="Contacts of the customer to copy, by id."
    )

    def validate_tags(self, value):
        return _tag_names(value)


VERSION_HELP = (
    "The ticket's version you read (its `version`): if the ticket has changed since, "
    "nothing is changed and the answer is 409 with what changed and by whom."
)


class ChangeSerializer(EventSerializer):
    kind_label = serializers.CharField(source="get_kind_display")


class TicketConflictSerializer(serializers.Serializer):
    """A change refused because the ticket changed after the version the client sent."""

    detail = serializers.CharField()
    seen_version = serializers.IntegerField()
    version = serializers.IntegerField()
    changed_by = serializers.ListField(child=serializers.CharField())
    changes = ChangeSerializer(many=True)


class TicketUpdateSerializer(serializers.Serializer):
    """Any of these; each change goes through its service and leaves a timeline entry."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    note = Text(max_length=2000, required=False, allow_blank=True, help_text="Recorded with a status change.")
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=selectors.assignable_users(), allow_null=True, required=False
    )
    tags = tag_list(required=False)
    servers = serializers.PrimaryKeyRelatedField(queryset=Server.objects.all(), many=True, required=False)
    requester = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(),
        allow_null=True,
        required=False,
        help_text="A contact of the ticket's customer, by id; null: nobody.",
    )
    ccs = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(), many=True, required=False, help_text="The contacts to copy (replaces the list)."
    )
    version = Id(required=False, help_text=VERSION_HELP)

    def validate_tags(self, value):
        return _tag_names(value)

    def validate(self, data):
        if not data.keys() - {"version"}:
            raise serializers.ValidationError(
                "Send at least one of: status, priority, assignee, tags, servers, requester, ccs."
            )
        if "note" in data and "status" not in data:
            raise serializers.ValidationError({"note": "A note goes with a status change."})
        return data


class MergeSerializer(serializers.Serializer):
    into = serializers.PrimaryKeyRelatedField(
        queryset=Ticket.objects.all(), help_text="The survivor: this ticket is merged into it."
    )


class CommentSerializer(serializers.Serializer):
    body = Text(max_length=100_000)
    internal = serializers.BooleanField(default=False, help_text="An internal note instead of a public reply.")
    version = Id(required=False, help_text=VERSION_HELP)


# --- Servers ----------------------------------------------------------------------


class ServerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer = CustomerRefSerializer()
    name = serializers.CharField()
    address = serializers.CharField()
    ssh_port = serializers.IntegerField()
    ssh_user = serializers.CharField()
    roles = serializers.SerializerMethodField()
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()
    host_key_changed_at = serializers.DateTimeField(allow_null=True)
    jump_chain = serializers.SerializerMethodField(
        help_text="The jump hosts collections go through, first hop first (the server's own chain, else its "
        "customer's default); empty: direct. Set on the server's Access page."
    )

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_roles(self, server) -> list[str]:
        return [role.name for role in server.roles.all()]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_jump_chain(self, server) -> list[str]:
        return [hop.name for hop in jump_chain(server)]


class ServerPageSerializer(PageSerializer):
    results = ServerSerializer(many=True)


class ServerQuerySerializer(serializers.Serializer):
    customer = Id(required=False)
    cursor = Text(required=False, max_length=500)
    page_size = serializers.IntegerField(min_value=1, max_value=100, default=50)


class ServerWriteSerializer(serializers.Serializer):
    """Checked again by the browser's server form, so both accept exactly the same servers."""

    customer = Id()
    name = Text(max_length=100)
    address = Text(max_length=253)
    ssh_port = serializers.IntegerField(min_value=1, max_value=65535, default=22)
    ssh_user = Text(max_length=32, default="root")
    roles = tag_list(required=False)
    notes = Text(required=False, allow_blank=True, max_length=10_000)


# --- Collections ------------------------------------------------------------------


class PlaybookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    steps = serializers.JSONField()


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    ticket = serializers.IntegerField(source="ticket_id", allow_null=True, help_text="Null for a run of a fleet sweep.")
    sweep = serializers.IntegerField(source="sweep_id", allow_null=True, help_text="The fleet sweep it is part of.")
    server = ServerRefSerializer()
    playbook = serializers.CharField(source="playbook_name")
    state = serializers.CharField()
    reason = serializers.CharField()
    failure_kind = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration = serializers.FloatField(allow_null=True)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run) -> str:
        from django.urls import reverse

        request = self.context.get("request")
        path = reverse("api:run", args=[run.pk])
        return request.build_absolute_uri(path) if request else path


class EvidenceSerializer(serializers.Serializer):
    command = serializers.CharField()
    exit_status = serializers.IntegerField(allow_null=True)
    binary = serializers.BooleanField()
    output_bytes = serializers.IntegerField()
    stderr_bytes = serializers.IntegerField()
    truncated = serializers.BooleanField()
    timed_out = serializers.BooleanField()
    error = serializers.CharField()
    duration = serializers.FloatField()
    recorded_at = serializers.DateTimeField()
    output_pruned_at = serializers.DateTimeField(
        allow_null=True, help_text="When retention emptied the output (the download then answers 410)"
    )
    download_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, evidence) -> str:
        from django.urls import reverse

        request = self.context.get("request")
        path = reverse("api:evidence_raw", args=[evidence.run_id, evidence.step])
        return request.build_absolute_uri(path) if request else path


class StepSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    probe = serializers.CharField()
    params = serializers.JSONField()
    state = serializers.CharField(help_text="pending, done, nonzero, failed or timed_out")
    evidence = EvidenceSerializer(allow_null=True)


class RunDetailSerializer(RunSerializer):
    progress = serializers.IntegerField(help_text="Percent of steps with evidence.")
    steps = StepSerializer(many=True)


class RunStartSerializer(serializers.Serializer):
    server = Id(help_text="A server of the ticket's customer.")
    playbook = Id(help_text="An enabled playbook (GET /api/v1/playbooks/).")
    version = Id(required=False, help_text=VERSION_HELP)


class CitationSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    probe = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    text = serializers.CharField()


class SymptomMatchSerializer(serializers.Serializer):
    title = serializers.CharField()
    why = serializers.CharField()
    score_percent = serializers.IntegerField()
    confidence = serializers.CharField()
    citations = CitationSerializer(many=True)


class RankedFixSerializer(serializers.Serializer):
    """A fix as the ticket page shows it (diagnostics.selectors.FixView), named by keys."""

    key = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField()
    risk = serializers.CharField()
    needs = serializers.CharField()
    steps = serializers.ListField(child=serializers.CharField())
    symptoms = serializers.ListField(
        child=serializers.CharField(), source="symptom_keys", help_text="Keys of the symptoms it fixes."
    )
    causes = serializers.ListField(
        child=serializers.CharField(), source="cause_keys", help_text="Matched symptoms that explain these."
    )
    fits = serializers.BooleanField(allow_null=True, help_text="Whether it fits this host; null when unknown.")
    fit_why = serializers.CharField()
    alternatives = serializers.SerializerMethodField(
        help_text="Keys of other recipes for the same symptom, listed under this one."
    )

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_alternatives(self, fix) -> list[str]:
        return [alternative["key"] for alternative in fix.alternatives]


class RunMatchesSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    terminal = serializers.BooleanField(help_text="The collection has finished.")
    diagnosed = serializers.BooleanField(help_text="Matches and fixes exist only once the finished run is diagnosed.")
    symptoms = SymptomMatchSerializer(many=True)
    fixes = RankedFixSerializer(many=True)


# --- Fleet sweeps ------------------------------------------------------------------


class SweepStartSerializer(serializers.Serializer):
    playbook = Id(help_text="An enabled playbook (GET /api/v1/playbooks/).")
    role = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=50,
        help_text="Only servers with this role (its name); blank: every server.",
    )
    open_tickets = serializers.BooleanField(
        required=False,
        default=False,
        help_text="File one ticket per symptom found once every host finished; "
        "an open ticket a sweep filed for the symptom gets a note instead.",
    )


class SweepHostSerializer(serializers.Serializer):
    server = ServerRefSerializer()
    run = serializers.IntegerField(source="run.pk")
    state = serializers.CharField(source="run.state")
    settled = serializers.BooleanField(help_text="Finished and diagnosed.")
    progress = serializers.IntegerField(help_text="Percent of steps with evidence.")
    failure = serializers.CharField(help_text="What kind of failure, in words; empty unless it failed.")
    reason = serializers.CharField(source="run.reason")
    symptoms = serializers.IntegerField(help_text="Symptoms found on this host.")


class SweepHostEvidenceSerializer(serializers.Serializer):
    server = ServerRefSerializer()
    run = serializers.IntegerField(source="run_id")
    citations = CitationSerializer(many=True)


class SweepGroupSerializer(serializers.Serializer):
    symptom = serializers.CharField(source="symptom.key")
    title = serializers.CharField(source="symptom.title")
    headline = serializers.CharField()
    count = serializers.IntegerField()
    total = serializers.IntegerField()
    hosts = SweepHostEvidenceSerializer(many=True)
    tickets = serializers.ListField(
        child=serializers.IntegerField(),
        source="ticket_ids",
        help_text="Tickets the sweep filed or added this symptom to.",
    )


class SweepUnreachedSerializer(serializers.Serializer):
    server = ServerRefSerializer()
    run = serializers.IntegerField(source="run_id")
    kind = serializers.CharField()
    reason = serializers.CharField()


class SweepSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="sweep.pk")
    url = serializers.SerializerMethodField()
    customer = serializers.IntegerField(source="sweep.customer_id")
    playbook = serializers.CharField(source="sweep.playbook_name")
    role = serializers.CharField(source="sweep.role.name", default=None, allow_null=True)
    open_tickets = serializers.BooleanField(source="sweep.open_tickets")
    created_at = serializers.DateTimeField(source="sweep.created_at")
    finished_at = serializers.DateTimeField(source="sweep.finished_at", allow_null=True)
    finished = serializers.BooleanField(help_text="Every host finished and was diagnosed.")
    total = serializers.IntegerField()
    settled = serializers.IntegerField()
    hosts = SweepHostSerializer(many=True)
    groups = SweepGroupSerializer(many=True, help_text="Symptoms found, on most hosts first.")
    unreached = SweepUnreachedSerializer(many=True, help_text="Hosts it could not collect from, and why.")

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, results) -> str:
        from django.urls import reverse

        request = self.context.get("request")
        path = reverse("api:sweep", args=[results.sweep.pk])
        return request.build_absolute_uri(path) if request else path


# --- Knowledge base ---------------------------------------------------------------


class KbImportSerializer(serializers.Serializer):
    yaml = Text(max_length=2_000_000, help_text="A knowledge-base document as GET /api/v1/kb/export/ returns.")
    note = Text(max_length=300, required=False, allow_blank=True, default="")


class KbImportResultSerializer(serializers.Serializer):
    changes = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.IntegerField()


class KbErrorsSerializer(serializers.Serializer):
    # DRF's metaclass takes declared fields off the class, so Serializer.errors is not shadowed.
    errors = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]


# --- Tokens -----------------------------------------------------------------------


class TokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class NewTokenSerializer(TokenSerializer):
    key = serializers.CharField(help_text="Shown once: only a hash is stored.")


class TokenCreateSerializer(serializers.Serializer):
    name = Text(max_length=100)


class PasswordLoginSerializer(serializers.Serializer):
    username = Text(max_length=150)
    password = Text(max_length=1000, trim_whitespace=False)
    name = Text(max_length=100, default="api")


# --- Alerts -----------------------------------------------------------------------


class AlertSerializer(serializers.Serializer):
    customer = Text(max_length=120, help_text="The customer's name (or id).")
    server = Text(max_length=253, help_text="One of the customer's servers, by name or address.")
    subject = Text(max_length=200, validators=[forms.validate_one_line])
    description = Text(max_length=100_000)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.P3)
    playbook = Text(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="A playbook's name; the configured default when left out.",
    )
    dedupe_key = Text(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Repeats of an alert with this key while its ticket is open become notes.",
    )


class AlertResultSerializer(serializers.Serializer):
    ticket = TicketSummarySerializer()
    run = RunSerializer(allow_null=True)
    repeated = serializers.BooleanField(help_text="True when the alert was added to an open ticket as a note.")
    collection_error = serializers.CharField(help_text="Why no collection was requested, if none was.")
