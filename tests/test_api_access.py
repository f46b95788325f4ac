"""The API's role matrix: every API route, every role, the expected status.

The browser's matrix (tests/test_access.py) leaves the `api` namespace to this one;
a new API route without a row here fails `test_every_api_route_is_in_the_matrix`.
"""

from __future__ import annotations

import pytest
from django.urls import get_resolver, reverse
from rest_framework.test import APIClient

from api.services import token_create
from diagnostics.knowledge import services as knowledge
from diagnostics.models import CollectionRun, Evidence, Playbook
from diagnostics.services.sweeps import sweep_start
from triage import services as desk

ANON, TECH, ADMIN, MANAGER, OUTSIDER = "anonymous", "tech", "admin", "manager", "outsider"


def staff(code: int) -> dict:
    return {ANON: 401, TECH: code, ADMIN: code, MANAGER: code, OUTSIDER: 403}


def workers(code: int) -> dict:
    return {ANON: 401, TECH: code, ADMIN: code, MANAGER: 403, OUTSIDER: 403}


def admins(code: int) -> dict:
    return {ANON: 401, TECH: 403, ADMIN: code, MANAGER: 403, OUTSIDER: 403}


READERS = staff(200)
EVERYONE = {ANON: 200, TECH: 200, ADMIN: 200, MANAGER: 200, OUTSIDER: 200}

# (url name, kwargs from the scene, method, body (a function of the scene's objects), expected status per role)
MATRIX = [
    (
        "token_login",
        {},
        "post",
        lambda o: {"username": "nobody", "password": "wrong"},
        {ANON: 400, TECH: 400, ADMIN: 400, MANAGER: 400, OUTSIDER: 400},
    ),  # open to all; these credentials are wrong
    ("tokens", {}, "get", None, READERS),
    ("tokens", {}, "post", lambda o: {"name": "ci"}, staff(201)),
    ("token", {"token_id": "own_token"}, "delete", None, staff(204)),
    ("tickets", {}, "get", None, READERS),
    (
        "tickets",
        {},
        "post",
        lambda o: {"customer": o["customer"].pk, "subject": "Disk full", "description": "df"},
        workers(201),
    ),
    ("ticket", {"ticket_id": "ticket"}, "get", None, READERS),
    ("ticket", {"ticket_id": "ticket"}, "patch", lambda o: {"priority": 1}, workers(200)),
    ("ticket_comments", {"ticket_id": "ticket"}, "post", lambda o: {"body": "On it."}, workers(201)),
    ("ticket_merge", {"ticket_id": "duplicate"}, "post", lambda o: {"into": o["ticket"].pk}, workers(200)),
    ("ticket_runs", {"ticket_id": "ticket"}, "get", None, READERS),
    (
        "ticket_runs",
        {"ticket_id": "ticket"},
        "post",
        lambda o: {"server": o["server"].pk, "playbook": o["playbook"].pk},
        workers(202),
    ),
    ("servers", {}, "get", None, READERS),
    (
        "servers",
        {},
        "post",
        lambda o: {"customer": o["customer"].pk, "name": "web9", "address": "web9.example.com"},
        admins(201),
    ),
    ("server", {"server_id": "server"}, "get", None, READERS),
    ("server", {"server_id": "server"}, "patch", lambda o: {"notes": "Behind the firewall."}, admins(200)),
    ("playbooks", {}, "get", None, READERS),
    ("run", {"run_id": "run"}, "get", None, READERS),
    ("run_matches", {"run_id": "run"}, "get", None, READERS),
    ("evidence_raw", {"run_id": "run", "step": "step"}, "get", None, READERS),
    ("customer_sweeps", {"customer_id": "customer"}, "post", lambda o: {"playbook": o["playbook"].pk}, workers(201)),
    ("sweep", {"sweep_id": "sweep"}, "get", None, READERS),
    ("kb_export", {}, "get", None, READERS),
    ("kb_import", {}, "post", lambda o: {"yaml": "symptoms: []\nrecipes: []\n"}, admins(200)),
    (
        "alerts",
        {},
        "post",
        lambda o: {"customer": o["customer"].name, "server": "mx1", "subject": "Load high", "description": "load 40"},
        workers(201),
    ),
    ("schema", {}, "get", None, EVERYONE),
    ("docs", {}, "get", None, EVERYONE),
]


def _api_names(patterns, namespace: str = "") -> set[str]:
    names = set()
    for p in patterns:
        if hasattr(p, "url_patterns"):
            names |= _api_names(p.url_patterns, p.namespace or namespace)
        elif p.name and namespace == "api":
            names.add(p.name)
    return names


def test_every_api_route_is_in_the_matrix():
    assert _api_names(get_resolver().url_patterns) == {row[0] for row in MATRIX}


class _Step:
    pk = 0


@pytest.fixture
def scene(tech, admin_user, manager, outsider, customer, server, ticket):
    playbook = Playbook.objects.create(name="Host health", steps=[{"probe": "load", "params": {}}])
    run = CollectionRun.objects.create(
        ticket=ticket,
        server=server,
        playbook=playbook,
        playbook_name=playbook.name,
        steps=playbook.steps,
        state="succeeded",
    )
    Evidence.objects.create(run=run, step=0, probe="load", command="uptime", exit_status=0, output=b"up 1 day")
    knowledge.symptom_save(
        data={"key": "slow-host", "title": "Slow host", "signature": {"probe": "load", "regex": "up"}}, by=admin_user
    )
    sweep = sweep_start(customer=customer, playbook=playbook, enqueue=False)
    users = {TECH: tech, ADMIN: admin_user, MANAGER: manager, OUTSIDER: outsider}
    tokens = {role: token_create(user=user, name="matrix") for role, user in users.items()}
    return {
        "users": users,
        "tokens": tokens,
        "objects": {
            "ticket": ticket,
            "customer": customer,
            "server": server,
            "run": run,
            "step": _Step(),
            "duplicate": desk.ticket_create(subject="Same again", description="Dup.", customer=customer),
            "playbook": playbook,
            "sweep": sweep,
        },
    }


@pytest.fixture(autouse=True)
def _fresh_throttles():
    from django.core.cache import cache

    cache.clear()


@pytest.mark.parametrize("role", [ANON, TECH, ADMIN, MANAGER, OUTSIDER])
@pytest.mark.parametrize("name,kwargs,method,body,expected", MATRIX, ids=[f"{row[2]}-{row[0]}" for row in MATRIX])
def test_each_role_gets_the_expected_api_status(scene, role, name, kwargs, method, body, expected):
    client = APIClient()
    if role != ANON:
        client.credentials(HTTP_AUTHORIZATION=f"Token {scene['tokens'][role][1]}")
    objects = dict(scene["objects"])
    objects["own_token"] = scene["tokens"].get(role, scene["tokens"][TECH])[0]
    url = reverse(f"api:{name}", kwargs={k: objects[v].pk for k, v in kwargs.items()})
    data = body(objects) if body else None
    response = getattr(client, method)(url, data, format="json") if data is not None else getattr(client, method)(url)
    assert response.status_code == expected[role], f"{role} {method.upper()} {url}: {response.content[:300]!r}"


def test_an_outsider_learns_nothing_about_which_tickets_exist(scene):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {scene['tokens'][OUTSIDER][1]}")
    ticket = scene["objects"]["ticket"]
    assert client.get(reverse("api:ticket", args=[ticket.pk])).status_code == 403
    assert client.get(reverse("api:ticket", args=[ticket.pk + 1000])).status_code == 403


def test_a_manager_cannot_change_a_ticket_through_the_api(scene):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {scene['tokens'][MANAGER][1]}")
    ticket = scene["objects"]["ticket"]
    client.patch(reverse("api:ticket", args=[ticket.pk]), {"status": "resolved"}, format="json")
    ticket.refresh_from_db()
    assert ticket.status == "new"


def test_a_session_works_for_the_browsable_api(client, scene):
    client.force_login(scene["users"][TECH])
    assert client.get(reverse("api:tickets")).status_code == 200
