"""Home, the managers' overview and the health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from triage import access, selectors
from triage import home as tech_home
from triage.models import Heartbeat


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """A tech's (or admin's) own desk; managers go to their overview."""
    if access.can_work_tickets(request.user):
        return render(request, "home.html", {"home": tech_home.tech_home(user=request.user)})
    if access.has_role(request.user, access.MANAGER):
        return redirect("overview")
    raise PermissionDenied


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    figures = selectors.desk_overview(user=request.user)
    worker = Heartbeat.objects.filter(name="worker").first()
    return render(request, "overview.html", {"figures": figures, "worker": worker})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for the load balancer and docker-compose: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
