"""Placeholders in a macro's body: ``{{customer}}``, ``{{ticket}}`` and the rest of KNOWN.

Bodies are written by admins and never go through Django's template engine: a body
is data, and rendering it as a template would let it reach whatever the context and
tags expose (template injection). Filling is one pass of a regular expression over
the body that swaps exactly the known names, so a filled-in value that itself looks
like a placeholder (a customer called "{{me}}") stays as it is. Anything else between
double braces is left as typed: visible to the tech, and reported to the admin on save.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Name -> what it becomes, for the admin's page; with why a ticket may have no value for it.
KNOWN: dict[str, str] = {
    "customer": "the customer's name",
    "ticket": "the ticket's reference, like #123",
    "requester": "who opened the ticket by mail (name, else address); only on tickets opened by mail",
    "top_fix": "the title of the ticket's top-ranked suggested fix; only once a fix is suggested",
    "me": "the name of the tech applying the macro",
}
MISSING_BECAUSE: dict[str, str] = {
    "requester": "this ticket was not opened by mail",
    "top_fix": "no fix is suggested on this ticket",
}

# Anything between double braces on one line; whether it is a known name is decided per match.
BRACES = re.compile(r"\{\{(.*?)\}\}")


def _name(inside: str) -> str:
    return inside.strip()


def token(name: str) -> str:
    return "{{" + name + "}}"


def unknown_in(body: str) -> list[str]:
    """The placeholders in ``body`` that are not known names, as typed, in order, once each."""
    return list(dict.fromkeys(m.group(0) for m in BRACES.finditer(body) if _name(m.group(1)) not in KNOWN))


@dataclass(frozen=True)
class Filled:
    text: str
    unfilled: list[str]  # known names this ticket has no value for: left in the text as typed


def fill(body: str, values: Mapping[str, str | None]) -> Filled:
    """``body`` with each known placeholder replaced by its value from ``values``.

    A known name whose value is None or empty, and every unknown placeholder, stays as typed.
    """
    unfilled: list[str] = []

    def swap(match: re.Match) -> str:
        name = _name(match.group(1))
        if name not in KNOWN:
            return match.group(0)
        value = values.get(name)
        if not value:
            unfilled.append(name)
            return match.group(0)
        return value

    text = BRACES.sub(swap, body)
    return Filled(text=text, unfilled=list(dict.fromkeys(unfilled)))
