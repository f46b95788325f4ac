from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request

from triage.pagination import Page


def validated(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def page_body(request: Request, page: Page, item_serializer: type[serializers.Serializer]) -> dict:
    """A keyset page with links that carry the same filters and the next or previous cursor."""

    def link(cursor: str | None) -> str | None:
        if cursor is None:
            return None
        params = request.query_params.copy()
        params["cursor"] = cursor
        return request.build_absolute_uri(request.path + "?" + params.urlencode())

    return {
        "results": item_serializer(page.items, many=True, context={"request": request}).data,
        "next": link(page.next_cursor),
        "previous": link(page.prev_cursor),
        "next_cursor": page.next_cursor,
        "previous_cursor": page.prev_cursor,
    }
