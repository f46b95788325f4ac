"""The managers' overview and the health check (a tech's home page is composition.views.home)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from triage import selectors
from triage.health import worker_health
from triage.models import Heartbeat


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    figures = selectors.desk_overview(user=request.user)
    worker = Heartbeat.objects.filter(name="worker").first()
    return render(request, "overview.html", {"figures": figures, "worker": worker})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers, docker-compose and monitors: 200 only when the database answers
    and a worker's heartbeat is fresh; otherwise 503 with the reason in JSON."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        worker = worker_health()
    except DatabaseError as exc:
        return JsonResponse({"status": "unavailable", "database": f"error: {exc.__class__.__name__}"}, status=503)
    body = {
        "status": "ok" if worker.alive else "unavailable",
        "database": "ok",
        "worker": "ok" if worker.alive else worker.problem,
        "worker_last_seen": worker.last_seen.isoformat() if worker.last_seen else None,
        "worker_max_age_seconds": int(worker.max_age.total_seconds()),
    }
    return JsonResponse(body, status=200 if worker.alive else 503)
