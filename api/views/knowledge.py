"""The knowledge base as YAML: export for review, import validated all-or-nothing."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.views.common import validated
from diagnostics import tasks
from diagnostics.knowledge import services as knowledge
from diagnostics.knowledge.yaml_io import dump_kb, parse_kb
from triage import access


class KbExport(APIView):
    @extend_schema(
        summary="Export the knowledge base as YAML",
        responses={(200, "application/yaml"): OpenApiResponse(OpenApiTypes.STR)},
    )
    def get(self, request: Request) -> HttpResponse:
        access.knowledge_access(user=request.user, action="view")
        response = HttpResponse(dump_kb(), content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="knowledge-base.yaml"'
        return response


class KbImport(APIView):
    @extend_schema(
        summary="Import symptoms and recipes from YAML (admins)",
        description="Everything is validated first; any problem refuses the whole document with every error listed.",
        request=s.KbImportSerializer,
        responses={200: s.KbImportResultSerializer, 400: s.KbErrorsSerializer},
    )
    def post(self, request: Request) -> Response:
        access.knowledge_access(user=request.user, action="edit")
        data = validated(s.KbImportSerializer, request.data)
        document, errors = parse_kb(data["yaml"])
        if errors:
            raise serializers.ValidationError({"errors": errors})
        report = knowledge.kb_apply(document=document, by=request.user, note=data["note"] or "API import")
        if report.changed:
            # Open tickets show fixes from the knowledge base as it is now: match them again, off the request.
            transaction.on_commit(tasks.rematch_open_tickets.delay)
        return Response({"changes": report.changes, "unchanged": report.unchanged})
