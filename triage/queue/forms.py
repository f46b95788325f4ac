"""Forms of the queue's own actions: a bulk change to the selected tickets, and saving a view."""

from __future__ import annotations

from typing import cast

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from triage import forms as desk_forms
from triage import selectors
from triage.models import Priority, Status, Ticket
from triage.queue import services

# How many tickets one bulk change may touch: a page of the queue is at most this many rows.
BULK_LIMIT = 200


class BulkChangeForm(forms.Form):
    """The selected tickets and what to do to them; at least one change is required.

    Each row of the queue also posts the version its ticket was at when the page was rendered
    (``version-<id>``): ``cleaned_data["seen"]`` maps the selected tickets to those versions, so a
    ticket changed since is left alone (triage.queue.services). A ticket posted without one (a page
    from before versions were posted) is changed as it is."""

    tickets = forms.ModelMultipleChoiceField(
        queryset=Ticket.objects.all(),
        widget=forms.MultipleHiddenInput,
        error_messages={"required": "Select the tickets to change."},
    )
    assignee = forms.CharField(required=False, max_length=12)  # "", "me", "none" or a user id
    status = forms.ChoiceField(choices=[("", "Keep status"), *Status.choices], required=False)
    priority = forms.TypedChoiceField(
        choices=[("", "Keep priority"), *Priority.choices], required=False, coerce=int, empty_value=None
    )
    add_tags = desk_forms.TagNamesField(required=False, max_length=400, label="Add tags")
    # The button pressed: "Apply to selected" (the changes above) or "Merge selected".
    action = forms.ChoiceField(choices=[("change", "Change"), ("merge", "Merge")], required=False)
    # Merge: the survivor's number; blank merges into the oldest selected ticket.
    merge_into = desk_forms.TicketNumberField(required=False, label="Merge into")
    # The queue's query string, to show the same queue again afterwards.
    query = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        cast(desk_forms.TicketNumberField, self.fields["merge_into"]).user = user

    def clean_tickets(self):
        tickets = self.cleaned_data["tickets"]
        if len(tickets) > BULK_LIMIT:
            raise ValidationError(f"At most {BULK_LIMIT} tickets at once.")
        return tickets

    def clean_assignee(self):
        value = self.cleaned_data["assignee"].strip()
        if value == "":
            return services.UNCHANGED
        if value == "none":
            return None
        if value == "me":
            return self.user
        if value.isdigit():
            person = selectors.assignable_users().filter(pk=int(value)).first()
            if person is not None:
                return person
        raise ValidationError("Tickets can only be assigned to techs or admins.")

    def clean_query(self):
        return queue_query(self.cleaned_data["query"])

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if data.get("action") == "merge":
            return self._clean_merge(data)
        if (
            data.get("assignee") is services.UNCHANGED
            and not data.get("status")
            and data.get("priority") is None
            and not data.get("add_tags")
            and not self.errors
        ):
            raise ValidationError("Choose what to change: the assignee, the status, the priority or tags to add.")
        data["seen"] = self._seen_versions(data.get("tickets") or [])
        return data

    def _seen_versions(self, tickets) -> dict[int, int]:
        seen = {}
        for ticket in tickets:
            raw = self.data.get(f"version-{ticket.pk}", "").strip()
            if not raw:
                continue
            if not raw.isdigit() or len(raw) > 18:
                raise ValidationError(
                    f"The queue sent a version for {ticket.reference} that is not a number: "
                    "reload the queue and select again."
                )
            seen[ticket.pk] = int(raw)
        return seen

    def _clean_merge(self, data):
        """A merge needs two tickets (or one and a survivor to merge it into), all of one customer."""
        tickets = list(data.get("tickets") or [])
        into = data.get("merge_into")
        if self.errors:
            return data
        if len(tickets) + (into is not None and into not in tickets) < 2:
            raise ValidationError("Select at least two tickets to merge (or one, and the ticket to merge it into).")
        customers = sorted({t.customer.name for t in [*tickets, *([into] if into else [])]})
        if len(customers) > 1:
            raise ValidationError(
                f"Only tickets of one customer can be merged; these are for {', '.join(customers)}. Nothing was merged."
            )
        return data


def queue_query(raw: str) -> str:
    """A queue query string, checked by the queue's own filter form and re-encoded without the page
    cursor (a saved view or a return link starts on the first page); raises ValidationError."""
    params = QueryDict(raw.lstrip("?"), mutable=True)
    params.pop("cursor", None)
    filters = desk_forms.QueueFilterForm(params)
    if not filters.is_valid():
        raise ValidationError([f"{name}: {error}" for name, errors in filters.errors.items() for error in errors])
    known = {k: v for k, v in params.lists() if k in filters.fields and any(v)}
    encoded = QueryDict(mutable=True)
    for key, values in known.items():
        encoded.setlist(key, [v for v in values if v])
    return encoded.urlencode()


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=60, validators=[desk_forms.validate_one_line])
    query = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_query(self):
        return queue_query(self.cleaned_data["query"])
