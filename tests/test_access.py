"""The role matrix: every URL, every role, the expected status.

A new URL without a row here fails `test_every_url_is_in_the_matrix`, so the
matrix cannot silently fall behind the product.
"""

from __future__ import annotations

import copy

import pytest
from django.core.cache import cache
from django.urls import get_resolver, reverse
from django.utils import timezone

from diagnostics.knowledge import services as knowledge
from diagnostics.models import (
    CollectionRun,
    Evidence,
    HostKey,
    JumpHost,
    JumpHostKey,
    Playbook,
    Sweep,
    SweepSchedule,
)
from mailgate import mailbox_services
from mailgate import services as mail_services
from mailgate.models import Attachment, InboundMessage, Outcome
from tests.conftest import free_port, login, make_cast, rows_for_scope
from triage import services as desk
from triage.models import Heartbeat, Macro, SavedView
from webhooks import services as webhooks

ANON, TECH, ADMIN, MANAGER, OUTSIDER = "anonymous", "tech", "admin", "manager", "outsider"
READERS = {TECH: 200, ADMIN: 200, MANAGER: 200, OUTSIDER: 403}
WORKERS_GET = {TECH: 200, ADMIN: 200, MANAGER: 403, OUTSIDER: 403}
WORKERS_POST = {TECH: 302, ADMIN: 302, MANAGER: 403, OUTSIDER: 403}
READERS_POST = {TECH: 302, ADMIN: 302, MANAGER: 302, OUTSIDER: 403}
ADMINS = {TECH: 403, ADMIN: 200, MANAGER: 403, OUTSIDER: 403}
DASHBOARDS = {TECH: 403, ADMIN: 200, MANAGER: 200, OUTSIDER: 403}

# (url name, kwargs from the scene, method, POST data, expected status per role)
MATRIX = [
    ("home", {}, "get", None, {ANON: 302, TECH: 200, ADMIN: 200, MANAGER: 302, OUTSIDER: 403}),
    ("login", {}, "get", None, {ANON: 200, TECH: 302, ADMIN: 302, MANAGER: 302, OUTSIDER: 302}),
    ("logout", {}, "post", {}, {ANON: 302, TECH: 302, ADMIN: 302, MANAGER: 302, OUTSIDER: 302}),
    ("healthz", {}, "get", None, {ANON: 200, TECH: 200, ADMIN: 200, MANAGER: 200, OUTSIDER: 200}),
    ("overview", {}, "get", None, {TECH: 403, ADMIN: 200, MANAGER: 200, OUTSIDER: 403}),
    ("queue", {}, "get", None, READERS),
    ("ticket_new", {}, "get", None, WORKERS_GET),
    ("ticket", {"ticket_id": "ticket"}, "get", None, READERS),
    ("ticket_presence", {"ticket_id": "ticket"}, "get", None, READERS),
    ("ticket_reply", {"ticket_id": "ticket"}, "post", {"body": "We are on it."}, WORKERS_POST),
    ("ticket_note", {"ticket_id": "ticket"}, "post", {"note-body": "strace next"}, WORKERS_POST),
    ("ticket_draft_reply", {"ticket_id": "ticket"}, "post", {"body": "We are on"}, WORKERS_POST),
    ("ticket_draft_note", {"ticket_id": "ticket"}, "post", {"note-body": "strace"}, WORKERS_POST),
    ("ticket_assign", {"ticket_id": "ticket"}, "post", {"assignee": ""}, WORKERS_POST),
    ("ticket_status", {"ticket_id": "ticket"}, "post", {"status": "triaging"}, WORKERS_POST),
    ("ticket_priority", {"ticket_id": "ticket"}, "post", {"priority": "1"}, WORKERS_POST),
    ("ticket_tags", {"ticket_id": "ticket"}, "post", {"tags": "mail, urgent"}, WORKERS_POST),
    ("ticket_servers", {"ticket_id": "ticket"}, "post", {"servers": []}, WORKERS_POST),
    ("ticket_people", {"ticket_id": "ticket"}, "post", {"requester": "", "ccs": []}, WORKERS_POST),
    # Access is decided before the form: these forms are refused (no such ticket or link), which
    # answers the page with the reason (200) to those who may act and 403 to the others.
    ("ticket_link", {"ticket_id": "ticket"}, "post", {"other": "#999999"}, WORKERS_GET),
    ("ticket_unlink", {"ticket_id": "ticket"}, "post", {"link": "999999"}, WORKERS_GET),
    ("ticket_merge", {"ticket_id": "ticket"}, "post", {"into": "#999999"}, WORKERS_GET),
    ("queue_bulk", {}, "post", {"tickets": [], "status": "triaging"}, WORKERS_POST),
    # A saved view is the reader's own way into the queue: managers keep them too.
    ("saved_view_save", {}, "post", {"name": "Mine", "query": "assignee=me"}, READERS_POST),
    ("saved_view_delete", {"view_id": "saved_view"}, "post", {}, READERS_POST),
    ("customers", {}, "get", None, READERS),
    ("customer_new", {}, "get", None, ADMINS),
    ("customer", {"customer_id": "customer"}, "get", None, READERS),
    ("customer_edit", {"customer_id": "customer"}, "get", None, ADMINS),
    # Contacts: techs add them in the course of work (a CC from a ticket); managers only read them.
    ("contact_new", {"customer_id": "customer"}, "get", None, WORKERS_GET),
    ("contact_edit", {"contact_id": "contact"}, "get", None, WORKERS_GET),
    ("contact_remove", {"contact_id": "contact"}, "post", {}, WORKERS_POST),
    ("server_new", {}, "get", None, ADMINS),
    ("server", {"server_id": "server"}, "get", None, READERS),
    ("server_edit", {"server_id": "server"}, "get", None, ADMINS),
    ("sla_settings", {}, "get", None, ADMINS),
    ("calendar_new", {}, "get", None, ADMINS),
    ("calendar_edit", {"calendar_id": "calendar"}, "get", None, ADMINS),
    ("tier_edit", {"tier_id": "tier"}, "get", None, ADMINS),
    ("users", {}, "get", None, ADMINS),
    ("user_new", {}, "get", None, ADMINS),
    ("user_edit", {"user_id": "tech"}, "get", None, ADMINS),
    (
        "collect",
        {"ticket_id": "ticket"},
        "post",
        {"server": "", "playbook": ""},
        {TECH: 400, ADMIN: 400, MANAGER: 403, OUTSIDER: 403},
    ),
    ("ticket_collections", {"ticket_id": "ticket"}, "get", None, READERS),
    ("run", {"run_id": "run"}, "get", None, READERS),
    ("evidence_raw", {"run_id": "run", "step": "step"}, "get", None, READERS),
    ("server_access", {"server_id": "server"}, "get", None, ADMINS),
    (
        "host_keys_import",
        {"server_id": "server"},
        "post",
        {"kh-known_hosts": ""},
        {TECH: 403, ADMIN: 400, MANAGER: 403, OUTSIDER: 403},
    ),
    (
        "ssh_trust",
        {"server_id": "server"},
        "post",
        {"trust-ca_keys": "not a key"},
        {TECH: 403, ADMIN: 400, MANAGER: 403, OUTSIDER: 403},
    ),
    (
        "host_key_decide",
        {"server_id": "server", "key_id": "host_key"},
        "post",
        {"decision": "trust"},
        {TECH: 403, ADMIN: 302, MANAGER: 403, OUTSIDER: 403},
    ),
    (
        "server_jump_chain",
        {"server_id": "server"},
        "post",
        {"hop1": "0", "scope": "server"},
        {TECH: 403, ADMIN: 400, MANAGER: 403, OUTSIDER: 403},
    ),
    ("jump_host_new", {"server_id": "server"}, "get", None, ADMINS),
    ("jump_host", {"jump_host_id": "jump_host"}, "get", None, ADMINS),
    (
        "jump_host_key_decide",
        {"jump_host_id": "jump_host", "key_id": "jump_key"},
        "post",
        {"decision": "trust"},
        {TECH: 403, ADMIN: 302, MANAGER: 403, OUTSIDER: 403},
    ),
    ("playbooks", {}, "get", None, ADMINS),
    ("playbook_new", {}, "get", None, ADMINS),
    ("playbook_edit", {"playbook_id": "playbook"}, "get", None, ADMINS),
    ("audit", {}, "get", None, ADMINS),
    (
        "sweep_start",
        {"customer_id": "customer"},
        "post",
        {"playbook": ""},
        {TECH: 400, ADMIN: 400, MANAGER: 403, OUTSIDER: 403},
    ),
    ("sweep", {"sweep_id": "sweep"}, "get", None, READERS),
    ("sweep_file_tickets", {"sweep_id": "sweep"}, "post", {}, WORKERS_POST),  # still running: back, with a message
    (
        "sweep_schedule_add",
        {"customer_id": "customer"},
        "post",
        {"schedule-playbook": ""},
        {TECH: 403, ADMIN: 400, MANAGER: 403, OUTSIDER: 403},
    ),
    (
        "sweep_schedule_delete",
        {"schedule_id": "sweep_schedule"},
        "post",
        {},
        {TECH: 403, ADMIN: 302, MANAGER: 403, OUTSIDER: 403},
    ),
    (
        "ticket_accept_fix",
        {"ticket_id": "ticket"},
        "post",
        {"recipe": ""},
        {TECH: 200, ADMIN: 200, MANAGER: 403, OUTSIDER: 403},
    ),  # no such suggested fix: the ticket, with the error
    (
        "ticket_reject_fix",
        {"ticket_id": "ticket"},
        "post",
        {"recipe": "", "reason": ""},
        {TECH: 200, ADMIN: 200, MANAGER: 403, OUTSIDER: 403},
    ),  # no such suggested fix: the ticket, with the error
    (
        "ticket_resolve_with_fix",
        {"ticket_id": "ticket"},
        "post",
        {"recipe": ""},
        {TECH: 200, ADMIN: 200, MANAGER: 403, OUTSIDER: 403},
    ),  # no such suggested fix: the ticket, with the error
    (
        "ticket_verify_fix",
        {"ticket_id": "ticket"},
        "post",
        {"recipe": ""},
        {TECH: 200, ADMIN: 200, MANAGER: 403, OUTSIDER: 403},
    ),  # no such suggested fix: the ticket, with the error
    (
        "ticket_settle_possible",
        {"ticket_id": "ticket"},
        "post",
        {"symptom": "disk-full", "server": "1"},
        {TECH: 200, ADMIN: 200, MANAGER: 403, OUTSIDER: 403},
    ),  # not possible on this ticket: the ticket, with the error
    ("kb", {}, "get", None, READERS),
    ("kb_symptom_new", {}, "get", None, ADMINS),
    ("kb_symptom_try", {}, "post", {"signature": "probe: load\nregex: up"}, ADMINS),
    ("kb_symptom_edit", {"key": "symptom"}, "get", None, ADMINS),
    ("kb_symptom_history", {"key": "symptom"}, "get", None, READERS),
    ("kb_recipe_new", {}, "get", None, ADMINS),
    ("kb_recipe_try", {}, "post", {"applies_when": "probe: load\nregex: up"}, ADMINS),
    ("kb_recipe_edit", {"key": "recipe"}, "get", None, ADMINS),
    ("kb_recipe_history", {"key": "recipe"}, "get", None, READERS),
    ("dashboard", {}, "get", None, DASHBOARDS),
    *(
        (f"dashboard_csv_{chart}", {}, "get", None, DASHBOARDS)
        for chart in (
            "opened_resolved",
            "backlog",
            "response_weekly",
            "response_customers",
            "sla_breaches",
            "symptoms",
            "recipes",
            "failures_reason",
            "failures_customer",
            "workload",
        )
    ),
    ("webhooks", {}, "get", None, ADMINS),
    ("webhook_new", {}, "get", None, ADMINS),
    ("webhook_deliveries", {"endpoint_id": "webhook"}, "get", None, ADMINS),
    ("webhook_edit", {"endpoint_id": "webhook"}, "get", None, ADMINS),
    ("webhook_rotate", {"endpoint_id": "webhook"}, "post", {}, ADMINS),  # the new secret, shown once
    ("webhook_test", {"endpoint_id": "webhook"}, "post", {}, {TECH: 403, ADMIN: 302, MANAGER: 403, OUTSIDER: 403}),
    (
        "webhook_redeliver",
        {"endpoint_id": "webhook", "delivery_id": "delivery"},
        "post",
        {},
        {TECH: 403, ADMIN: 302, MANAGER: 403, OUTSIDER: 403},
    ),
    ("mail_attachment", {"attachment_id": "attachment"}, "get", None, READERS),
    ("macros", {}, "get", None, ADMINS),
    ("macro_new", {}, "get", None, ADMINS),
    ("macro_edit", {"macro_id": "macro"}, "get", None, ADMINS),
    (
        "macro_set_active",
        {"macro_id": "macro"},
        "post",
        {"active": "0"},
        {TECH: 403, ADMIN: 302, MANAGER: 403, OUTSIDER: 403},
    ),
    (
        "ticket_apply_macro",
        {"ticket_id": "ticket"},
        "post",
        {"macro": "", "body": "draft"},
        {TECH: 200, ADMIN: 200, MANAGER: 403, OUTSIDER: 403},
    ),  # no such macro: the ticket, with the error
    ("mailboxes", {}, "get", None, ADMINS),
    ("mailbox_new", {}, "get", None, ADMINS),
    ("mailbox_edit", {"mailbox_id": "mailbox"}, "get", None, ADMINS),
    (
        "mailbox_test",
        {"mailbox_id": "mailbox"},
        "post",
        {},  # nothing listens: back to the list, with why
        {TECH: 403, ADMIN: 302, MANAGER: 403, OUTSIDER: 403},
    ),
    ("held_mail", {}, "get", None, WORKERS_GET),
    (
        "held_mail_ticket",
        {"message_id": "held"},
        "post",
        {"customer": ""},  # no customer chosen: the page, with why
        {TECH: 400, ADMIN: 400, MANAGER: 403, OUTSIDER: 403},
    ),
    ("held_mail_reject", {"message_id": "held"}, "post", {}, WORKERS_POST),
    ("mail_routes", {}, "get", None, ADMINS),
    ("mail_route_delete", {"route_id": "mail_route"}, "post", {}, {TECH: 403, ADMIN: 302, MANAGER: 403, OUTSIDER: 403}),
]


def _names(patterns) -> set[str]:
    names = set()
    for p in patterns:
        if getattr(p, "namespace", None) == "api":
            continue  # the API's own matrix covers every API route: tests/test_api_access.py
        if hasattr(p, "url_patterns"):
            names |= _names(p.url_patterns)
        elif p.name:
            names.add(p.name)
    return names


def test_every_url_is_in_the_matrix():
    assert _names(get_resolver().url_patterns) == {row[0] for row in MATRIX}


class _Step:
    pk = 0


class _Keyed:
    """Knowledge entries are addressed by key, not id."""

    def __init__(self, key: str):
        self.pk = key


def _build_scene() -> dict:
    cast = make_cast()
    tech, admin_user, manager, outsider = cast["tech"], cast["admin_user"], cast["manager"], cast["outsider"]
    customer, server, ticket = cast["customer"], cast["server"], cast["ticket"]
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
    host_key = HostKey.objects.create(server=server, key_type="ssh-ed25519", key_base64="AAAA", fingerprint="SHA256:x")
    jump_host = JumpHost.objects.create(customer=customer, name="bastion1", address="192.0.2.1", username="root")
    jump_key = JumpHostKey.objects.create(
        jump_host=jump_host, key_type="ssh-ed25519", key_base64="AAAA", fingerprint="SHA256:x"
    )
    symptom, _ = knowledge.symptom_save(
        data={"key": "slow-host", "title": "Slow host", "signature": {"probe": "load", "regex": "up"}}, by=admin_user
    )
    recipe, _ = knowledge.recipe_save(
        data={"key": "reboot-it", "title": "Reboot", "fixes": ["slow-host"], "steps": ["Reboot."]}, by=admin_user
    )
    endpoint, _ = webhooks.endpoint_create(
        name="Portal", url="https://portal.test/hook", event_types=["ticket.created"]
    )
    delivery = webhooks.endpoint_send_test(endpoint=endpoint)
    inbound = InboundMessage.objects.create(outcome=Outcome.CREATED, ticket=ticket, from_address="ops@northwind.test")
    attachment = Attachment.objects.create(
        message=inbound, ticket=ticket, filename="log.txt", content_type="text/plain", size=2, content=b"ok"
    )
    held = InboundMessage.objects.create(outcome=Outcome.UNMATCHED, from_address="kim@newco.test", subject="Hi")
    mail_route = mail_services.mail_route_add(customer=customer, value="northwind.test")
    mailbox = mailbox_services.mailbox_create(
        name="Support", host="127.0.0.1", port=free_port(), security="plain", username="desk", password="imap-s3cret"
    )
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())  # a live worker: /healthz answers 200
    sweep = Sweep.objects.create(customer=customer, playbook=playbook, playbook_name=playbook.name)
    CollectionRun.objects.create(
        sweep=sweep, server=server, playbook=playbook, playbook_name=playbook.name, steps=playbook.steps
    )
    schedule = SweepSchedule.objects.create(customer=customer, playbook=playbook, hour=2)
    calendar = desk.business_calendar_save(
        calendar=None, name="Office", time_zone="Europe/Berlin", weekly_hours={"mon": ["09:00-17:00"]}, holidays=[]
    )
    macro = Macro.objects.create(name="Ask for logs", body="Hello {{customer}}")
    saved_view = SavedView.objects.create(user=tech, name="Mine", query="assignee=me")
    return {
        "users": {TECH: tech, ADMIN: admin_user, MANAGER: manager, OUTSIDER: outsider, ANON: None},
        "objects": {
            "ticket": ticket,
            "customer": customer,
            "server": server,
            "tech": tech,
            "run": run,
            "step": _Step(),
            "playbook": playbook,
            "host_key": host_key,
            "jump_host": jump_host,
            "jump_key": jump_key,
            "symptom": _Keyed(symptom.key),
            "recipe": _Keyed(recipe.key),
            "webhook": endpoint,
            "delivery": delivery,
            "attachment": attachment,
            "sweep": sweep,
            "sweep_schedule": schedule,
            "calendar": calendar,
            "tier": customer.sla_tier,
            "macro": macro,
            "mailbox": mailbox,
            "held": held,
            "mail_route": mail_route,
            "saved_view": saved_view,
            "contact": customer.contacts.get(),
        },
    }


# The scene is written once per module and test process (rows_for_scope): each of the ~560 cases
# below only adds its own savepoint, instead of building the world again (about 0.3 s a case).
@pytest.fixture(scope="module")
def scene_rows(django_db_setup, django_db_blocker):
    yield from rows_for_scope(django_db_blocker, _build_scene)


@pytest.fixture
def scene(scene_rows, db):
    """This test's copy of the scene (a test may change its rows in memory), with an empty cache:
    the ids are the same for every test, so nothing a test leaves in the cache may reach the next."""
    cache.clear()
    return copy.deepcopy(scene_rows)


@pytest.mark.parametrize("role", [ANON, TECH, ADMIN, MANAGER, OUTSIDER])
@pytest.mark.parametrize("name,kwargs,method,data,expected", MATRIX, ids=[row[0] for row in MATRIX])
def test_each_role_gets_the_expected_status(client, scene, role, name, kwargs, method, data, expected):
    user = scene["users"][role]
    if user is not None:
        login(client, user)
    url = reverse(name, kwargs={k: scene["objects"][v].pk for k, v in kwargs.items()})
    response = getattr(client, method)(url, data) if method == "post" else client.get(url)
    want = expected.get(role, 302)  # anonymous users are sent to the login page
    assert response.status_code == want, f"{role} {method.upper()} {url}"
    if role == ANON and want == 302 and name not in ("logout", "home"):
        assert response["Location"].startswith(reverse("login"))


def test_an_outsider_learns_nothing_about_which_tickets_exist(client, scene):
    outsider, ticket = scene["users"][OUTSIDER], scene["objects"]["ticket"]
    login(client, outsider)
    assert client.get(reverse("ticket", args=[ticket.pk])).status_code == 403
    assert client.get(reverse("ticket", args=[ticket.pk + 1000])).status_code == 403


def test_a_manager_cannot_change_a_ticket(client, scene):
    manager, ticket = scene["users"][MANAGER], scene["objects"]["ticket"]
    login(client, manager)
    client.post(reverse("ticket_status", args=[ticket.pk]), {"status": "resolved"})
    ticket.refresh_from_db()
    assert ticket.status == "new"


def test_a_deactivated_tech_has_no_access(client, scene):
    tech = scene["users"][TECH]
    tech.is_active = False
    tech.save()
    client.force_login(tech)
    response = client.get(reverse("queue"))
    assert response.status_code in (302, 403)


def test_navigation_only_offers_what_the_role_allows(client, scene):
    tech, manager = scene["users"][TECH], scene["users"][MANAGER]
    login(client, tech)
    page = client.get(reverse("queue")).content.decode()
    assert 'href="/users/"' not in page and 'href="/tickets/new/"' in page
    client.logout()
    login(client, manager)
    page = client.get(reverse("queue")).content.decode()
    assert 'href="/tickets/new/"' not in page and 'href="/overview/"' in page


@pytest.mark.parametrize(
    "path",
    [
        "/tickets/99999999999999999999/",
        "/runs/99999999999999999999/evidence/0/raw",
        "/servers/123456789012345678901234/",
        "/runs/1/evidence/99999999999999999999/raw",
    ],
)
def test_an_id_too_large_for_the_database_is_not_found_not_an_error(client, scene, path):
    client.force_login(scene["users"][ADMIN])
    assert client.get(path).status_code == 404
