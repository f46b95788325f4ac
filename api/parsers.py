"""The API's JSON parser: DRF's, with a bound on nesting.

Python's json module recurses once per level, so ~1,000 nested brackets (2 KB) raise
RecursionError, which DRF does not turn into a 400; and a few hundred levels that do parse
would recurse again in every serializer and renderer that walks them. No API body needs
more than a handful of levels.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32
TOO_DEEP = f"JSON nested too deeply (more than {MAX_DEPTH} levels of arrays or objects)."


def json_depth_exceeds(value, limit: int) -> bool:
    """True when `value` nests lists/dicts deeper than `limit`; iterative, so it cannot recurse."""
    stack = [(value, 1)]
    children: Iterable
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if json_depth_exceeds(data, MAX_DEPTH):
            raise ParseError(TOO_DEEP)
        return data
