"""The playbook editor's steps as rows: one form per step (a probe and its parameters) in a formset.

A row's parameter inputs are made from the chosen probe's own ``Param`` definitions (kind, bounds,
default, help) and a row is checked by those same parameters, so the editor keeps no second list of
probes or rules. Without JavaScript every row button (add, remove, up, down, show parameters) is a
submit button named ``edit``: the view re-renders what was typed, rearranged by :func:`edited`, and
saves nothing. ``static/js/playbook_steps.js`` does the same in place.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from diagnostics.playbooks import MAX_STEPS
from diagnostics.probes import KINDS, REGISTRY, Param, Probe, ProbeError

PREFIX = "steps"
PARAM = "param_"  # a parameter's field is PARAM + its name: steps-2-param_seconds


def _probe_choices() -> list[tuple[str, str]]:
    probes = sorted(REGISTRY.values(), key=lambda p: p.name)
    return [("", "Choose a probe…"), *((p.name, f"{p.name}: {p.title}") for p in probes)]


def param_field(param: Param) -> forms.Field:
    """The input for one probe parameter. Every value arrives as text and the probe's own ``Param.clean``
    judges it (see :meth:`StepForm.clean`), so the messages are the probe's, whatever the input."""
    kind = KINDS[param.kind]
    label = f"{param.name} (required)" if param.required else param.name
    attrs: dict[str, Any] = {"placeholder": "" if param.default is None else str(param.default)}
    if kind.integer:
        low, high = param.bounds or (0, 0)
        widget: forms.Widget = forms.NumberInput(attrs={**attrs, "min": low, "max": high, "step": 1})
    elif kind.choices:
        blank = f"default: {param.default}" if param.default is not None else "Choose…"
        widget = forms.Select(choices=[("", blank), *((c, c) for c in kind.choices)])
    else:
        widget = forms.TextInput(attrs={**attrs, "spellcheck": "false", "class": "mono"})
    return forms.CharField(label=label, required=False, max_length=2000, help_text=param.help, widget=widget)


def _typed(param: Param, text: str | None) -> Any:
    """A posted value as the parameter takes it: blank is "the default"; an integer kind gets an int when the
    text is one (otherwise the text, which the parameter refuses in its own words)."""
    if text in (None, ""):
        return None
    if KINDS[param.kind].integer:
        try:
            return int(text)
        except ValueError:
            return text
    return text


class StepForm(forms.Form):
    """One step: a probe, then that probe's parameters (the fields follow the chosen probe)."""

    probe = forms.ChoiceField(choices=_probe_choices, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        name = self.data.get(self.add_prefix("probe")) if self.is_bound else self.initial.get("probe")
        self.chosen: Probe | None = REGISTRY.get(name) if isinstance(name, str) else None
        if name and self.chosen is None:
            # A step naming no probe we have (one since removed, or a tampered post) stays visible and selected,
            # so saving can neither drop it silently nor keep it (clean_probe refuses it).
            cast(forms.ChoiceField, self.fields["probe"]).choices = [
                *_probe_choices(),
                (str(name), f"{name}: not a known probe"),
            ]
        for param in self.chosen.params if self.chosen else ():
            self.fields[PARAM + param.name] = param_field(param)

    def clean_probe(self) -> str:
        name = self.cleaned_data["probe"]
        if name and name not in REGISTRY:
            raise ValidationError(f"There is no probe called {name}: choose another, or remove this step.")
        return name

    @property
    def index(self) -> str:
        """This row's place in the formset (``__prefix__`` in the empty row that scripts copy)."""
        assert self.prefix is not None  # the formset gives every row one
        return self.prefix.rsplit("-", 1)[-1]

    @property
    def number(self) -> str:
        return str(int(self.index) + 1) if self.index.isdigit() else ""

    def param_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(PARAM)]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if self.chosen is None:
            return data  # a blank row (left out of the playbook), or an unknown probe (its field says so)
        raw = {}
        for param in self.chosen.params:
            raw[param.name] = value = _typed(param, data.get(PARAM + param.name))
            try:
                param.clean(value)
            except ProbeError as exc:
                self.add_error(PARAM + param.name, str(exc).removeprefix(f"{param.name}: "))
        if not self.errors:
            data["params"] = self.chosen.validate(raw)
        return data

    def step(self) -> dict[str, Any] | None:
        """The cleaned step, or None for a row with no probe chosen."""
        if self.chosen is None or "params" not in self.cleaned_data:
            return None
        return {"probe": self.chosen.name, "params": self.cleaned_data["params"]}

    def typed(self) -> dict[str, Any]:
        """What the row holds as typed (for re-rendering it, valid or not)."""
        row = {"probe": self["probe"].data or ""}
        row.update({field.name: field.data for field in self.param_fields()})
        return row


class BaseStepFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        steps = self.steps()
        if not steps:
            raise ValidationError("A playbook needs at least one step: choose a probe.")
        if len(steps) > MAX_STEPS:
            raise ValidationError(f"A playbook has at most {MAX_STEPS} steps; this one has {len(steps)}.")

    def steps(self) -> list[dict[str, Any]]:
        """The playbook's steps in row order; rows left without a probe are left out."""
        return [step for form in self.forms if (step := form.step()) is not None]

    def typed_rows(self) -> list[dict[str, Any]]:
        return [form.typed() for form in self.forms]


# The stubs type the factory's class as the BaseFormSet it derives from; it is a BaseStepFormSet.
StepFormSet = cast(
    type[BaseStepFormSet],
    forms.formset_factory(StepForm, formset=BaseStepFormSet, extra=0, max_num=MAX_STEPS, absolute_max=MAX_STEPS + 10),
)


def step_rows(data=None, *, initial: list[dict[str, Any]] | None = None) -> BaseStepFormSet:
    return StepFormSet(data, prefix=PREFIX, initial=initial)


def rows_for(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored steps as the rows' initial values (a new playbook starts with one blank row)."""
    if not steps:
        return [{"probe": ""}]
    return [{"probe": s.get("probe", ""), **{PARAM + k: v for k, v in (s.get("params") or {}).items()}} for s in steps]


def edited(rows: list[dict[str, Any]], edit: str) -> list[dict[str, Any]]:
    """The rows after one row button: ``add``, ``remove-N``, ``up-N``, ``down-N`` (N from 0); ``show`` (the
    chosen probes' parameters shown) and anything unknown leave them as they are."""
    rows = list(rows)
    action, _, index = edit.partition("-")
    if action == "add":
        return [*rows, {"probe": ""}] if len(rows) < MAX_STEPS else rows
    if not index.isdigit() or int(index) >= len(rows):
        return rows
    n = int(index)
    if action == "remove":
        del rows[n]
    elif action == "up" and n > 0:
        rows[n - 1], rows[n] = rows[n], rows[n - 1]
    elif action == "down" and n < len(rows) - 1:
        rows[n], rows[n + 1] = rows[n + 1], rows[n]
    return rows


def params_templates() -> list[tuple[Probe, StepForm]]:
    """Each probe with an empty row for it, whose parameter inputs the script copies into a row when that
    probe is chosen (named ``steps-__prefix__-…``, renumbered there)."""
    return [
        (probe, StepForm(prefix=f"{PREFIX}-__prefix__", initial={"probe": probe.name}))
        for probe in sorted(REGISTRY.values(), key=lambda p: p.name)
    ]


def described(steps: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Stored steps in words, for showing another admin's version beside yours."""
    out = []
    for step in steps:
        name = step.get("probe")
        probe = REGISTRY.get(name) if isinstance(name, str) else None
        params = ", ".join(f"{k}={v}" for k, v in (step.get("params") or {}).items() if v not in (None, ""))
        out.append({"probe": str(name), "title": probe.title if probe else "unknown probe", "params": params})
    return out
