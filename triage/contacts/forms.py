"""Forms for contacts: they validate shapes; triage.contacts.services decides who owns an address."""

from __future__ import annotations

from typing import cast

from django import forms

from triage.models import Contact, Ticket


class ContactForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    email = forms.EmailField(label="E-mail address")
    phone = forms.CharField(max_length=40, required=False)


class PeopleForm(forms.Form):
    """The ticket's People part: its requester and CCs, chosen from the customer's contacts, and an
    address to add as a new contact of the customer and copy on the ticket."""

    requester = forms.ModelChoiceField(
        queryset=Contact.objects.none(), required=False, empty_label="Nobody in particular"
    )
    ccs = forms.ModelMultipleChoiceField(
        queryset=Contact.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, label="In copy (Cc)"
    )
    new_cc = forms.EmailField(
        required=False,
        label="Add a contact in copy",
        help_text="An address not yet a contact: it becomes one of this customer.",
    )
    new_cc_name = forms.CharField(max_length=200, required=False, label="Their name")

    def __init__(self, *args, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        contacts = ticket.customer.contacts.order_by("email")
        cast(forms.ModelChoiceField, self.fields["requester"]).queryset = contacts
        cast(forms.ModelChoiceField, self.fields["ccs"]).queryset = contacts
