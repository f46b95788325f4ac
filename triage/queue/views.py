"""The queue's own actions: a bulk change to the selected tickets, and saving or deleting a view.

Each answers htmx with the queue's results (the outcome above them) and a plain POST with a
redirect back to the same queue, the outcome in a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from triage import access
from triage.htmx import HtmxHttpRequest
from triage.queue import forms, services
from triage.views import tickets as ticket_views


def _back_to_queue(query: str) -> HttpResponse:
    return redirect(reverse("queue") + (f"?{query}" if query else ""))


@login_required
@require_POST
def queue_bulk(request: HtmxHttpRequest) -> HttpResponse:
    access.ticket_access(user=request.user, action="work")
    form = forms.BulkChangeForm(request.POST, user=request.user)
    outcome = None
    if form.is_valid():
        data = form.cleaned_data
        if data["action"] == "merge":
            outcome = services.tickets_bulk_merge(tickets=data["tickets"], by=request.user, into=data["merge_into"])
        else:
            outcome = services.tickets_bulk_change(
                tickets=data["tickets"],
                by=request.user,
                assignee=data["assignee"],
                status=data["status"],
                priority=data["priority"],
                add_tags=data["add_tags"],
                seen=data["seen"],
            )
    query = form.cleaned_data.get("query", "")
    if request.htmx:
        # 200 even for a refused form: htmx swaps only 2xx answers, and the tech must read why.
        # A refused form keeps the tech's selection; after a change the boxes start empty again.
        selected = set() if outcome is not None else {int(pk) for pk in request.POST.getlist("tickets") if pk.isdigit()}
        return ticket_views.queue_results(request, query=query, bulk_form=form, outcome=outcome, selected=selected)
    if outcome is None:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))  # an ErrorList yields its messages as str
    else:
        _report(request, outcome)
    return _back_to_queue(query)


def _report(request: HttpRequest, outcome: services.BulkOutcome) -> None:
    if outcome.merged_into and outcome.changed:
        messages.success(request, f"Merged {', '.join(outcome.changed)} into {outcome.merged_into}.")
    elif outcome.changed:
        messages.success(request, f"Changed {', '.join(outcome.changed)}.")
    if outcome.unchanged:
        messages.info(request, f"Already so, left as they were: {', '.join(outcome.unchanged)}.")
    for reference, reason in outcome.refused:
        messages.error(request, f"{reference} not changed: {reason}")
    for sentence in outcome.stale:
        messages.warning(request, sentence)


@login_required
@require_POST
def saved_view_save(request: HttpRequest) -> HttpResponse:
    access.ticket_access(user=request.user, action="view")
    form = forms.SavedViewForm(request.POST)
    if form.is_valid():
        try:
            view = services.saved_view_save(
                user=request.user, name=form.cleaned_data["name"], query=form.cleaned_data["query"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"View “{view.name}” saved.")
            return _back_to_queue(view.query)
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, f"View not saved: {error}")
    return _back_to_queue("")


@login_required
@require_POST
def saved_view_delete(request: HttpRequest, view_id: int) -> HttpResponse:
    access.ticket_access(user=request.user, action="view")
    services.saved_view_delete(user=request.user, view_id=view_id)
    return redirect("queue")
