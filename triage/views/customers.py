"""Customers and their servers: techs and managers read, admins manage."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from triage import access, extensions, forms, selectors
from triage.models import Customer, Server


@login_required
@require_GET
def customer_list(request: HttpRequest) -> HttpResponse:
    customers = selectors.customer_list(user=request.user)
    open_counts = selectors.customer_open_ticket_counts()
    rows = [(c, open_counts.get(c.pk, 0)) for c in customers]
    return render(
        request, "customers/list.html", {"rows": rows, "can_manage": access.has_role(request.user, access.ADMIN)}
    )


@login_required
@require_GET
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    try:
        customer = selectors.customer_detail(user=request.user, customer_id=customer_id)
    except Customer.DoesNotExist:
        raise Http404("No such customer") from None
    return render(
        request,
        "customers/detail.html",
        {
            "customer": customer,
            "servers": customer.servers.prefetch_related("roles").order_by("name"),
            "targets": customer.sla_tier.targets.order_by("priority"),
            "tickets": selectors.customer_recent_tickets(customer=customer),
            "can_manage": access.has_role(request.user, access.ADMIN),
            "can_work": access.can_work_tickets(request.user),
            "contacts": selectors.customer_contacts(customer=customer),
            "can_manage_contacts": access.can_manage_contacts(request.user),
            # Fleet sweeps (diagnostics), through the desk's extension point.
            **extensions.customer_page_context(request=request, customer=customer),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def customer_edit(request: HttpRequest, customer_id: int | None = None) -> HttpResponse:
    access.customer_access(user=request.user, action="manage")
    customer = get_object_or_404(Customer, pk=customer_id) if customer_id else None
    form = forms.CustomerForm(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        customer = form.save()
        messages.success(request, f"Customer {customer.name} saved.")
        return redirect("customer", customer_id=customer.pk)
    return render(request, "customers/edit.html", {"form": form, "customer": customer})


@login_required
@require_GET
def server_detail(request: HttpRequest, server_id: int) -> HttpResponse:
    try:
        server = selectors.server_detail(user=request.user, server_id=server_id)
    except Server.DoesNotExist:
        raise Http404("No such server") from None
    return render(
        request,
        "servers/detail.html",
        {
            "server": server,
            "tickets": selectors.server_recent_tickets(server=server),
            "can_manage": access.has_role(request.user, access.ADMIN),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def server_edit(request: HttpRequest, server_id: int | None = None) -> HttpResponse:
    access.server_access(user=request.user, action="manage")
    server = get_object_or_404(Server, pk=server_id) if server_id else None
    initial = {}
    if server is None and request.GET.get("customer", "").isdigit():
        initial["customer"] = int(request.GET["customer"])
    form = forms.ServerForm(request.POST or None, instance=server, initial=initial)
    if request.method == "POST" and form.is_valid():
        server = form.save()
        messages.success(request, f"Server {server.name} saved.")
        return redirect("server", server_id=server.pk)
    return render(request, "servers/edit.html", {"form": form, "server": server})
