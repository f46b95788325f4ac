"""User management for admins: create staff with roles, change roles, deactivate."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from triage import access, forms, users


@login_required
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    access.user_access(user=request.user)
    users = get_user_model().objects.prefetch_related("groups").order_by("username")
    return render(request, "users/list.html", {"users": users})


@login_required
@require_http_methods(["GET", "POST"])
def user_new(request: HttpRequest) -> HttpResponse:
    access.user_access(user=request.user)
    form = forms.UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = users.user_create(
                username=data["username"],
                email=data["email"],
                password=data["password"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                roles=data["roles"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"User {user.username} created.")
            return redirect("users")
    return render(request, "users/new.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    access.user_access(user=request.user)
    target = get_object_or_404(get_user_model(), pk=user_id)
    current = list(target.groups.filter(name__in=access.ROLES).values_list("name", flat=True))
    form = forms.UserRolesForm(request.POST or None, initial={"roles": current, "is_active": target.is_active})
    if request.method == "POST" and form.is_valid():
        try:
            users.user_update(
                user=target, roles=form.cleaned_data["roles"], is_active=form.cleaned_data["is_active"], by=request.user
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"User {target.username} updated.")
            return redirect("users")
    return render(request, "users/edit.html", {"form": form, "target": target})
