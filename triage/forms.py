"""Forms: they validate input and nothing else; services do the writing."""

from __future__ import annotations

import re
from typing import cast

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address

from triage import access, business_hours, extensions, selectors, services, workflow
from triage.models import (
    BusinessCalendar,
    Contact,
    Customer,
    Priority,
    Server,
    SlaTier,
    Status,
    Ticket,
    slug_token,
)

HOSTNAME_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){HOSTNAME_LABEL}(\.{HOSTNAME_LABEL})*\.?$")


def validate_one_line(value: str) -> None:
    """A subject becomes a mail header: a line break in it would end the header (BadHeaderError, or worse)."""
    if any(c in str(value) for c in "\r\n\x0b\x0c\x85\u2028\u2029"):
        raise ValidationError("Keep the subject on one line (no line breaks).", code="line_break")


def parse_tag_names(raw: str, *, field_name: str = "tags") -> list[str]:
    """'mail, Slow-Send  urgent' -> ['mail', 'slow-send', 'urgent'], or a clear error."""
    names = [n.strip().lower() for n in re.split(r"[,\s]+", raw or "") if n.strip()]
    bad = []
    for name in names:
        try:
            slug_token(name)
        except ValidationError:
            bad.append(name)
    if bad:
        raise ValidationError(
            f"Not a valid tag: {', '.join(bad)}. Use lower-case letters, digits and dashes.", code="invalid"
        )
    if len(set(names)) > 20:
        raise ValidationError("At most 20 tags.", code="invalid")
    return sorted(set(names))


class TagNamesField(forms.CharField):
    def clean(self, value):
        return parse_tag_names(super().clean(value))


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Any number of files (an <input type=file multiple>), held to the limits of the app that keeps
    them (triage.extensions.uploads_check, mailgate.upload_services): cleaned to a list, empty when none
    were chosen."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Attach files")
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        data = data if isinstance(data, (list, tuple)) else [data]
        files = [super(AttachmentsField, self).clean(f, initial) for f in data if f]
        extensions.uploads_check(files=files)
        return files


class ContactChoiceField(forms.ModelChoiceField):
    """A contact, shown with its customer (the new-ticket form lists every customer's)."""

    def label_from_instance(self, obj: Contact) -> str:
        return f"{obj.customer.name}: {obj}"


class TicketCreateForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.order_by("name"))
    subject = forms.CharField(max_length=200, validators=[validate_one_line])
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), max_length=100_000)
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int, initial=Priority.P3)
    servers = forms.ModelMultipleChoiceField(
        queryset=Server.objects.select_related("customer").order_by("customer__name", "name"),
        required=False,
        help_text="Affected servers of this customer.",
    )
    tags = TagNamesField(required=False, max_length=400, help_text="Comma-separated, e.g. mail, slow-send")
    assignee = forms.ModelChoiceField(queryset=selectors.assignable_users(), required=False)
    requester = ContactChoiceField(
        queryset=Contact.objects.select_related("customer").order_by("customer__name", "email"),
        required=False,
        empty_label="Nobody in particular",
        help_text="Who the ticket is for: public replies are mailed to them.",
    )
    attachments = AttachmentsField()

    def clean(self):
        super().clean()
        data = self.cleaned_data
        customer = data.get("customer")
        servers = data.get("servers") or []
        if customer is not None:
            foreign = [s.name for s in servers if s.customer_id != customer.pk]
            if foreign:
                self.add_error("servers", f"Not servers of {customer.name}: {', '.join(foreign)}.")
            requester = data.get("requester")
            if requester is not None and requester.customer_id != customer.pk:
                self.add_error("requester", f"{requester.email} is not a contact of {customer.name}.")
        return data


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=100_000, strip=True)
    attachments = AttachmentsField()


class DraftForm(forms.Form):
    """An autosave from a composer (prefixed "note" for the internal note's): all typed so far."""

    body = forms.CharField(required=False, strip=False, max_length=100_000)
    last_sent = forms.IntegerField(required=False, min_value=0)


class SeenVersionForm(forms.Form):
    """The ticket version a sidebar form was rendered at; absent from clients that send none."""

    version = forms.IntegerField(required=False, min_value=1)

    def seen(self) -> int | None:
        return self.cleaned_data["version"] if self.is_valid() else None


class SendReplyForm(ReplyForm):
    """The public reply, optionally setting the ticket's status in the same step ("Send and set …")."""

    then_status = forms.ChoiceField(choices=[("", "Leave as it is"), *Status.choices], required=False)

    def __init__(self, *args, ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.ticket = ticket

    def clean_then_status(self):
        status = self.cleaned_data["then_status"]
        if status:
            try:
                workflow.check_transition(current=self.ticket.status, target=status)
            except workflow.TransitionRefused as exc:
                raise ValidationError(str(exc)) from None
        return status


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=selectors.assignable_users(), required=False, empty_label="Unassigned")


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)
    note = forms.CharField(max_length=2000, required=False, widget=forms.TextInput)
    fixed_by = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        label="Fixed by",
        help_text="When resolving: which suggested fix solved it.",
    )

    def __init__(self, *args, ticket, recipes=(), **kwargs):
        """``recipes``: (id, title) of the fixes suggested on the ticket; without any, no "fixed by" choice."""
        super().__init__(*args, **kwargs)
        self.ticket = ticket
        allowed = workflow.allowed_next(ticket.status)
        # The form starts at the status the ticket has, so pressing the button with only a note never
        # moves it; every status the workflow allows from there follows. Any status validates here:
        # clean_status says why a move is refused (a stale page gets a sentence, not "not one of the
        # available choices").
        self.fields["status"].widget.choices = [
            (ticket.status, f"{Status(ticket.status).label} (now)"),
            *((s, Status(s).label) for s in allowed),
        ]
        self.fields["status"].initial = ticket.status
        recipes = list(recipes)
        if recipes and Status.RESOLVED in allowed:
            cast(forms.ChoiceField, self.fields["fixed_by"]).choices = [("", "None of these"), *recipes]
        else:
            del self.fields["fixed_by"]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if data.get("fixed_by") is not None and data.get("status") != Status.RESOLVED:
            self.add_error("fixed_by", "Record the fix that solved it when resolving the ticket.")
        if data.get("status") == self.ticket.status and not data.get("note", "").strip():
            self.add_error(
                "status",
                f"The ticket is already {Status(self.ticket.status).label.lower()}: "
                "choose the status to move it to, or write a note.",
            )
        return data

    def clean_status(self):
        status = self.cleaned_data["status"]
        if status == self.ticket.status:
            return status  # a note only (clean)
        try:
            workflow.check_transition(current=self.ticket.status, target=status)
        except workflow.TransitionRefused as exc:
            raise ValidationError(str(exc)) from None
        return status


class PriorityForm(forms.Form):
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int)


class TagsForm(forms.Form):
    tags = TagNamesField(required=False, max_length=400)


class ServersForm(forms.Form):
    servers = forms.ModelMultipleChoiceField(
        queryset=Server.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, ticket, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["servers"]).queryset = ticket.customer.servers.order_by("name")


class TicketNumberField(forms.CharField):
    """A ticket by its number ("#123" or "123"), one the user may read; cleaned to the Ticket."""

    user: access.User  # set by the form that holds the field (_UserForm, the queue's bulk form)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 14)
        super().__init__(**kwargs)

    def clean(self, value):
        raw = super().clean(value)
        if raw in self.empty_values:
            return None
        match = selectors.TICKET_NUMBER.match(raw.strip())
        if match is None:
            raise ValidationError("Enter a ticket number, like #123 or 123.")
        try:
            return selectors.ticket_detail(user=self.user, ticket_id=int(match.group(1)))
        except Ticket.DoesNotExist:
            raise ValidationError(f"There is no ticket #{int(match.group(1))}.") from None


class _UserForm(forms.Form):
    """A form whose ticket-number fields look tickets up as ``user`` (triage.access decides what they see)."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, TicketNumberField):
                field.user = user


class LinkForm(_UserForm):
    other = TicketNumberField(label="Related ticket", widget=forms.TextInput(attrs={"size": 8, "placeholder": "#123"}))


class UnlinkForm(forms.Form):
    link = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class MergeForm(_UserForm):
    """Step one names the survivor and shows both subjects; step two (``confirm``) merges."""

    into = TicketNumberField(
        label="Merge into ticket", widget=forms.TextInput(attrs={"size": 8, "placeholder": "#123"})
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class FlagInput(forms.CheckboxInput):
    """A checkbox that also reads the words an API client sends for false ("false", "0", "no", "off")."""

    FALSE = frozenset({"false", "f", "0", "no", "n", "off"})

    def value_from_datadict(self, data, files, name):
        value = data.get(name)
        if isinstance(value, str) and value.strip().lower() in self.FALSE:
            return False
        return super().value_from_datadict(data, files, name)


class QueueFilterForm(forms.Form):
    """The queue's query string, for the browser's queue and the API's (api.serializers.QueueQuerySerializer
    documents these fields from here). Bad values are errors shown above the queue, never a 500.

    ``initial`` is what a blank value means; ``help_text`` is for API readers (the queue page does not show it)."""

    STATUS_CHOICES = [("open", "Open"), ("all", "All"), *Status.choices]

    status = forms.ChoiceField(
        choices=STATUS_CHOICES,
        required=False,
        initial="open",
        help_text='"open" (every status before resolved), "all", or one status',
    )
    priority = forms.TypedChoiceField(
        choices=[("", "Any"), *Priority.choices], coerce=int, required=False, empty_value=None
    )
    assignee = forms.CharField(required=False, max_length=12, help_text='"me", "none" (unassigned) or a user id')
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.order_by("name"),
        required=False,
        empty_label="Any customer",
        help_text="A customer's id",
        error_messages={"invalid_choice": "No such customer."},
    )
    tag = forms.CharField(required=False, max_length=40, help_text="A tag's name")
    at_risk = forms.BooleanField(
        required=False,
        label="SLA at risk",
        widget=FlagInput,
        help_text="Only tickets whose SLA is breached or nearly due",
    )
    q = forms.CharField(required=False, max_length=200, label="Search", help_text="Full-text search, or #123")
    sort = forms.ChoiceField(
        choices=[(k, label) for k, (label, _) in selectors.SORTS.items()],
        required=False,
        initial=selectors.DEFAULT_SORT,
    )
    cursor = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.HiddenInput,
        help_text="From a page's next_cursor or previous_cursor",
    )

    def clean_assignee(self):
        value = self.cleaned_data["assignee"].strip()
        if value in ("", "me", "none") or (value.isascii() and value.isdigit()):
            return value
        raise ValidationError('Choose "me", "none" (unassigned) or a user id.')

    def clean_tag(self):
        value = self.cleaned_data["tag"].strip().lower()
        if value:
            slug_token(value)
        return value

    def filters(self) -> selectors.QueueFilters:
        data = self.cleaned_data
        return selectors.QueueFilters(
            status=data.get("status") or self.fields["status"].initial,
            priority=data.get("priority"),
            assignee=data.get("assignee") or "",
            customer=data["customer"].pk if data.get("customer") else None,
            tag=data.get("tag") or "",
            at_risk=bool(data.get("at_risk")),
            q=data.get("q") or "",
            sort=data.get("sort") or self.fields["sort"].initial,
            cursor=data.get("cursor") or None,
        )


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ["name", "sla_tier", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    sla_tier = forms.ModelChoiceField(queryset=SlaTier.objects.order_by("name"))


def validate_address(value: str) -> str:
    value = value.strip()
    try:
        validate_ipv46_address(value)
        return value
    except ValidationError:
        pass
    if HOSTNAME.match(value):
        return value.lower()
    raise ValidationError("Enter a host name (mail.example.com) or an IPv4/IPv6 address.")


class ServerForm(forms.ModelForm):
    roles = forms.CharField(required=False, max_length=200, help_text="Comma-separated, e.g. mail, web, cache")

    class Meta:
        model = Server
        fields = ["customer", "name", "address", "ssh_port", "ssh_user", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["roles"] = ", ".join(self.instance.roles.values_list("name", flat=True))

    def clean_address(self):
        return validate_address(self.cleaned_data["address"])

    def clean_roles(self):
        return parse_tag_names(self.cleaned_data["roles"])

    def save(self, commit=True):
        """The server with its roles, through services.server_save (``commit=False``: unsaved, no roles)."""
        if not commit:
            return super().save(commit=False)
        return services.server_save(server=self.instance, role_names=self.cleaned_data["roles"])


class UserCreateForm(forms.Form):
    username = forms.RegexField(regex=r"^[\w.@+-]{1,150}$", max_length=150)
    email = forms.EmailField(required=False)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    roles = forms.MultipleChoiceField(
        choices=[(r, r.title()) for r in access.ROLES], widget=forms.CheckboxSelectMultiple
    )
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    # A name taken in another letter case and a weak password are refused by users.user_create.


class UserRolesForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=[(r, r.title()) for r in access.ROLES], widget=forms.CheckboxSelectMultiple, required=False
    )
    is_active = forms.BooleanField(required=False, label="Active")


def _time_zone_choices() -> list[tuple[str, str]]:
    from zoneinfo import available_timezones

    return [(name, name) for name in sorted(available_timezones())]


def _hours_field(label: str, initial: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=200,
        initial=initial,
        help_text="e.g. 09:00-17:00 or 08:00-12:00, 13:00-17:00; empty for a day off.",
    )


class BusinessCalendarForm(forms.Form):
    """A calendar as an admin types it: one line of intervals per weekday, one holiday per line."""

    name = forms.CharField(max_length=60)
    time_zone = forms.ChoiceField(choices=_time_zone_choices, initial="UTC", help_text="IANA time zone.")
    mon = _hours_field("Monday", "09:00-17:00")
    tue = _hours_field("Tuesday", "09:00-17:00")
    wed = _hours_field("Wednesday", "09:00-17:00")
    thu = _hours_field("Thursday", "09:00-17:00")
    fri = _hours_field("Friday", "09:00-17:00")
    sat = _hours_field("Saturday", "")
    sun = _hours_field("Sunday", "")
    holidays = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One per line: date and name, e.g. 2026-12-25 Christmas Day. No SLA time runs on them.",
    )

    def __init__(self, *args, calendar: BusinessCalendar | None = None, **kwargs):
        if calendar is not None:
            rows = calendar.weekly_rows()
            kwargs.setdefault(
                "initial",
                {
                    "name": calendar.name,
                    "time_zone": calendar.time_zone,
                    "holidays": business_hours.format_holiday_lines(calendar.holidays),
                    **{key: hours for key, (_, hours) in zip(business_hours.WEEKDAYS, rows, strict=True)},
                },
            )
        super().__init__(*args, **kwargs)
        self.calendar = calendar

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = BusinessCalendar.objects.filter(name__iexact=name)
        if self.calendar is not None:
            others = others.exclude(pk=self.calendar.pk)
        if others.exists():
            raise ValidationError("A calendar with this name exists.")
        return name

    def clean_holidays(self) -> list[dict[str, str]]:
        try:
            return business_hours.parse_holiday_lines(self.cleaned_data["holidays"])
        except business_hours.ScheduleError as exc:
            raise ValidationError(str(exc)) from None

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        weekly = []
        for key in business_hours.WEEKDAYS:
            try:
                weekly.append(business_hours.parse_intervals(cleaned.get(key) or ""))
            except business_hours.ScheduleError as exc:
                self.add_error(key, str(exc))
        if len(weekly) == 7 and not any(weekly):
            raise ValidationError("Give working hours on at least one weekday.")
        if len(weekly) == 7:
            cleaned["weekly_hours"] = business_hours.weekly_to_json(weekly)
        return cleaned


class SlaTierCalendarForm(forms.Form):
    calendar = forms.ModelChoiceField(
        queryset=BusinessCalendar.objects.order_by("name"),
        required=False,
        empty_label="None: 24x7",
        help_text="The SLA clock runs only in this calendar's working hours.",
    )
