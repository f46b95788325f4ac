"""Writes to the knowledge base. Every create or change bumps the version and leaves a KnowledgeRevision."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from diagnostics.knowledge.recipe_text import SNIPPET_FIELDS, STEP_FIELDS, placeholder_errors, software_errors
from diagnostics.knowledge.signature import signature_errors
from diagnostics.models import FixRecipe, KnowledgeRevision, Symptom

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
RISKS = ("low", "medium", "high")
NEEDS = ("none", "restart", "reboot")
SYMPTOM_FIELDS = (
    "key",
    "title",
    "explanation",
    "impact",
    "likelihood",
    "threshold",
    "enabled",
    "caused_by",
    "signature",
)
RECIPE_FIELDS = ("key", "title", "fixes", "applies_when", "risk", "needs", "steps", "snippets", "references")
# Signature keys in reading order, so exports diff cleanly whatever order the database keeps.
_SIGNATURE_ORDER = {
    k: i
    for i, k in enumerate(
        (
            "all",
            "any",
            "not",
            "probe",
            "facts",
            "regex",
            "flags",
            "where",
            "per",
            "count",
            "aggregate",
            "field",
            "op",
            "min_matches",
            "weight",
            "describe",
        )
    )
}


class KnowledgeError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def canonical_signature(node: Any) -> Any:
    if isinstance(node, dict):
        keys = sorted(node, key=lambda k: (_SIGNATURE_ORDER.get(k, len(_SIGNATURE_ORDER)), str(k)))
        return {k: canonical_signature(node[k]) for k in keys}
    if isinstance(node, list):
        return [canonical_signature(item) for item in node]
    return node


def symptom_data(symptom: Symptom) -> dict:
    """A symptom's reviewable content (no version or audit fields), in a fixed order."""
    return {
        "key": symptom.key,
        "title": symptom.title,
        "explanation": symptom.explanation,
        "impact": symptom.impact,
        "likelihood": symptom.likelihood,
        "threshold": float(symptom.threshold),
        "enabled": symptom.enabled,
        "caused_by": sorted(s.key for s in symptom.caused_by.all()),
        "signature": canonical_signature(symptom.signature),
    }


def recipe_data(recipe: FixRecipe) -> dict:
    return {
        "key": recipe.key,
        "title": recipe.title,
        "fixes": sorted(s.key for s in recipe.symptoms.all()),
        "applies_when": canonical_signature(recipe.applies_when or {}),
        "risk": recipe.risk,
        "needs": recipe.needs,
        "steps": [dict(s) if isinstance(s, dict) else s for s in recipe.steps],
        # "for" only where a snippet has it, so most entries stay {label, language, text}.
        "snippets": [{k: s.get(k, "") for k in SNIPPET_FIELDS if k != "for" or k in s} for s in recipe.snippets],
        "references": list(recipe.references),
    }


def _number(data, name, path, errors, *, low, high, default, whole):
    value = data.get(name, default)
    ok_type = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not low <= value <= high:
        errors.append(f"{path}.{name}: expected a {'whole ' if whole else ''}number from {low} to {high}")
        return default
    return value


def _text(data, name, path, errors, *, required, limit):
    value = data.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        errors.append(f"{path}.{name}: expected {'non-empty ' if required else ''}text of at most {limit} characters")
        return ""
    return value


def _key(data, path, errors) -> str:
    key = data.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        errors.append(f"{path}.key: expected a slug of lower-case letters, digits and dashes")
        return ""
    return key


def clean_symptom(data: Any, *, path: str = "symptom", symptom_keys: set[str] | None = None) -> tuple[dict, list[str]]:
    """Normalised symptom content and every problem found; defaults filled in.
    ``caused_by`` must name known symptoms when ``symptom_keys`` is given."""
    if not isinstance(data, dict):
        return {}, [f"{path}: expected a mapping"]
    errors = [f"{path}.{k}: unknown key" for k in sorted(set(data) - set(SYMPTOM_FIELDS), key=str)]
    clean = {
        "key": _key(data, path, errors),
        "title": _text(data, "title", path, errors, required=True, limit=200),
        "explanation": _text(data, "explanation", path, errors, required=False, limit=20000),
        "impact": _number(data, "impact", path, errors, low=1, high=5, default=3, whole=True),
        "likelihood": _number(data, "likelihood", path, errors, low=1, high=5, default=3, whole=True),
        "threshold": float(_number(data, "threshold", path, errors, low=0, high=1, default=0.6, whole=False)),
        "enabled": data.get("enabled", True),
        "caused_by": sorted(set(_text_list(data, "caused_by", path, errors))),
        "signature": canonical_signature(data.get("signature")),
    }
    if not isinstance(clean["enabled"], bool):
        errors.append(f"{path}.enabled: expected true or false")
    if clean["key"] and clean["key"] in clean["caused_by"]:
        errors.append(f"{path}.caused_by: a symptom cannot be its own cause")
    if symptom_keys is not None:
        errors.extend(f'{path}.caused_by: unknown symptom "{k}"' for k in clean["caused_by"] if k not in symptom_keys)
    errors.extend(f"{path}.{e}" for e in signature_errors(data.get("signature")))
    return clean, errors


def _text_list(data, name, path, errors) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        errors.append(f"{path}.{name}: expected a list of non-empty text")
        return []
    return value


def _steps(data, path, errors) -> list:
    """Steps: text, or {text, for: [software]} for a step only some hosts need; placeholders checked."""
    value = data.get("steps", [])
    if not isinstance(value, list):
        errors.append(f"{path}.steps: expected a list of steps (text, or {{text, for}})")
        return []
    steps: list = []
    for i, step in enumerate(value):
        spath = f"{path}.steps[{i}]"
        if isinstance(step, dict):
            errors.extend(f"{spath}.{k}: unknown key" for k in sorted(set(step) - set(STEP_FIELDS), key=str))
            text = step.get("text")
            if "for" not in step:
                errors.append(f"{spath}.for: required in a step written as a mapping (else write the text alone)")
            else:
                errors.extend(f"{spath}.for{e}" for e in software_errors(step["for"]))
            cleaned: str | dict = {"text": text, "for": list(step.get("for") or [])}
            tpath = f"{spath}.text"
        else:
            text, cleaned, tpath = step, step, spath
        if not isinstance(text, str) or not text.strip() or len(text) > 5000:
            errors.append(f"{tpath}: expected non-empty text of at most 5000 characters")
            continue
        errors.extend(f"{tpath}: {e}" for e in placeholder_errors(text))
        steps.append(cleaned)
    return steps


def clean_recipe(data: Any, *, path: str = "recipe", symptom_keys: set[str] | None = None) -> tuple[dict, list[str]]:
    """Normalised recipe content and every problem; ``fixes`` must name known symptoms."""
    if not isinstance(data, dict):
        return {}, [f"{path}: expected a mapping"]
    errors = [f"{path}.{k}: unknown key" for k in sorted(set(data) - set(RECIPE_FIELDS), key=str)]
    clean = {
        "key": _key(data, path, errors),
        "title": _text(data, "title", path, errors, required=True, limit=200),
        "fixes": sorted(set(_text_list(data, "fixes", path, errors))),
        "applies_when": canonical_signature(data.get("applies_when") or {}),
        "risk": data.get("risk", "low"),
        "needs": data.get("needs", "none"),
        "steps": _steps(data, path, errors),
        "snippets": [],
        "references": _text_list(data, "references", path, errors),
    }
    if clean["risk"] not in RISKS:
        errors.append(f"{path}.risk: expected one of {', '.join(RISKS)}")
    if clean["needs"] not in NEEDS:
        errors.append(f"{path}.needs: expected one of {', '.join(NEEDS)}")
    if not clean["steps"]:
        errors.append(f"{path}.steps: a recipe needs at least one step")
    if clean["applies_when"]:
        errors.extend(f"{path}.applies_when.{e}" for e in signature_errors(clean["applies_when"]))
    snippets = data.get("snippets", [])
    if not isinstance(snippets, list):
        errors.append(f"{path}.snippets: expected a list of {{label, language, text, for}}")
        snippets = []
    for i, snippet in enumerate(snippets):
        spath = f"{path}.snippets[{i}]"
        if not isinstance(snippet, dict):
            errors.append(f"{spath}: expected {{label, language, text, for}}")
            continue
        errors.extend(f"{spath}.{k}: unknown key" for k in sorted(set(snippet) - set(SNIPPET_FIELDS), key=str))
        cleaned = {
            "label": _text(snippet, "label", spath, errors, required=True, limit=200),
            "language": _text(snippet, "language", spath, errors, required=False, limit=40),
            "text": _text(snippet, "text", spath, errors, required=True, limit=20000),
        }
        for name in ("label", "text"):
            errors.extend(f"{spath}.{name}: {e}" for e in placeholder_errors(cleaned[name]))
        if "for" in snippet:
            errors.extend(f"{spath}.for{e}" for e in software_errors(snippet["for"]))
            cleaned["for"] = list(snippet["for"]) if isinstance(snippet["for"], list) else []
        clean["snippets"].append(cleaned)
    if symptom_keys is not None:
        for key in clean["fixes"]:
            if key not in symptom_keys:
                errors.append(f'{path}.fixes: unknown symptom "{key}"')
    return clean, errors


def _revise(*, kind: str, key: str, version: int, data: dict, by, note: str, now) -> None:
    KnowledgeRevision.objects.create(kind=kind, key=key, version=version, data=data, at=now, by=by, note=note[:300])


def _next_version(kind: str, key: str) -> int:
    # A key deleted and created again continues its history rather than clashing with it.
    top = KnowledgeRevision.objects.filter(kind=kind, key=key).aggregate(top=Max("version"))["top"]
    return (top or 0) + 1


def _save_versioned(
    model, *, kind: str, clean: dict, fields: dict, current: Callable[[Any], dict], by, note: str, now, linked=None
):
    """Create or update the row ``clean["key"]`` of a versioned model: bump its version and
    write a revision only when the content changed. ``current`` maps a row to its clean form;
    ``linked(row)`` sets relations after the save."""
    row = model.objects.filter(key=clean["key"]).first()
    if row is None:
        version = _next_version(kind, clean["key"])
        row = model.objects.create(**fields, version=version, updated_at=now, updated_by=by)
        outcome = "created"
    elif current(row) == clean:
        return row, "unchanged"
    else:
        for name, value in fields.items():
            setattr(row, name, value)
        row.version += 1
        row.updated_at, row.updated_by = now, by
        row.save()
        outcome = "updated"
    if linked is not None:
        linked(row)
    _revise(kind=kind, key=row.key, version=row.version, data=clean, by=by, note=note, now=now)
    return row, outcome


def _save_symptom(clean: dict, *, by, note: str, now) -> tuple[Symptom, str]:
    return _save_versioned(
        Symptom,
        kind=KnowledgeRevision.SYMPTOM,
        clean=clean,
        fields={k: v for k, v in clean.items() if k != "caused_by"},
        current=symptom_data,
        by=by,
        note=note,
        now=now,
        linked=lambda symptom: symptom.caused_by.set(Symptom.objects.filter(key__in=clean["caused_by"])),
    )


def _save_recipe(clean: dict, *, by, note: str, now) -> tuple[FixRecipe, str]:
    return _save_versioned(
        FixRecipe,
        kind=KnowledgeRevision.RECIPE,
        clean=clean,
        fields={k: v for k, v in clean.items() if k != "fixes"},
        current=recipe_data,
        by=by,
        note=note,
        now=now,
        linked=lambda recipe: recipe.symptoms.set(Symptom.objects.filter(key__in=clean["fixes"])),
    )


def symptom_save(*, data: dict, by, note: str = "") -> tuple[Symptom, str]:
    """Create or update the symptom ``data["key"]``; returns it and "created", "updated" or "unchanged"."""
    clean, errors = clean_symptom(data, symptom_keys=set(Symptom.objects.values_list("key", flat=True)))
    if errors:
        raise KnowledgeError(errors)
    with transaction.atomic():
        return _save_symptom(clean, by=by, note=note, now=timezone.now())


def recipe_save(*, data: dict, by, note: str = "") -> tuple[FixRecipe, str]:
    """Create or update the recipe ``data["key"]``; the symptoms it fixes must already exist."""
    clean, errors = clean_recipe(data, symptom_keys=set(Symptom.objects.values_list("key", flat=True)))
    if errors:
        raise KnowledgeError(errors)
    with transaction.atomic():
        return _save_recipe(clean, by=by, note=note, now=timezone.now())


@dataclass
class KbReport:
    changes: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def kb_validate(document: Any) -> tuple[list[dict], list[dict], list[str]]:
    """Clean every symptom and recipe of a knowledge-base document; all problems at once."""
    if not isinstance(document, dict):
        return [], [], ["file: expected a mapping with 'symptoms' and 'recipes' lists"]
    errors = [f"{k}: unknown section" for k in sorted(set(document) - {"symptoms", "recipes"}, key=str)]
    symptoms, recipes = [], []
    raw_symptoms = document.get("symptoms") or []
    raw_recipes = document.get("recipes") or []
    if not isinstance(raw_symptoms, list) or not isinstance(raw_recipes, list):
        return [], [], [*errors, "symptoms and recipes must be lists"]
    known = {d["key"] for d in raw_symptoms if isinstance(d, dict) and isinstance(d.get("key"), str)}
    known |= set(Symptom.objects.values_list("key", flat=True))
    for i, data in enumerate(raw_symptoms):
        label = data.get("key") if isinstance(data, dict) and isinstance(data.get("key"), str) else i
        clean, problems = clean_symptom(data, path=f"symptoms[{label}]", symptom_keys=known)
        errors.extend(problems)
        symptoms.append(clean)
    for i, data in enumerate(raw_recipes):
        label = data.get("key") if isinstance(data, dict) and isinstance(data.get("key"), str) else i
        clean, problems = clean_recipe(data, path=f"recipes[{label}]", symptom_keys=known)
        errors.extend(problems)
        recipes.append(clean)
    for kind, items in (("symptoms", symptoms), ("recipes", recipes)):
        keys = [key for item in items if (key := item.get("key"))]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        errors.extend(f'{kind}: key "{k}" appears more than once' for k in repeated)
    return symptoms, recipes, errors


def _causes_first(symptoms: list[dict]) -> list[dict]:
    """Symptoms ordered so that each one's causes in the document are saved before it, letting
    its caused_by links be set on its own save (a cycle keeps the rest in document order)."""
    pending = {s["key"]: s for s in symptoms}
    ordered: list[dict] = []
    while pending:
        ready = [s for s in pending.values() if not set(s["caused_by"]) & set(pending) - {s["key"]}]
        for s in ready or list(pending.values()):
            ordered.append(pending.pop(s["key"]))
    return ordered


def kb_apply(*, document: Any, by, note: str = "") -> KbReport:
    """Validate the whole document, then create/update everything in one transaction, or nothing."""
    symptoms, recipes, errors = kb_validate(document)
    if errors:
        raise KnowledgeError(errors)
    report = KbReport()
    now = timezone.now()
    with transaction.atomic():
        for kind, items, save in (
            ("symptom", _causes_first(symptoms), _save_symptom),
            ("recipe", recipes, _save_recipe),
        ):
            for clean in items:
                row, outcome = save(clean, by=by, note=note, now=now)
                if outcome == "unchanged":
                    report.unchanged += 1
                else:
                    report.changes.append(f"{outcome} {kind} {row.key} (version {row.version})")
    return report
