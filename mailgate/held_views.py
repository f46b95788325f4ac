"""The Held mail page (techs and admins: file held or rejected inbound mail as a ticket, or reject it)
and the Mail routes page (admins: which addresses and domains are whose)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailgate import forms, held_services, selectors, services
from mailgate.models import InboundMessage, MailRoute
from triage import access
from triage.models import Customer


def _held_page(
    request: HttpRequest, *, failed_id: int | None = None, errors: tuple[str, ...] | list[str] = (), status: int = 200
) -> HttpResponse:
    return render(
        request,
        "mailgate/held.html",
        {
            "rows": selectors.held_messages(),
            "total": selectors.held_count(),
            "decided": selectors.held_recently_decided(),
            "customers": Customer.objects.order_by("name").only("pk", "name"),
            "can_route": access.has_role(request.user, access.ADMIN),
            "failed_id": failed_id,
            "errors": errors,
        },
        status=status,
    )


@never_cache
@login_required
@require_GET
def held_list(request: HttpRequest) -> HttpResponse:
    access.held_mail_access(user=request.user)
    return _held_page(request)


@login_required
@require_POST
def held_ticket(request: HttpRequest, message_id: int) -> HttpResponse:
    access.held_mail_access(user=request.user)
    message = get_object_or_404(InboundMessage.objects.defer("raw"), pk=message_id)
    form = forms.HeldTicketForm(request.POST)
    if not form.is_valid():
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]  # an ErrorList yields str
        return _held_page(request, failed_id=message.pk, errors=errors, status=400)
    route = form.cleaned_data["route"]
    if route:
        access.mail_route_access(user=request.user)
    customer = form.cleaned_data["customer"]
    try:
        filed = held_services.held_file_ticket(message_id=message.pk, customer=customer, by=request.user, route=route)
    except held_services.AlreadyDecided as exc:
        # A double click lands here: the first click's ticket (or the rejection) is what the tech sees.
        messages.info(request, str(exc))
        return redirect("ticket", exc.message.ticket_id) if exc.message.ticket_id else redirect("held_mail")
    except ValidationError as exc:
        return _held_page(request, failed_id=message.pk, errors=exc.messages, status=400)
    text = f"Filed as {filed.ticket.reference} for {customer.name}."
    if filed.route is not None:
        text += f" Mail from {filed.route.value} now goes straight to {customer.name}."
    messages.success(request, text)
    return redirect("ticket", filed.ticket.pk)


@login_required
@require_POST
def held_reject(request: HttpRequest, message_id: int) -> HttpResponse:
    access.held_mail_access(user=request.user)
    message = get_object_or_404(InboundMessage.objects.defer("raw"), pk=message_id)
    try:
        held_services.held_reject(message_id=message.pk, by=request.user)
    except held_services.AlreadyDecided as exc:
        messages.info(request, str(exc))
    else:
        messages.success(request, f"Rejected the mail from {message.from_address or 'an unknown sender'}.")
    return redirect("held_mail")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def route_list(request: HttpRequest) -> HttpResponse:
    access.mail_route_access(user=request.user)
    form = forms.MailRouteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            route = services.mail_route_add(customer=form.cleaned_data["customer"], value=form.cleaned_data["value"])
        except ValidationError as exc:
            for errors in exc.message_dict.values():
                form.add_error("value", errors)
        else:
            messages.success(request, f"Mail from {route.value} now routes to {route.customer.name}.")
            return redirect("mail_routes")
    status = 400 if request.method == "POST" else 200
    return render(request, "mailgate/routes.html", {"form": form, "routes": selectors.mail_routes()}, status=status)


@login_required
@require_POST
def route_delete(request: HttpRequest, route_id: int) -> HttpResponse:
    access.mail_route_access(user=request.user)
    route = get_object_or_404(MailRoute.objects.select_related("customer"), pk=route_id)
    services.mail_route_remove(customer=route.customer, value=route.value)
    messages.success(request, f"Mail from {route.value} no longer routes to {route.customer.name}.")
    return redirect("mail_routes")
