"""Schemathesis against the schema the app serves: every operation, valid and invalid input,
as an admin with a desk full of data. No case may produce a server error (5xx)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from api.services import token_create
from diagnostics.models import CollectionRun, Evidence, Playbook, RunState
from diagnostics.services.sweeps import sweep_start
from triage import services

APP = WSGIHandler()
SCHEMA = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", APP)
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
# Per operation and generation mode (22 operations x 2 modes): each case is a whole request through the app.
MAX_EXAMPLES = 25


# Invalid input needs some input to spoil: operations without parameters or a body get valid cases only.
def _takes_input(label: str) -> bool:
    definition = OPERATIONS[label].definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


RUNS = [
    (label, mode)
    for label in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or _takes_input(label)
]
CASES: dict[str, int] = {}


@pytest.fixture
def wsgi_keeps_the_test_transaction():
    # Django closes the connection at the end of every request, which would end the test's
    # transaction; its own test client detaches the same handlers while it runs.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def desk(wsgi_keeps_the_test_transaction, settings, admin_user, tech, customer, server, ticket, kb):
    # The fuzzing must reach the views, not the rate limits (tested in test_api_throttling.py).
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "100000/minute", "token": "100000/minute"},
    }
    cache.clear()
    playbook = Playbook.objects.create(name="Host health", steps=[{"probe": "load", "params": {}}])
    run = CollectionRun.objects.create(
        ticket=ticket,
        server=server,
        playbook=playbook,
        playbook_name=playbook.name,
        steps=playbook.steps,
        state=RunState.SUCCEEDED,
        finished_at=timezone.now(),
    )
    Evidence.objects.create(run=run, step=0, probe="load", command="uptime", exit_status=0, output=b"up 1 day")
    services.ticket_add_note(ticket=ticket, author=tech, body="strace next")
    sweep_start(customer=customer, playbook=playbook, enqueue=False)  # GET sweeps/{id}/ has one to read
    return admin_user


def test_the_schema_covers_every_api_operation():
    assert len(OPERATIONS) >= 22
    assert all(op.definition.raw.get("responses") for op in OPERATIONS.values())


@pytest.mark.parametrize("label,mode", RUNS, ids=[f"{label}-{mode.value}" for label, mode in RUNS])
def test_no_input_makes_a_server_error(desk, label, mode):
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        # An operation without parameters or a body has one valid request: it is sent once.
        max_examples=MAX_EXAMPLES if _takes_input(label) else 1,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        # A fresh token each time: a generated DELETE /tokens/{id} may well revoke the previous one.
        _, key = token_create(user=desk, name="schemathesis")
        CASES[label] = CASES.get(label, 0) + 1
        case.call_and_validate(headers={"Authorization": f"Token {key}"}, checks=[not_a_server_error])

    run()
