"""Reads for the queue's sidebar: the user's saved views, each with a live count."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import QueryDict

from triage import forms, selectors
from triage.models import SavedView


@dataclass
class SavedViewRow:
    view: SavedView
    count: int | None  # None: the view no longer validates (a customer deleted since, say)


def saved_views_with_counts(*, user) -> list[SavedViewRow]:
    """The user's own views, by name, each with the number of tickets it matches now (one COUNT each)."""
    rows = []
    for view in SavedView.objects.filter(user=user).order_by("name"):
        form = forms.QueueFilterForm(QueryDict(view.query))
        count = None
        if form.is_valid():
            count = selectors.ticket_queue_matches(user=user, filters=form.filters()).count()
        rows.append(SavedViewRow(view=view, count=count))
    return rows
