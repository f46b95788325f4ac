"""Pages that join the desk (triage) with diagnostics: a tech's home page, their tickets and their
collections side by side."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from composition import home as tech_home
from triage import access


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """A tech's (or admin's) own desk; managers go to their overview."""
    if access.can_work_tickets(request.user):
        return render(request, "home.html", {"home": tech_home.tech_home(user=request.user)})
    if access.has_role(request.user, access.MANAGER):
        return redirect("overview")
    raise PermissionDenied
