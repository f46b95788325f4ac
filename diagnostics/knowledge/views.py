"""Curating the knowledge base in the browser: the catalogue, symptom and recipe forms, "try it"
on stored runs before saving, and each entry's version history.

Each view: access helper -> form -> knowledge service (or read) -> render/redirect. A draft the
knowledge services refuse re-renders with every problem beside its field and nothing lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnostics import tasks
from diagnostics.knowledge import curation, services
from diagnostics.knowledge.forms import PreviewForm, RecipeForm, SymptomForm
from diagnostics.models import FixRecipe, Symptom
from triage import access


@dataclass(frozen=True)
class _Kind:
    name: str  # "symptom" or "recipe": the KnowledgeRevision kind and the URL names' infix
    label: str
    model: type[Symptom] | type[FixRecipe]
    form: type
    save: Callable
    draft_field: str  # the text area "try it" previews
    current: Callable  # the stored entry's reviewable content (what a conflict shows)


SYMPTOM = _Kind("symptom", "Symptom", Symptom, SymptomForm, services.symptom_save, "signature", services.symptom_data)
RECIPE = _Kind(
    "recipe", "Fix recipe", FixRecipe, RecipeForm, services.recipe_save, "applies_when", services.recipe_data
)


@login_required
@require_GET
def kb_list(request: HttpRequest) -> HttpResponse:
    access.knowledge_access(user=request.user, action="view")
    context = {**curation.kb_catalogue(), "can_edit": access.has_role(request.user, access.ADMIN)}
    return render(request, "diagnostics/kb/list.html", context)


def _edit(request: HttpRequest, kind: _Kind, key: str | None) -> HttpResponse:
    access.knowledge_access(user=request.user, action="edit")
    entry = get_object_or_404(kind.model, key=key) if key else None
    form = kind.form(request.POST or None, entry=entry)
    conflict = None
    if request.method == "POST" and form.is_valid() and form.stale():
        # Saved by someone else since this editor opened it: show theirs beside this one, save nothing.
        # Saving again (the form now carries their version) puts this one over theirs, knowingly.
        assert entry is not None  # only an existing entry can be stale
        conflict = {
            "version": entry.version,
            "by": entry.updated_by,
            "at": entry.updated_at,
            "text": curation.yaml_text(kind.current(entry)),
        }
        form = kind.form(request.POST, entry=entry)  # its data is a mutable copy (lf_line_endings)
        form.data["base_version"] = str(entry.version)
        form.is_valid()
    elif request.method == "POST" and form.is_valid():
        try:
            row, outcome = kind.save(data=form.knowledge_data(), by=request.user, note=form.cleaned_data["note"])
        except services.KnowledgeError as exc:
            form.add_knowledge_errors(exc.errors)
        else:
            if outcome == "unchanged":
                messages.info(request, f"Nothing changed: {row.key} stays at version {row.version}.")
            else:
                # Open tickets show fixes from the knowledge base as it is now: match them again, off the request.
                transaction.on_commit(tasks.rematch_open_tickets.delay)
                messages.success(
                    request,
                    f"{kind.label} {row.key} {outcome}: version {row.version}. Open tickets are being matched again.",
                )
            return redirect(f"kb_{kind.name}_history", key=row.key)
    context = {"kind": kind, "entry": entry, "form": form, "preview_runs": curation.PREVIEW_RUNS, "conflict": conflict}
    if entry is not None and kind is SYMPTOM:
        context["not_evaluated"] = curation.skipped_symptoms().get(entry.pk, [])
    return render(request, "diagnostics/kb/edit.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def symptom_edit(request: HttpRequest, key: str | None = None) -> HttpResponse:
    return _edit(request, SYMPTOM, key)


@login_required
@require_http_methods(["GET", "POST"])
def recipe_edit(request: HttpRequest, key: str | None = None) -> HttpResponse:
    return _edit(request, RECIPE, key)


def _try(request: HttpRequest, kind: _Kind) -> HttpResponse:
    access.knowledge_access(user=request.user, action="edit")
    draft = request.POST.get(kind.draft_field, "")
    context: dict[str, Any] = {"kind": kind, "preview": None, "general": False, "errors": []}
    if kind is RECIPE and not draft.strip():
        context["general"] = True  # no applies_when: general advice, fits every host
        return render(request, "diagnostics/kb/_preview.html", context)
    threshold = request.POST.get("threshold", "") if kind is SYMPTOM else ""
    form = PreviewForm({"signature": draft, "threshold": threshold})
    if form.is_valid():
        context["preview"] = curation.signature_preview(
            spec=form.cleaned_data["signature"], threshold=form.cleaned_data["threshold"] if kind is SYMPTOM else None
        )
        context["errors"] = context["preview"].errors
    else:
        field_names = {"signature": kind.draft_field, "threshold": "threshold"}
        context["errors"] = [f"{field_names.get(f, f)}: {e}" for f, errs in form.errors.items() for e in errs]
    # Always 200: htmx swaps only successful responses, and the errors are the answer.
    return render(request, "diagnostics/kb/_preview.html", context)


@login_required
@require_POST
def symptom_try(request: HttpRequest) -> HttpResponse:
    return _try(request, SYMPTOM)


@login_required
@require_POST
def recipe_try(request: HttpRequest) -> HttpResponse:
    return _try(request, RECIPE)


def _history(request: HttpRequest, kind: _Kind, key: str) -> HttpResponse:
    access.knowledge_access(user=request.user, action="view")
    entry = kind.model.objects.filter(key=key).first()
    revisions = curation.revision_history(kind=kind.name, key=key)
    if entry is None and not revisions:
        raise Http404(f"No such {kind.name}")
    context = {
        "kind": kind,
        "key": key,
        "entry": entry,
        "revisions": revisions,
        "can_edit": access.has_role(request.user, access.ADMIN),
    }
    return render(request, "diagnostics/kb/history.html", context)


@login_required
@require_GET
def symptom_history(request: HttpRequest, key: str) -> HttpResponse:
    return _history(request, SYMPTOM, key)


@login_required
@require_GET
def recipe_history(request: HttpRequest, key: str) -> HttpResponse:
    return _history(request, RECIPE, key)
