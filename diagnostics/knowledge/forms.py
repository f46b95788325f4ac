"""Forms for curating symptoms and recipes, and for a tech accepting a suggested fix.

They turn text areas into data (YAML through the safe loader: data only) and nothing else;
the knowledge services decide what is valid and say where (``signature.any[1].regex: ...``).
"""

from __future__ import annotations

from typing import Any, cast

import yaml
from django import forms
from django.core.exceptions import ValidationError

from diagnostics.knowledge.curation import yaml_text
from diagnostics.knowledge.services import NEEDS, RISKS, recipe_data, symptom_data
from diagnostics.models import FixRecipe, Symptom
from triage.line_endings import lf_line_endings

YAML_AREA = {"class": "mono", "spellcheck": "false", "autocomplete": "off"}


def parse_yaml(text: str) -> Any:
    """The data in ``text`` or a clear error; the safe loader builds plain data only (no objects)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"Not valid YAML: {exc}") from None


class YamlField(forms.CharField):
    """A text area of YAML; cleans to the data it holds. The typed text is what re-renders."""

    widget = forms.Textarea(attrs={"rows": 14, **YAML_AREA})

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100_000)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        return parse_yaml(text) if text.strip() else None


class _KnowledgeForm(forms.Form):
    """What symptom and recipe forms share: a key fixed once created, a change note, and
    placing the knowledge services' errors beside the field they are about."""

    kind = ""
    model: type[Symptom] | type[FixRecipe] = Symptom

    key = forms.SlugField(max_length=80, help_text="Lower-case letters, digits and dashes; fixed once created.")
    note = forms.CharField(max_length=300, required=False, label="Change note", help_text="Why this change.")
    # The version the editor started from: a save over a newer one is a conflict, shown, not applied.
    base_version = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data=None, *args, entry=None, **kwargs):
        self.entry = entry
        # Browsers send text areas with CRLF line endings: stored as typed, every line of a version's diff
        # would change and export_kb would write "\r\n" into the YAML.
        super().__init__(lf_line_endings(data), *args, **kwargs)
        if entry is not None:
            self.fields["key"].disabled = True
            self.fields["base_version"].initial = entry.version

    def stale(self) -> bool:
        """Whether the entry was saved by someone else since this editor opened it."""
        base = self.cleaned_data.get("base_version")
        return self.entry is not None and base is not None and base != self.entry.version

    def clean_key(self):
        key = self.cleaned_data["key"]
        if self.entry is None and self.model.objects.filter(key=key).exists():
            raise ValidationError(f"A {self.kind} with this key already exists; edit it instead.")
        return key

    def add_knowledge_errors(self, errors: list[str]) -> None:
        """``symptom.signature.any[1].regex: ...`` goes beside the signature field, as
        ``signature.any[1].regex: ...``; what belongs to no field goes above the form."""
        for error in errors:
            text = error.removeprefix(f"{self.kind}.")
            name = text.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
            self.add_error(name if name in self.fields else None, text)


class SymptomForm(_KnowledgeForm):
    kind = "symptom"
    model = Symptom

    title = forms.CharField(max_length=200)
    explanation = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False, max_length=20_000)
    impact = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(1, 6)], coerce=int, initial=3)
    likelihood = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(1, 6)], coerce=int, initial=3)
    threshold = forms.FloatField(min_value=0, max_value=1, initial=0.6, help_text="Score (0-1) a run must reach.")
    enabled = forms.BooleanField(required=False, initial=True)
    caused_by = forms.ModelMultipleChoiceField(
        queryset=Symptom.objects.none(), to_field_name="key", required=False, help_text="Root causes of this symptom."
    )
    signature = YamlField(help_text="YAML: all/any/not of regex leaves (probe, regex) and facts leaves (facts, where).")
    field_order = [
        "key", "title", "explanation", "impact", "likelihood", "threshold", "enabled", "caused_by", "signature", "note"
    ]  # fmt: skip

    def __init__(self, *args, entry: Symptom | None = None, **kwargs):
        if entry is not None and "initial" not in kwargs:
            data = symptom_data(entry)
            kwargs["initial"] = {**data, "signature": yaml_text(data["signature"])}
        super().__init__(*args, entry=entry, **kwargs)
        others = Symptom.objects.order_by("title")
        cast(forms.ModelChoiceField, self.fields["caused_by"]).queryset = (
            others.exclude(pk=entry.pk) if entry is not None else others
        )

    def knowledge_data(self) -> dict:
        data = self.cleaned_data
        return {
            "key": self.entry.key if self.entry is not None else data["key"],
            "title": data["title"],
            "explanation": data["explanation"],
            "impact": data["impact"],
            "likelihood": data["likelihood"],
            "threshold": data["threshold"],
            "enabled": data["enabled"],
            "caused_by": [s.key for s in data["caused_by"]],
            "signature": data["signature"],
        }


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class RecipeForm(_KnowledgeForm):
    kind = "recipe"
    model = FixRecipe

    title = forms.CharField(max_length=200)
    fixes = forms.ModelMultipleChoiceField(queryset=Symptom.objects.none(), to_field_name="key", required=False)
    applies_when = YamlField(
        required=False, help_text="Optional signature: the host this recipe fits (empty: general advice)."
    )
    risk = forms.ChoiceField(choices=[(r, r.title()) for r in RISKS], initial="low")
    needs = forms.ChoiceField(choices=[(n, dict(FixRecipe.NEEDS)[n]) for n in NEEDS], initial="none")
    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        max_length=50_000,
        strip=False,
        help_text="One step per line, or a YAML list (- ...) for steps spanning lines or only for some software "
        "(- {text: ..., for: [sendmail]}). Placeholders filled from the host: {interface}, {process}, {pid}, "
        "{service}, {config_path}, {peer}, {mountpoint}, {measured:wait_seconds}, {setting:NAME}.",
    )
    snippets = YamlField(
        required=False,
        help_text="YAML list of {label, language, text, for}; for (optional) lists the software it is for "
        "([nginx]), so hosts that do not run it show it folded away. Placeholders as in the steps.",
    )
    references = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=20_000, help_text="One per line."
    )
    field_order = [
        "key", "title", "fixes", "applies_when", "risk", "needs", "steps", "snippets", "references", "note"
    ]  # fmt: skip

    def __init__(self, *args, entry: FixRecipe | None = None, **kwargs):
        if entry is not None and "initial" not in kwargs:
            data = recipe_data(entry)
            # A step over several lines, or one only for some software ({text, for}), needs the YAML list.
            multiline = any(not isinstance(step, str) or "\n" in step for step in data["steps"])
            kwargs["initial"] = {
                **data,
                "applies_when": yaml_text(data["applies_when"]),
                "steps": yaml_text(data["steps"]) if multiline else "\n".join(data["steps"]),
                "snippets": yaml_text(data["snippets"]),
                "references": "\n".join(data["references"]),
            }
        super().__init__(*args, entry=entry, **kwargs)
        cast(forms.ModelChoiceField, self.fields["fixes"]).queryset = Symptom.objects.order_by("title")

    def clean_steps(self):
        text = self.cleaned_data["steps"]
        if text.lstrip().startswith("- "):
            steps = parse_yaml(text)
            if not isinstance(steps, list):
                raise ValidationError("Expected a YAML list of steps.")
            return steps
        return _lines(text)

    def knowledge_data(self) -> dict:
        data = self.cleaned_data
        return {
            "key": self.entry.key if self.entry is not None else data["key"],
            "title": data["title"],
            "fixes": [s.key for s in data["fixes"]],
            "applies_when": data["applies_when"] or {},
            "risk": data["risk"],
            "needs": data["needs"],
            "steps": data["steps"],
            "snippets": data["snippets"] if data["snippets"] is not None else [],
            "references": _lines(data["references"]),
        }


class PreviewForm(forms.Form):
    """A draft signature to try on stored runs; the threshold only for symptoms."""

    signature = YamlField()
    threshold = forms.FloatField(min_value=0, max_value=1, required=False)


class AcceptFixForm(forms.Form):
    """A tech is applying one of the fixes suggested on the ticket."""

    recipe = forms.ModelChoiceField(queryset=FixRecipe.objects.none())

    def __init__(self, *args, recipes, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["recipe"]).queryset = recipes


class RejectFixForm(forms.Form):
    """A tech says one of the suggested fixes does not apply to this ticket, optionally why."""

    recipe = forms.ModelChoiceField(queryset=FixRecipe.objects.none())
    reason = forms.CharField(max_length=500, required=False, strip=True)

    def __init__(self, *args, recipes, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["recipe"]).queryset = recipes


class SettlePossibleForm(forms.Form):
    """A tech asks for the probes that would confirm or rule out a possible symptom on a server."""

    symptom = forms.SlugField(max_length=80)
    server = forms.IntegerField(min_value=1)
