"""Fleet sweeps: run a playbook across a customer's servers and read the results by symptom."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.views.common import validated
from diagnostics import sweep_selectors
from diagnostics.models import Playbook, Sweep
from diagnostics.services import sweeps
from triage import access
from triage.models import Customer, ServerRole


class CustomerSweeps(APIView):
    @extend_schema(
        summary="Sweep a customer's servers",
        description="One run of the playbook per server (or per server with the role), each queued for a worker "
        "once committed; poll the sweep's URL until `finished`.",
        request=s.SweepStartSerializer,
        responses={201: s.SweepSerializer},
    )
    def post(self, request: Request, customer_id: int) -> Response:
        access.run_access(user=request.user, action="run")
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise NotFound("No such customer.")
        data = validated(s.SweepStartSerializer, request.data)
        playbook = Playbook.objects.filter(pk=data["playbook"]).first()
        if playbook is None:
            raise serializers.ValidationError({"playbook": ["No such playbook."]})
        role = None
        if data["role"]:
            role = ServerRole.objects.filter(name=data["role"]).first()
            if role is None:
                raise serializers.ValidationError({"role": ["No such role."]})
        # A refusal (disabled playbook, no server with the role) is a 400 naming the field (api/errors.py).
        sweep = sweeps.sweep_start(
            customer=customer, playbook=playbook, role=role, by=request.user, open_tickets=data["open_tickets"]
        )
        body = s.SweepSerializer(sweep_selectors.sweep_results(sweep=sweep), context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


class SweepDetail(APIView):
    @extend_schema(
        summary="A sweep: each host's state, and what it found grouped by symptom", responses={200: s.SweepSerializer}
    )
    def get(self, request: Request, sweep_id: int) -> Response:
        try:
            sweep = sweep_selectors.sweep_detail(user=request.user, sweep_id=sweep_id)
        except Sweep.DoesNotExist:
            raise NotFound("No such sweep.") from None
        results = sweep_selectors.sweep_results(sweep=sweep)
        return Response(s.SweepSerializer(results, context={"request": request}).data)
