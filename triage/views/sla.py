"""SLA settings for admins: business calendars (hours, holidays, time zone) and which tier runs on which."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from triage import access, forms, services, sla_selectors
from triage.models import BusinessCalendar, SlaTier


@login_required
@require_GET
def sla_settings(request: HttpRequest) -> HttpResponse:
    access.sla_setup_access(user=request.user)
    return render(
        request,
        "sla/settings.html",
        {
            "tiers": sla_selectors.sla_tiers(),
            "calendars": sla_selectors.business_calendars(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def calendar_edit(request: HttpRequest, calendar_id: int | None = None) -> HttpResponse:
    access.sla_setup_access(user=request.user)
    calendar = get_object_or_404(BusinessCalendar, pk=calendar_id) if calendar_id else None
    form = forms.BusinessCalendarForm(request.POST or None, calendar=calendar)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            calendar = services.business_calendar_save(
                calendar=calendar,
                name=data["name"],
                time_zone=data["time_zone"],
                weekly_hours=data["weekly_hours"],
                holidays=data["holidays"],
            )
        except ValidationError as exc:  # a check the form cannot make alone, e.g. a name taken meanwhile
            form.add_error(None, ValidationError(exc.messages))
        else:
            messages.success(request, f"Calendar {calendar.name} saved.")
            return redirect("sla_settings")
    return render(request, "sla/calendar_edit.html", {"form": form, "calendar": calendar})


@login_required
@require_http_methods(["GET", "POST"])
def tier_edit(request: HttpRequest, tier_id: int) -> HttpResponse:
    access.sla_setup_access(user=request.user)
    tier = get_object_or_404(SlaTier.objects.select_related("calendar"), pk=tier_id)
    form = forms.SlaTierCalendarForm(request.POST or None, initial={"calendar": tier.calendar_id})
    if request.method == "POST" and form.is_valid():
        tier = services.sla_tier_set_calendar(tier=tier, calendar=form.cleaned_data["calendar"])
        clock = tier.calendar.name if tier.calendar else "24x7"
        messages.success(request, f"Tier {tier.name} now runs on {clock}.")
        return redirect("sla_settings")
    return render(request, "sla/tier_edit.html", {"form": form, "tier": tier})
