"""Collections: start a run on a ticket's server, read runs, their evidence and what they matched."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import preconditions
from api import serializers as s
from api.views.common import validated
from diagnostics import selectors as runs
from diagnostics.models import CollectionRun, Playbook
from diagnostics.services import run_request
from triage import access
from triage import selectors as desk
from triage.models import Server


class PlaybookList(APIView):
    @extend_schema(summary="Playbooks a collection can run", responses={200: s.PlaybookSerializer(many=True)})
    def get(self, request: Request) -> Response:
        access.run_access(user=request.user, action="view")
        return Response(s.PlaybookSerializer(Playbook.objects.order_by("name"), many=True).data)


class TicketRuns(APIView):
    @extend_schema(summary="A ticket's collections, newest first", responses={200: s.RunSerializer(many=True)})
    def get(self, request: Request, ticket_id: int) -> Response:
        ticket = desk.ticket_detail(user=request.user, ticket_id=ticket_id)
        items = runs.ticket_runs(ticket=ticket, limit=100)
        return Response(s.RunSerializer(items, many=True, context={"request": request}).data)

    @extend_schema(
        summary="Start a collection",
        description="The run is queued and handed to a worker once committed; poll its URL until it is terminal. "
        "If-Match or `version` refuse it on a ticket that changed since you read it (412 or 409).",
        request=s.RunStartSerializer,
        parameters=[preconditions.IF_MATCH],
        responses={202: s.RunSerializer, **preconditions.CONFLICT_RESPONSES},
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        access.run_access(user=request.user, action="run")
        ticket = desk.ticket_detail(user=request.user, ticket_id=ticket_id)
        data = validated(s.RunStartSerializer, request.data)
        server = Server.objects.filter(pk=data["server"]).first()
        playbook = Playbook.objects.filter(pk=data["playbook"]).first()
        if server is None or playbook is None:
            missing = {"server": ["No such server."]} if server is None else {"playbook": ["No such playbook."]}
            raise serializers.ValidationError(missing)
        run = preconditions.change_checked(
            request,
            ticket=ticket,
            body_version=data.get("version"),
            change=lambda: run_request(ticket=ticket, server=server, playbook=playbook, by=request.user),
        )
        body = s.RunSerializer(run, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class RunDetail(APIView):
    @extend_schema(summary="A run with each step's state and evidence", responses={200: s.RunDetailSerializer})
    def get(self, request: Request, run_id: int) -> Response:
        run, steps = runs.run_detail(user=request.user, run_id=run_id)
        # Read by RunDetailOut (progress, steps); per-response attributes, not model fields.
        run.progress = runs.run_progress(steps)  # type: ignore[attr-defined]
        run.step_views = steps  # type: ignore[attr-defined]
        return Response(RunDetailOut(run, context={"request": request}).data)


class RunDetailOut(s.RunDetailSerializer):
    steps = s.StepSerializer(many=True, source="step_views")


class RunMatches(APIView):
    @extend_schema(
        summary="The symptoms a finished run matched and the fixes, ranked", responses={200: s.RunMatchesSerializer}
    )
    def get(self, request: Request, run_id: int) -> Response:
        access.run_access(user=request.user, action="view")
        run = CollectionRun.objects.select_related("server", "ticket").get(pk=run_id)
        body = {
            "run": run.pk,
            "terminal": run.is_terminal,
            "diagnosed": run.is_settled,
            "symptoms": runs.run_symptoms(run=run),
            "fixes": runs.run_fixes(run=run),
        }
        return Response(s.RunMatchesSerializer(body).data)


class EvidenceRaw(APIView):
    @extend_schema(
        summary="Download one step's raw output",
        responses={
            200: OpenApiResponse(OpenApiTypes.BINARY, description="text/plain, or a pcap for tcpdump"),
            410: OpenApiResponse(OpenApiTypes.STR, description="the output was pruned under the retention policy"),
        },
    )
    def get(self, request: Request, run_id: int, step: int) -> HttpResponse:
        evidence = runs.evidence_for_download(user=request.user, run_id=run_id, step=step)
        if evidence.output_pruned_at:
            return HttpResponse(evidence.pruned_notice, status=410, content_type="text/plain; charset=utf-8")
        extension = "pcap" if evidence.binary else "txt"
        content_type = "application/vnd.tcpdump.pcap" if evidence.binary else "text/plain; charset=utf-8"
        response = HttpResponse(bytes(evidence.output), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="run{run_id}-{step}-{evidence.probe}.{extension}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response
