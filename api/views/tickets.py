"""Tickets: the queue (the browser's filters, keyset pages), filing, changing and commenting."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import preconditions
from api import serializers as s
from api.views.common import page_body, validated
from triage import access, merging, selectors, services


def _detail(request: Request, ticket_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
    """The ticket with its timeline, and its version as the ETag to send back with a change."""
    ticket = selectors.ticket_detail(user=request.user, ticket_id=ticket_id)
    # Read by TicketDetailSerializer's timeline field; a per-response attribute, not a model field.
    ticket.timeline = selectors.ticket_timeline(ticket=ticket)  # type: ignore[attr-defined]
    body = s.TicketDetailSerializer(ticket, context={"request": request}).data
    return Response(body, status=status_code, headers={"ETag": preconditions.etag(ticket)})


class TicketList(APIView):
    @extend_schema(
        operation_id="tickets_list",
        summary="The queue",
        parameters=[s.QueueQuerySerializer],
        responses={200: s.TicketPageSerializer},
    )
    def get(self, request: Request) -> Response:
        access.ticket_access(user=request.user, action="view")
        query = s.QueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        size = query.validated_data["page_size"]
        page = selectors.ticket_queue(user=request.user, filters=query.filters(), size=size)
        return Response(page_body(request, page, s.TicketSummarySerializer))

    @extend_schema(summary="File a ticket", request=s.TicketCreateSerializer, responses={201: s.TicketDetailSerializer})
    def post(self, request: Request) -> Response:
        access.ticket_access(user=request.user, action="work")
        data = validated(s.TicketCreateSerializer, request.data)
        ticket = services.ticket_create(
            subject=data["subject"],
            description=data["description"],
            customer=data["customer"],
            priority=int(data["priority"]),
            servers=data.get("servers", []),
            tag_names=data.get("tags", []),
            created_by=request.user,
            assignee=data.get("assignee"),
            requester=data.get("requester"),
            ccs=data.get("ccs", []),
        )
        return _detail(request, ticket.pk, status_code=status.HTTP_201_CREATED)


class TicketDetail(APIView):
    @extend_schema(
        summary="A ticket with its timeline", responses={200: s.TicketDetailSerializer}, parameters=[preconditions.ETAG]
    )
    def get(self, request: Request, ticket_id: int) -> Response:
        return _detail(request, ticket_id)

    @extend_schema(
        summary="Change status, priority, assignee, tags, servers, requester or CCs",
        description="All the changes are made or none; a refused status change is a 400. Send the version "
        "you read (If-Match, or `version` in the body) to have the change refused if the ticket "
        "changed meanwhile (412, or 409 for the body's): without either, it is applied.",
        request=s.TicketUpdateSerializer,
        parameters=[preconditions.IF_MATCH, preconditions.ETAG],
        responses={200: s.TicketDetailSerializer, **preconditions.CONFLICT_RESPONSES},
    )
    def patch(self, request: Request, ticket_id: int) -> Response:
        access.ticket_access(user=request.user, action="work")
        ticket = selectors.ticket_detail(user=request.user, ticket_id=ticket_id)
        data = validated(s.TicketUpdateSerializer, request.data)
        by = request.user

        def change() -> None:
            if "servers" in data:
                services.ticket_set_servers(ticket=ticket, servers=data["servers"], by=by)
            if "requester" in data or "ccs" in data:
                services.ticket_set_people(
                    ticket=ticket,
                    requester=data.get("requester", ticket.requester),
                    ccs=data["ccs"] if "ccs" in data else ticket.ccs.all(),
                    by=by,
                )
            if "tags" in data:
                services.ticket_set_tags(ticket=ticket, tag_names=data["tags"], by=by)
            if "priority" in data:
                services.ticket_change_priority(ticket=ticket, priority=int(data["priority"]), by=by)
            if "assignee" in data:
                services.ticket_assign(ticket=ticket, assignee=data["assignee"], by=by)
            if "status" in data:
                services.ticket_change_status(ticket=ticket, status=data["status"], by=by, note=data.get("note", ""))

        preconditions.change_checked(request, ticket=ticket, body_version=data.get("version"), change=change)
        return _detail(request, ticket.pk)


class TicketComments(APIView):
    @extend_schema(
        summary="Reply to the customer, or add an internal note",
        description="The entry's `version` is the ticket's new version. If-Match or `version` refuse a comment "
        "on a ticket that changed since you read it, as for a change (412 or 409).",
        request=s.CommentSerializer,
        parameters=[preconditions.IF_MATCH],
        responses={201: s.EventSerializer, **preconditions.CONFLICT_RESPONSES},
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        access.ticket_access(user=request.user, action="work")
        ticket = selectors.ticket_detail(user=request.user, ticket_id=ticket_id)
        data = validated(s.CommentSerializer, request.data)
        write = services.ticket_add_note if data["internal"] else services.ticket_reply
        event = preconditions.change_checked(
            request,
            ticket=ticket,
            body_version=data.get("version"),
            change=lambda: write(ticket=ticket, author=request.user, body=data["body"]),
        )
        return Response(s.EventSerializer(event).data, status=status.HTTP_201_CREATED)


class TicketMerge(APIView):
    @extend_schema(
        summary="Merge this ticket into another",
        description="Same customer only; this ticket is closed and points at the survivor, whose timeline, "
        "evidence, servers and tags then include it. A refusal is a 400 saying why.",
        request=s.MergeSerializer,
        responses={200: s.TicketDetailSerializer},
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        access.ticket_access(user=request.user, action="work")
        ticket = selectors.ticket_detail(user=request.user, ticket_id=ticket_id)
        data = validated(s.MergeSerializer, request.data)
        survivor = merging.tickets_merge(sources=[ticket], into=data["into"], by=request.user)
        return _detail(request, survivor.pk)  # a Response already (with the survivor's ETag)
