"""Macro pages: admins list, add, edit and disable them; techs apply one on a ticket.

Applying re-renders the ticket with the composer's draft followed by the macro's text,
so a draft is never replaced, with or without htmx (the buttons also carry formaction).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from triage import access
from triage import forms as desk_forms
from triage import selectors as desk_selectors
from triage import services as desk_services
from triage.htmx import HtmxHttpRequest
from triage.macros import forms, placeholders, selectors, services
from triage.models import DraftKind, Macro
from triage.views import tickets as ticket_views


def _macro(request: HttpRequest, macro_id: int) -> Macro:
    access.macro_access(user=request.user)
    return get_object_or_404(Macro, pk=macro_id)


@login_required
@require_GET
def macro_list(request: HttpRequest) -> HttpResponse:
    access.macro_access(user=request.user)
    rows = [(macro, placeholders.unknown_in(macro.body)) for macro in selectors.macro_list()]
    return render(request, "macros/list.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def macro_edit(request: HttpRequest, macro_id: int | None = None) -> HttpResponse:
    if macro_id is None:
        access.macro_access(user=request.user)
        macro = None
    else:
        macro = _macro(request, macro_id)
    form = forms.MacroForm(request.POST or None, macro=macro)
    if request.method == "POST" and form.is_valid():
        try:
            macro, unknown = services.macro_save(macro=macro, **form.service_fields())
        except ValidationError as exc:
            ticket_views._add_errors(form, exc)
        else:
            messages.success(request, f"Macro “{macro.name}” saved.")
            if unknown:
                known = ", ".join(placeholders.token(name) for name in placeholders.KNOWN)
                messages.warning(
                    request,
                    f"Unknown placeholders in “{macro.name}”, left as typed: {', '.join(unknown)}. Known: {known}.",
                )
            return redirect("macros")
    status = 400 if request.method == "POST" else 200
    return render(request, "macros/edit.html", {"form": form, "macro": macro}, status=status)


@login_required
@require_POST
def macro_set_active(request: HttpRequest, macro_id: int) -> HttpResponse:
    macro = _macro(request, macro_id)
    active = request.POST.get("active") == "1"
    services.macro_set_active(macro=macro, active=active)
    messages.success(request, f"Macro “{macro.name}” {'enabled' if active else 'disabled'}.")
    return redirect("macros")


@login_required
@require_POST
def ticket_apply_macro(request: HtmxHttpRequest, ticket_id: int) -> HttpResponse:
    ticket = ticket_views._load_ticket(request, ticket_id)
    access.ticket_access(user=request.user, action="work")
    form = forms.ApplyMacroForm(request.POST)
    if not form.is_valid():
        drafts = {"body": request.POST.get("body", ""), "note": request.POST.get("note-body", "")}
        return _render_with_drafts(request, ticket, drafts, macro_form=form)
    data = form.cleaned_data
    outcome = services.macro_apply(macro=data["macro"], ticket=ticket, by=request.user)
    drafts = {"body": _append(data["body"], outcome.text), "note": data["note-body"]}
    # The reply with the macro's text is the tech's draft now: kept on the server at once, not only at
    # their next keystroke (a reload right after applying must not lose it).
    composer = desk_selectors.ticket_composers(user=request.user, ticket=ticket)[DraftKind.REPLY]
    desk_services.draft_save(
        user=request.user, ticket=ticket, kind=DraftKind.REPLY, body=drafts["body"], last_sent=composer.last_sent
    )
    return _render_with_drafts(request, ticket_views._load_ticket(request, ticket_id), drafts, macro_outcome=outcome)


def _append(draft: str, text: str) -> str:
    """The macro's text after what the tech already typed, never instead of it."""
    if not draft.strip():
        return text
    if not text:
        return draft
    return f"{draft.rstrip()}\n\n{text}"


def _render_with_drafts(request: HtmxHttpRequest, ticket, drafts: dict[str, str], **bound) -> HttpResponse:
    return ticket_views._render_ticket(
        request,
        ticket,
        reply_form=desk_forms.SendReplyForm(ticket=ticket, initial={"body": drafts["body"]}),
        note_form=desk_forms.ReplyForm(prefix="note", initial={"body": drafts["note"]}),
        **bound,
    )
