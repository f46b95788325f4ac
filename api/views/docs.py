"""The API's documentation page, rendered on the server from the OpenAPI schema (no CDN, no JS)."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _body_schema(content: dict) -> tuple[str, str]:
    """(media type, schema name or JSON) of the first content entry."""
    for media_type, entry in (content or {}).items():
        schema = entry.get("schema", {})
        if "$ref" in schema:
            return media_type, _ref_name(schema["$ref"])
        if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
            return media_type, f"list of {_ref_name(schema['items']['$ref'])}"
        return media_type, json.dumps(schema)
    return "", ""


def operations(schema: dict) -> list[dict]:
    ops = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            request_type, request_schema = _body_schema(op.get("requestBody", {}).get("content", {}))
            ops.append(
                {
                    "anchor": op.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": p.get("schema", {}).get("type", ""),
                            "enum": p.get("schema", {}).get("enum"),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "request_type": request_type,
                    "request_schema": request_schema,
                    "responses": [
                        {
                            "status": code,
                            "description": r.get("description", ""),
                            "schema": _body_schema(r.get("content", {}))[1],
                        }
                        for code, r in op.get("responses", {}).items()
                    ],
                }
            )
    return ops


def components(schema: dict) -> list[dict]:
    return [
        {"name": name, "json": json.dumps(value, indent=2)}
        for name, value in sorted(schema.get("components", {}).get("schemas", {}).items())
    ]


@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    context = {"info": schema["info"], "operations": operations(schema), "components": components(schema)}
    return render(request, "api/docs.html", context)
