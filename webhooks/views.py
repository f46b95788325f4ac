"""Admins' webhook pages: endpoints, their secrets (shown once), test events, the delivery log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from triage import access
from webhooks import forms, selectors, services
from webhooks.models import Delivery, Endpoint


def _endpoint(request: HttpRequest, endpoint_id: int) -> Endpoint:
    access.webhook_access(user=request.user)
    return get_object_or_404(Endpoint.objects.select_related("customer"), pk=endpoint_id)


def _show_secret(request: HttpRequest, endpoint: Endpoint, secret: str, *, created: bool) -> HttpResponse:
    # Rendered straight into this POST's response: the plaintext never goes to a session,
    # a message cookie or a log, and no GET can show it again.
    return render(request, "webhooks/secret.html", {"endpoint": endpoint, "secret": secret, "created": created})


@login_required
@require_GET
def endpoint_list(request: HttpRequest) -> HttpResponse:
    access.webhook_access(user=request.user)
    return render(request, "webhooks/endpoints.html", {"endpoints": selectors.endpoint_list()})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HttpRequest, endpoint_id: int | None = None) -> HttpResponse:
    if endpoint_id is None:
        access.webhook_access(user=request.user)
        endpoint = None
    else:
        endpoint = _endpoint(request, endpoint_id)
    form = forms.EndpointForm(request.POST or None, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        fields = {
            "name": data["name"],
            "url": data["url"],
            "event_types": data["event_types"],
            "enabled": data["enabled"],
            "customer": data["customer"],
        }
        try:
            if endpoint is None:
                endpoint, secret = services.endpoint_create(**fields, by=request.user)
            else:
                services.endpoint_update(endpoint=endpoint, **fields)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            if endpoint_id is None:
                return _show_secret(request, endpoint, secret, created=True)
            messages.success(request, f"Endpoint {endpoint.name} saved.")
            return redirect("webhook_deliveries", endpoint_id=endpoint.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "webhooks/endpoint_edit.html", {"form": form, "endpoint": endpoint}, status=status)


@never_cache
@login_required
@require_POST
def endpoint_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    secret = services.endpoint_rotate_secret(endpoint=endpoint)
    return _show_secret(request, endpoint, secret, created=False)


@login_required
@require_POST
def endpoint_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    try:
        services.endpoint_send_test(endpoint=endpoint, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Test event queued; it appears in the log below.")
    return redirect("webhook_deliveries", endpoint_id=endpoint.pk)


@login_required
@require_GET
def endpoint_deliveries(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    context = {"endpoint": endpoint, "deliveries": selectors.endpoint_deliveries(endpoint=endpoint)}
    return render(request, "webhooks/deliveries.html", context)


@login_required
@require_POST
def delivery_redeliver(request: HttpRequest, endpoint_id: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    delivery = get_object_or_404(Delivery, pk=delivery_id, endpoint=endpoint)
    try:
        services.delivery_redeliver(delivery=delivery)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Queued for redelivery with the same event id.")
    return redirect("webhook_deliveries", endpoint_id=endpoint.pk)
