"""Keyset (cursor) pagination: pages cost the same on the first page and the
ten-thousandth, and no page needs a COUNT over the whole table.

An ordering is a tuple of keys; the last must be unique (the primary key) so
the order is total. Nullable keys sort their NULLs last in both directions
of travel, matching the indexes the queue uses.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Q, QuerySet


@dataclass(frozen=True)
class Key:
    field: str
    descending: bool = False
    nullable: bool = False

    def order_by(self, *, reverse: bool):
        descending = self.descending != reverse
        expression = F(self.field)
        # NULLs stay last when reading forwards, so they come first when reading backwards.
        nulls = ({"nulls_first": True} if reverse else {"nulls_last": True}) if self.nullable else {}
        return expression.desc(**nulls) if descending else expression.asc(**nulls)


@dataclass
class Page:
    items: list
    next_cursor: str | None
    prev_cursor: str | None


class BadCursor(ValueError):
    pass


def _encode(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, keys: tuple[Key, ...]) -> tuple[str, list[Any]]:
    try:
        direction, token = cursor.split(".", 1)
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadCursor("malformed cursor") from exc
    if direction not in ("n", "p") or not isinstance(raw, list) or len(raw) != len(keys):
        raise BadCursor("malformed cursor")
    return direction, raw


def _after(keys: tuple[Key, ...], values: list[Any], *, reverse: bool) -> Q:
    """Rows strictly after `values` in the (possibly reversed) ordering."""
    condition = Q(pk__in=[])  # false
    equal_so_far = Q()
    for key, value in zip(keys, values, strict=True):
        descending = key.descending != reverse
        nulls_after = not reverse  # NULLs sort last going forward, first going backward
        if value is None:
            # Only other NULLs can tie; nothing non-NULL comes after a NULL going forward.
            beyond = Q(pk__in=[]) if nulls_after else Q(**{f"{key.field}__isnull": False})
            tie = Q(**{f"{key.field}__isnull": True})
        else:
            lookup = "lt" if descending else "gt"
            beyond = Q(**{f"{key.field}__{lookup}": value})
            if key.nullable and nulls_after:
                beyond |= Q(**{f"{key.field}__isnull": True})
            tie = Q(**{key.field: value})
        condition |= equal_so_far & beyond
        equal_so_far &= tie
    return condition


def paginate(queryset: QuerySet, *, keys: tuple[Key, ...], cursor: str | None, size: int) -> Page:
    direction, values = ("n", None) if not cursor else _decode(cursor, keys)
    reverse = direction == "p"
    qs = queryset.order_by(*[k.order_by(reverse=reverse) for k in keys])
    if values is not None:
        qs = qs.filter(_after(keys, values, reverse=reverse))
    rows = list(qs[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if reverse:
        rows.reverse()

    def cursor_of(row, prefix: str) -> str:
        return f"{prefix}.{_encode([_value(row, k.field) for k in keys])}"

    has_next = more if not reverse else True
    has_prev = (values is not None) if not reverse else more
    return Page(
        items=rows,
        next_cursor=cursor_of(rows[-1], "n") if rows and has_next else None,
        prev_cursor=cursor_of(rows[0], "p") if rows and has_prev else None,
    )


def _value(row, field: str):
    value = row
    for part in field.split("__"):
        value = getattr(value, part)
    return value
