"""The knowledge base as YAML, for review in git: a stable dump and a safe load.

Export order is fixed (symptoms then recipes, each by key; fields in a set order;
multi-line text as literal blocks) so that export -> load -> export is byte-identical
and a change shows up as a small diff. Versions and audit fields stay in the
database: the file is the content, the revisions are the history.
"""

from __future__ import annotations

from typing import Any

import yaml

from diagnostics.knowledge.services import recipe_data, symptom_data
from diagnostics.models import FixRecipe, Symptom

HEADER = "# The triage desk's knowledge base: load with `manage.py load_kb`, export with `manage.py export_kb`.\n"


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


# Optional fields left out of the file when empty, so most entries stay short.
_OPTIONAL: dict[str, Any] = {"caused_by": [], "applies_when": {}}


def _without_empty_optionals(data: dict) -> dict:
    return {k: v for k, v in data.items() if not (k in _OPTIONAL and v == _OPTIONAL[k])}


def kb_document() -> dict:
    symptoms = Symptom.objects.prefetch_related("caused_by").order_by("key")
    recipes = FixRecipe.objects.prefetch_related("symptoms").order_by("key")
    return {
        "symptoms": [_without_empty_optionals(symptom_data(s)) for s in symptoms],
        "recipes": [_without_empty_optionals(recipe_data(r)) for r in recipes],
    }


def dump_yaml(value: Any) -> str:
    """``value`` as reviewable YAML: keys in the given order, multi-line text as literal blocks."""
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2)


def dump_kb() -> str:
    return HEADER + dump_yaml(kb_document())


def parse_kb(text: str) -> tuple[Any, list[str]]:
    """The YAML document (safe loader: data only) or the parse error."""
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        return None, [f"file: not valid YAML: {exc}"]
