"""Fleet sweeps in the browser: start one from a customer's page, follow it host by host, file
its tickets; admins schedule them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from diagnostics import forms, sweep_selectors
from diagnostics.models import Sweep, SweepSchedule
from diagnostics.services import sweeps
from triage import access
from triage.htmx import HtmxHttpRequest
from triage.models import Customer


@login_required
@require_POST
def sweep_start(request: HttpRequest, customer_id: int) -> HttpResponse:
    access.run_access(user=request.user, action="run")
    customer = get_object_or_404(Customer, pk=customer_id)
    form = forms.SweepForm(request.POST, customer=customer)
    if form.is_valid():
        data = form.cleaned_data
        try:
            sweep = sweeps.sweep_start(
                customer=customer,
                playbook=data["playbook"],
                role=data["role"],
                by=request.user,
                open_tickets=data["open_tickets"],
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            return redirect("sweep", sweep_id=sweep.pk)
    return render(request, "diagnostics/sweep_refused.html", {"customer": customer, "form": form}, status=400)


@login_required
@require_GET
def sweep_detail(request: HtmxHttpRequest, sweep_id: int) -> HttpResponse:
    try:
        sweep = sweep_selectors.sweep_detail(user=request.user, sweep_id=sweep_id)
    except Sweep.DoesNotExist:
        raise Http404("No such sweep") from None
    context = {
        "results": sweep_selectors.sweep_results(sweep=sweep),
        "sweep": sweep,
        "can_work": access.can_work_tickets(request.user),
    }
    template = "diagnostics/_sweep.html" if request.htmx else "diagnostics/sweep.html"
    return render(request, template, context)


@login_required
@require_POST
def sweep_file_tickets(request: HttpRequest, sweep_id: int) -> HttpResponse:
    access.ticket_access(user=request.user, action="work")
    sweep = get_object_or_404(Sweep.objects.select_related("customer"), pk=sweep_id)
    try:
        filed = sweeps.sweep_file_tickets(sweep=sweep, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        opened = sum(1 for _, new in filed if new)
        messages.success(request, f"{opened} ticket(s) opened, {len(filed) - opened} existing ticket(s) updated.")
    return redirect("sweep", sweep_id=sweep.pk)


@login_required
@require_POST
def sweep_schedule_add(request: HttpRequest, customer_id: int) -> HttpResponse:
    access.customer_access(user=request.user, action="manage")
    customer = get_object_or_404(Customer, pk=customer_id)
    form = forms.SweepScheduleForm(request.POST, customer=customer, prefix="schedule")
    if form.is_valid():
        data = form.cleaned_data
        schedule = sweeps.schedule_save(
            schedule=SweepSchedule(
                customer=customer,
                playbook=data["playbook"],
                role=data["role"],
                hour=data["hour"],
                minute=data["minute"],
                open_tickets=data["open_tickets"],
                created_by=request.user,  # type: ignore[misc]  # login_required: never anonymous
            )
        )
        messages.success(request, f"Scheduled: {schedule}.")
        return redirect("customer", customer_id=customer.pk)
    return render(request, "diagnostics/sweep_refused.html", {"customer": customer, "form": form}, status=400)


@login_required
@require_POST
def sweep_schedule_delete(request: HttpRequest, schedule_id: int) -> HttpResponse:
    access.customer_access(user=request.user, action="manage")
    schedule = get_object_or_404(SweepSchedule, pk=schedule_id)
    schedule.delete()
    messages.success(request, "Schedule removed.")
    return redirect("customer", customer_id=schedule.customer_id)
