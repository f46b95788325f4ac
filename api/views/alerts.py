"""The monitoring one-call: an alert files a ticket with its server and starts a collection."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.services import alert_receive
from api.views.common import validated
from triage import access


class Alerts(APIView):
    @extend_schema(
        summary="Open a ticket from a monitoring alert and request a collection",
        description=(
            "Anything that can POST JSON: the customer by name, the server by name or address. A repeated alert "
            "with the same dedupe_key while its ticket is open becomes a note on that ticket (200) instead of a "
            "new ticket (201)."
        ),
        request=s.AlertSerializer,
        responses={201: s.AlertResultSerializer, 200: s.AlertResultSerializer},
    )
    def post(self, request: Request) -> Response:
        access.ticket_access(user=request.user, action="work")
        access.run_access(user=request.user, action="run")
        data = validated(s.AlertSerializer, request.data)
        outcome = alert_receive(
            by=request.user,
            customer=data["customer"],
            server=data["server"],
            subject=data["subject"],
            description=data["description"],
            priority=int(data["priority"]),
            playbook=data.get("playbook") or None,
            dedupe_key=data.get("dedupe_key", "").strip(),
        )
        body = s.AlertResultSerializer(
            {
                "ticket": outcome.ticket,
                "run": outcome.run,
                "repeated": outcome.repeated,
                "collection_error": outcome.collection_error,
            },
            context={"request": request},
        ).data
        return Response(body, status=status.HTTP_200_OK if outcome.repeated else status.HTTP_201_CREATED)
