"""A customer's contacts: listed on the customer's page; techs and admins add, edit and remove them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from triage import access
from triage.contacts import forms, services
from triage.models import Contact, Customer


def _add_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
@require_http_methods(["GET", "POST"])
def contact_edit(request: HttpRequest, customer_id: int | None = None, contact_id: int | None = None) -> HttpResponse:
    access.contact_access(user=request.user, action="manage")
    contact = get_object_or_404(Contact.objects.select_related("customer"), pk=contact_id) if contact_id else None
    customer = contact.customer if contact else get_object_or_404(Customer, pk=customer_id)
    initial = {"name": contact.name, "email": contact.email, "phone": contact.phone} if contact else None
    form = forms.ContactForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if contact is None:
                contact = services.contact_create(customer=customer, **data)
            else:
                contact = services.contact_update(contact=contact, **data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Contact {contact.email} saved.")
            return redirect("customer", customer_id=customer.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "customers/contact_edit.html", {"form": form, "customer": customer, "contact": contact}, status=status
    )


@login_required
@require_POST
def contact_remove(request: HttpRequest, contact_id: int) -> HttpResponse:
    access.contact_access(user=request.user, action="manage")
    contact = get_object_or_404(Contact.objects.select_related("customer"), pk=contact_id)
    customer_id, email = contact.customer_id, contact.email
    touched = services.contact_remove(contact=contact, by=request.user)
    note = f" It was taken off {touched} open ticket{'s' if touched != 1 else ''}." if touched else ""
    messages.success(request, f"Contact {email} removed.{note}")
    return redirect("customer", customer_id=customer_id)
