from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from reports.selectors import Filters
from triage.models import Customer

DEFAULT_DAYS = 90
MAX_DAYS = 5 * 366


def default_filters() -> Filters:
    end = timezone.now().date()
    return Filters(start=end - timedelta(days=DEFAULT_DAYS - 1), end=end)


class DashboardFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    # An id, checked in clean(): a <select> of 2,000 customers is rendered from plain tuples.
    customer = forms.IntegerField(required=False, min_value=1)

    def clean(self):
        super().clean()
        data = self.cleaned_data
        default = default_filters()
        end = data.get("end") or default.end
        start = data.get("start") or end - (default.end - default.start)
        if start > end:
            raise forms.ValidationError("The start date must not be after the end date.")
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"Choose at most {MAX_DAYS} days.")
        customer = data.get("customer")
        if customer and not Customer.objects.filter(pk=customer).exists():
            self.add_error("customer", "No such customer.")
        data["start"], data["end"] = start, end
        return data

    def filters(self) -> Filters:
        """The filters asked for, or the defaults when the form is not valid."""
        if not self.is_valid():
            return default_filters()
        data = self.cleaned_data
        return Filters(start=data["start"], end=data["end"], customer_id=data.get("customer"))
