from __future__ import annotations

from django import forms

from triage.models import Customer
from webhooks.models import Endpoint, EventType, http_url


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        label="URL", max_length=500, validators=[http_url], help_text="http:// or https://; redirects are not followed."
    )
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple, label="Events"
    )
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(),
        required=False,
        empty_label="Every customer",
        help_text="Only this customer's tickets.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, endpoint: Endpoint | None = None, **kwargs):
        if endpoint is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": endpoint.name,
                    "url": endpoint.url,
                    "event_types": endpoint.event_types,
                    "customer": endpoint.customer,
                    "enabled": endpoint.enabled,
                },
            )
        super().__init__(*args, **kwargs)
        self.endpoint = endpoint

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Endpoint.objects.filter(name=name)
        if self.endpoint is not None:
            taken = taken.exclude(pk=self.endpoint.pk)
        if taken.exists():
            raise forms.ValidationError("Another endpoint has this name.")
        return name
