"""Servers: everyone on staff reads them; admins add and change them (with the browser's form rules)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.views.common import page_body, validated
from triage import access, forms, selectors
from triage.models import Server
from triage.pagination import Key, paginate


def _save(request: Request, data: dict, instance: Server | None) -> Server:
    """Through the browser's ServerForm, so the API accepts exactly what the server page accepts."""
    form = forms.ServerForm(data={**data, "roles": ", ".join(data.get("roles", []))}, instance=instance)
    if not form.is_valid():
        raise serializers.ValidationError({field: [str(e) for e in errors] for field, errors in form.errors.items()})
    return form.save()


def _current(server: Server) -> dict:
    return {
        "customer": server.customer_id,
        "name": server.name,
        "address": server.address,
        "ssh_port": server.ssh_port,
        "ssh_user": server.ssh_user,
        "notes": server.notes,
        "roles": [role.name for role in server.roles.all()],
    }


class ServerList(APIView):
    @extend_schema(
        operation_id="servers_list",
        summary="Servers",
        parameters=[s.ServerQuerySerializer],
        responses={200: s.ServerPageSerializer},
    )
    def get(self, request: Request) -> Response:
        access.server_access(user=request.user, action="view")
        query = validated(s.ServerQuerySerializer, request.query_params)
        qs = Server.objects.select_related("customer").prefetch_related("roles")
        if "customer" in query:
            qs = qs.filter(customer_id=query["customer"])
        page = paginate(qs, keys=(Key("id"),), cursor=query.get("cursor"), size=query["page_size"])
        return Response(page_body(request, page, s.ServerSerializer))

    @extend_schema(
        summary="Add a server (admins)", request=s.ServerWriteSerializer, responses={201: s.ServerSerializer}
    )
    def post(self, request: Request) -> Response:
        access.server_access(user=request.user, action="manage")
        server = _save(request, validated(s.ServerWriteSerializer, request.data), None)
        server = selectors.server_detail(user=request.user, server_id=server.pk)
        return Response(s.ServerSerializer(server).data, status=status.HTTP_201_CREATED)


class ServerDetail(APIView):
    @extend_schema(summary="A server", responses={200: s.ServerSerializer})
    def get(self, request: Request, server_id: int) -> Response:
        return Response(s.ServerSerializer(selectors.server_detail(user=request.user, server_id=server_id)).data)

    @extend_schema(
        summary="Change a server (admins)",
        request=s.ServerWriteSerializer(partial=True),
        responses={200: s.ServerSerializer},
    )
    def patch(self, request: Request, server_id: int) -> Response:
        access.server_access(user=request.user, action="manage")
        server = selectors.server_detail(user=request.user, server_id=server_id)
        changes = validated(s.ServerWriteSerializer, request.data, partial=True)
        _save(request, {**_current(server), **changes}, server)
        return Response(s.ServerSerializer(selectors.server_detail(user=request.user, server_id=server_id)).data)
