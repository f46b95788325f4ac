"""The mail pages' forms: Mailboxes (the password is write-only: never rendered back, blank keeps it),
Held mail and Mail routes."""

from __future__ import annotations

from django import forms

from mailgate.models import Mailbox, Security
from triage.models import Customer


class MailboxForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the desk calls it, e.g. Support inbox.")
    host = forms.CharField(max_length=253, help_text="The IMAP server, e.g. imap.example.com.")
    security = forms.ChoiceField(
        choices=Security.choices,
        initial=Security.IMAPS,
        help_text="Certificates are verified. Plain text only for a server on this machine.",
    )
    port = forms.IntegerField(
        min_value=1, max_value=65535, required=False, help_text="Blank: 993 for IMAPS, 143 otherwise."
    )
    username = forms.CharField(max_length=254)
    password = forms.CharField(
        max_length=500,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    folder = forms.CharField(
        max_length=200,
        initial="INBOX",
        help_text="New mail here, read or not, becomes tickets and replies; the desk changes nothing in the mailbox.",
    )
    enabled = forms.BooleanField(required=False, initial=True, help_text="Polled by the desk.")

    def __init__(self, *args, mailbox: Mailbox | None = None, **kwargs):
        if mailbox is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": mailbox.name,
                    "host": mailbox.host,
                    "security": mailbox.security,
                    "port": mailbox.port,
                    "username": mailbox.username,
                    "folder": mailbox.folder,
                    "enabled": mailbox.enabled,
                },
            )
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox
        if mailbox is None:
            self.fields["password"].required = True
        else:
            self.fields["password"].help_text = "Stored encrypted and never shown. Leave blank to keep it."

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Mailbox.objects.filter(name=name)
        if self.mailbox is not None:
            taken = taken.exclude(pk=self.mailbox.pk)
        if taken.exists():
            raise forms.ValidationError("Another mailbox has this name.")
        return name

    def clean_host(self) -> str:
        return self.cleaned_data["host"].strip().lower()


class HeldTicketForm(forms.Form):
    """File a held message as a ticket: for which customer, and whether to route the sender from now on."""

    ROUTES = (("", "No route"), ("address", "Route the sender's address"), ("domain", "Route the sender's domain"))

    customer = forms.ModelChoiceField(
        queryset=Customer.objects.order_by("name"),
        error_messages={"required": "Choose the customer this mail is from."},
    )
    route = forms.ChoiceField(choices=ROUTES, required=False)


class MailRouteForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.order_by("name"))
    value = forms.CharField(
        max_length=254,
        label="Address or domain",
        help_text="ops@example.com routes one address; example.com routes the domain and its sub-domains.",
    )
