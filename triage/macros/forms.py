"""Macro forms: the admin's editor and the ticket page's "apply" click. They validate only."""

from __future__ import annotations

from typing import cast

from django import forms
from django.core.exceptions import ValidationError

from triage import selectors as desk_selectors
from triage.forms import TagNamesField
from triage.macros import placeholders
from triage.models import Macro, Status

ME = "me"


def _known_help() -> str:
    return "Placeholders: " + "; ".join(f"{placeholders.token(n)} = {what}" for n, what in placeholders.KNOWN.items())


class MacroForm(forms.Form):
    name = forms.CharField(max_length=80)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        max_length=10_000,
        required=False,
        strip=False,
        help_text=_known_help(),
    )
    set_status = forms.ChoiceField(
        choices=[("", "Leave as it is"), *Status.choices], required=False, label="Set status"
    )
    assignee = forms.ChoiceField(required=False, label="Assign to")
    add_tags = TagNamesField(
        required=False, max_length=400, label="Add tags", help_text="Comma-separated, e.g. logs, waiting-on-vendor"
    )
    active = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, macro: Macro | None = None, **kwargs):
        if macro is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": macro.name,
                    "body": macro.body,
                    "set_status": macro.set_status,
                    "assignee": ME if macro.assign_to_me else (str(macro.assign_to_id) if macro.assign_to_id else ""),
                    "add_tags": ", ".join(macro.add_tags),
                    "active": macro.active,
                },
            )
        super().__init__(*args, **kwargs)
        self.macro = macro
        self.users = {str(u.pk): u for u in desk_selectors.assignable_users()}
        cast(forms.ChoiceField, self.fields["assignee"]).choices = [
            ("", "Leave as it is"),
            (ME, "Me (the tech applying it)"),
            *((pk, u.get_username()) for pk, u in self.users.items()),
        ]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = Macro.objects.filter(name__iexact=name)
        if self.macro is not None:
            taken = taken.exclude(pk=self.macro.pk)
        if taken.exists():
            raise ValidationError("Another macro has that name.")
        return name

    def service_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "body": data["body"],
            "set_status": data["set_status"],
            "assign_to": self.users.get(data["assignee"]),
            "assign_to_me": data["assignee"] == ME,
            "add_tags": data["add_tags"],
            "active": data["active"],
        }


class ApplyMacroForm(forms.Form):
    """A macro button's click: which macro, and the composers' drafts to keep."""

    macro = forms.ModelChoiceField(
        queryset=Macro.objects.filter(active=True), error_messages={"invalid_choice": "That macro is no longer active."}
    )
    body = forms.CharField(required=False, strip=False, max_length=100_000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The note composer's textarea, named by its form's prefix.
        self.fields["note-body"] = forms.CharField(required=False, strip=False, max_length=100_000)
