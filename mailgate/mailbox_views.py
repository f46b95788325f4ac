"""Admins' Mailboxes page: the hosted mailboxes the desk polls over IMAP (list, add, edit, try)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailgate import forms, imap, mailbox_services, selectors
from mailgate.models import Mailbox
from triage import access


def _mailbox(request: HttpRequest, mailbox_id: int) -> Mailbox:
    access.mailbox_access(user=request.user)
    return get_object_or_404(Mailbox, pk=mailbox_id)


@login_required
@require_GET
def mailbox_list(request: HttpRequest) -> HttpResponse:
    access.mailbox_access(user=request.user)
    return render(request, "mailgate/mailboxes.html", {"mailboxes": selectors.mailbox_list()})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mailbox_edit(request: HttpRequest, mailbox_id: int | None = None) -> HttpResponse:
    if mailbox_id is None:
        access.mailbox_access(user=request.user)
        mailbox = None
    else:
        mailbox = _mailbox(request, mailbox_id)
    form = forms.MailboxForm(request.POST or None, mailbox=mailbox)
    if request.method == "POST" and form.is_valid():
        fields = {
            k: form.cleaned_data[k]
            for k in ("name", "host", "port", "security", "username", "password", "folder", "enabled")
        }
        try:
            if mailbox is None:
                mailbox = mailbox_services.mailbox_create(**fields, by=request.user)
            else:
                mailbox_services.mailbox_update(mailbox=mailbox, **fields)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Mailbox {mailbox.name} saved.")
            return redirect("mailboxes")
    status = 400 if request.method == "POST" else 200
    return render(request, "mailgate/mailbox_edit.html", {"form": form, "mailbox": mailbox}, status=status)


@login_required
@require_POST
def mailbox_test(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    mailbox = _mailbox(request, mailbox_id)
    try:
        messages.success(request, mailbox_services.mailbox_test(mailbox=mailbox))
    except imap.ImapError as exc:
        messages.error(request, f"{mailbox.name}: {exc.message}")
    return redirect("mailboxes")
