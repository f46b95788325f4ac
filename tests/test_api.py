"""The REST API's behaviour: tokens, the queue, ticket writes through the services, collections,
the knowledge base and the monitoring one-call. Who may call what is in tests/test_api_access.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import AlertKey, ApiToken, hash_key
from api.services import token_create
from diagnostics.models import CollectionRun, Evidence, Match, Playbook, RunState, Symptom
from triage import services
from triage.models import Customer, EventKind, Server, SlaTier, Ticket


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='test')[1]}")
    return client


@pytest.fixture
def playbook(db):
    return Playbook.objects.create(name="Host health", steps=[{"probe": "load", "params": {}}])


# --- Tokens ------------------------------------------------------------------------


def test_a_token_is_stored_only_as_a_hash_and_shown_once(tech):
    client = APIClient()
    client.force_authenticate(tech)
    response = client.post(reverse("api:tokens"), {"name": "nagios"}, format="json")
    assert response.status_code == 201
    key = response.json()["key"]
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.key_hash == hash_key(key) and key not in (token.key_hash, token.prefix)
    listed = client.get(reverse("api:tokens")).json()
    assert [t["name"] for t in listed] == ["nagios"] and "key" not in listed[0]


def test_a_token_authenticates_and_records_its_last_use(tech):
    token, key = token_create(user=tech, name="cli")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get(reverse("api:tickets")).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_revoked_token_no_longer_works(tech):
    token, key = token_create(user=tech, name="cli")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.delete(reverse("api:token", args=[token.pk])).status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = client.get(reverse("api:tickets"))
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_nobody_can_revoke_someone_elses_token(tech, admin_user):
    token, _ = token_create(user=tech, name="cli")
    assert api_as(admin_user).delete(reverse("api:token", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_deactivated_users_token_stops_working(tech):
    client = api_as(tech)
    tech.is_active = False
    tech.save()
    assert client.get(reverse("api:tickets")).status_code == 401


def test_a_garbage_token_header_is_a_401_not_an_error(tech):
    client = APIClient()
    for header in ("Token", "Token a b", "Token \u00e9t\u00e9", "Token nope"):
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get(reverse("api:tickets")).status_code == 401, header


def test_a_password_buys_a_first_token(tech):
    client = APIClient()
    response = client.post(
        reverse("api:token_login"),
        {"username": "tess", "password": "correct-horse-battery", "name": "zabbix"},
        format="json",
    )
    assert response.status_code == 201
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['key']}")
    assert client.get(reverse("api:tickets")).status_code == 200
    wrong = APIClient().post(reverse("api:token_login"), {"username": "tess", "password": "nope"}, format="json")
    assert wrong.status_code == 400 and "Wrong user name or password" in wrong.json()["detail"]


def test_a_user_without_a_role_gets_no_token(outsider):
    response = APIClient().post(
        reverse("api:token_login"), {"username": "olly", "password": "correct-horse-battery"}, format="json"
    )
    assert response.status_code == 400  # as for a wrong password: no oracle (tests/test_no_500s.py)
    assert not ApiToken.objects.exists()


def test_the_served_schema_documents_the_token_scheme_every_protected_operation_uses(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "An API token, as `Token <key>`. Create one at POST /api/v1/auth/token/.",
    }
    tickets = schema["paths"]["/api/v1/tickets/"]["get"]
    assert {"tokenAuth": []} in tickets["security"]


# --- The queue ----------------------------------------------------------------------


def _file(customer, n: int, **kwargs) -> Ticket:
    return services.ticket_create(
        subject=f"Ticket {n}",
        description="x",
        customer=customer,
        now=timezone.now() - timedelta(minutes=100 - n),
        **kwargs,
    )


def test_the_queue_pages_by_cursor_and_round_trips(tech, customer):
    for n in range(7):
        _file(customer, n)
    client = api_as(tech)
    first = client.get(reverse("api:tickets"), {"sort": "newest", "page_size": 3}).json()
    assert [t["subject"] for t in first["results"]] == ["Ticket 6", "Ticket 5", "Ticket 4"]
    assert first["previous"] is None and "page_size=3" in first["next"]
    second = client.get(first["next"]).json()
    assert [t["subject"] for t in second["results"]] == ["Ticket 3", "Ticket 2", "Ticket 1"]
    back = client.get(second["previous"]).json()
    assert [t["subject"] for t in back["results"]] == ["Ticket 6", "Ticket 5", "Ticket 4"]
    third = client.get(second["next"]).json()
    assert [t["subject"] for t in third["results"]] == ["Ticket 0"] and third["next"] is None


def test_a_cursor_is_stable_while_new_tickets_arrive(tech, customer):
    for n in range(6):
        _file(customer, n)
    client = api_as(tech)
    first = client.get(reverse("api:tickets"), {"sort": "newest", "page_size": 3}).json()
    for n in range(50, 55):
        _file(customer, n)  # newer than everything: they belong before the first page
    second = client.get(first["next"]).json()
    assert [t["subject"] for t in second["results"]] == ["Ticket 2", "Ticket 1", "Ticket 0"]


def test_the_queue_filters_like_the_browser(tech, admin_user, customer):
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    mine = _file(customer, 1, assignee=tech, tag_names=["mail"], priority=1)
    _file(other, 2)
    resolved = _file(customer, 3)
    services.ticket_change_status(ticket=resolved, status="resolved", by=tech)
    client = api_as(tech)

    def subjects(**params):
        response = client.get(reverse("api:tickets"), params)
        assert response.status_code == 200, response.content
        return sorted(t["subject"] for t in response.json()["results"])

    assert subjects() == ["Ticket 1", "Ticket 2"]
    assert subjects(status="all") == ["Ticket 1", "Ticket 2", "Ticket 3"]
    assert subjects(status="resolved") == ["Ticket 3"]
    assert subjects(customer=other.pk) == ["Ticket 2"]
    assert subjects(assignee="me") == ["Ticket 1"]
    assert subjects(assignee="none") == ["Ticket 2"]
    assert subjects(assignee=str(tech.pk)) == ["Ticket 1"]
    assert subjects(tag="MAIL") == ["Ticket 1"]
    assert subjects(priority=1) == ["Ticket 1"]
    assert subjects(q=f"#{mine.pk}") == ["Ticket 1"]
    assert subjects(sort="priority", at_risk="false") == ["Ticket 1", "Ticket 2"]


@pytest.mark.parametrize(
    "params,field",
    [
        ({"status": "bogus"}, "status"),
        ({"priority": "9"}, "priority"),
        ({"assignee": "bob"}, "assignee"),
        ({"customer": "999999"}, "customer"),
        ({"customer": "x"}, "customer"),
        ({"tag": "no spaces!"}, "tag"),
        ({"sort": "random"}, "sort"),
        ({"page_size": "0"}, "page_size"),
        ({"cursor": "n.!!!"}, "cursor"),
        ({"cursor": "x.W10"}, "cursor"),
        ({"q": "a\x00b"}, "q"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(tech, params, field):
    response = api_as(tech).get(reverse("api:tickets"), params)
    assert response.status_code == 400
    assert field in response.json()


# --- Ticket writes ----------------------------------------------------------------------


def test_filing_a_ticket_goes_through_the_service(tech, customer, server):
    response = api_as(tech).post(
        reverse("api:tickets"),
        {
            "customer": customer.pk,
            "subject": "  Slow mail ",
            "description": "30 s",
            "priority": 2,
            "servers": [server.pk],
            "tags": ["Mail", "slow-send"],
            "assignee": tech.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["subject"] == "Slow mail" and body["tags"] == ["mail", "slow-send"]
    assert [s["name"] for s in body["servers"]] == ["mx1"] and body["assignee"]["username"] == "tess"
    assert [e["kind"] for e in body["timeline"]] == [EventKind.CREATED, EventKind.ASSIGNMENT]
    assert Ticket.objects.get(pk=body["id"]).created_by == tech


def test_filing_a_ticket_with_another_customers_server_is_a_400(tech, customer):
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    foreign = Server.objects.create(customer=other, name="web1", address="192.0.2.99")
    response = api_as(tech).post(
        reverse("api:tickets"),
        {"customer": customer.pk, "subject": "s", "description": "d", "servers": [foreign.pk]},
        format="json",
    )
    assert response.status_code == 400 and "Not servers of Northwind Hosting" in str(response.json()["servers"])
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"customer": 999999, "subject": "s", "description": "d"},
        {"customer": 2**70, "subject": "s", "description": "d"},
        {"customer": "one", "subject": "s", "description": "d"},
        {"customer": None, "subject": "s" * 201, "description": "d"},
        {"subject": "s", "description": "d", "tags": ["not a tag!"]},
        {"subject": "s", "description": "d", "assignee": 424242},
    ],
)
def test_bad_ticket_input_is_a_400(tech, customer, body):
    response = api_as(tech).post(
        reverse("api:tickets"),
        {"customer": customer.pk, **body} if "customer" not in body and body else body,
        format="json",
    )
    assert response.status_code == 400, response.content


def test_text_no_database_can_store_is_a_400(tech, customer):
    raw = '{"customer": CUSTOMER, "subject": "\\ud800", "description": "nul \\u0000"}'.replace(
        "CUSTOMER", str(customer.pk)
    )
    response = api_as(tech).post(reverse("api:tickets"), raw, content_type="application/json")
    assert response.status_code == 400 and set(response.json()) == {"subject", "description"}


def test_a_ticket_can_only_be_assigned_to_a_tech_or_admin(tech, manager, ticket):
    response = api_as(tech).patch(reverse("api:ticket", args=[ticket.pk]), {"assignee": manager.pk}, format="json")
    assert response.status_code == 400 and "assignee" in response.json()


def test_updating_a_ticket_runs_each_change_through_its_service(tech, admin_user, ticket, server):
    response = api_as(tech).patch(
        reverse("api:ticket", args=[ticket.pk]),
        {
            "status": "triaging",
            "note": "looking",
            "priority": 1,
            "assignee": admin_user.pk,
            "tags": ["mail", "urgent"],
            "servers": [],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["priority"], body["assignee"]["username"]) == ("triaging", 1, "ada")
    assert body["tags"] == ["mail", "urgent"] and body["servers"] == []
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds == ["created", "servers", "tags", "priority", "assignment", "status"]
    assert body["timeline"][-1]["body"] == "looking" and body["timeline"][-1]["actor"] == "tess"


def test_a_refused_status_change_is_a_400_and_changes_nothing(tech, ticket):
    response = api_as(tech).patch(
        reverse("api:ticket", args=[ticket.pk]), {"priority": 1, "status": "closed"}, format="json"
    )
    assert response.status_code == 400
    assert "cannot become closed" in response.json()["status"][0]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority) == ("new", 2)  # the priority change was rolled back too


def test_an_empty_update_or_a_stray_note_is_a_400(tech, ticket):
    client = api_as(tech)
    assert client.patch(reverse("api:ticket", args=[ticket.pk]), {}, format="json").status_code == 400
    assert client.patch(reverse("api:ticket", args=[ticket.pk]), {"note": "x"}, format="json").status_code == 400


def test_an_unknown_ticket_is_a_404(tech):
    client = api_as(tech)
    assert client.get(reverse("api:ticket", args=[999999])).status_code == 404
    assert client.get(f"/api/v1/tickets/{2**70}/").status_code == 404
    assert client.post(reverse("api:ticket_comments", args=[999999]), {"body": "x"}, format="json").status_code == 404


def test_comments_are_public_replies_or_internal_notes(tech, ticket):
    client = api_as(tech)
    reply = client.post(reverse("api:ticket_comments", args=[ticket.pk]), {"body": "We are on it."}, format="json")
    note = client.post(
        reverse("api:ticket_comments", args=[ticket.pk]), {"body": "strace next", "internal": True}, format="json"
    )
    assert (reply.status_code, reply.json()["kind"]) == (201, "reply")
    assert (note.status_code, note.json()["kind"]) == (201, "note")
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None  # the reply stopped the first-response clock
    timeline = client.get(reverse("api:ticket", args=[ticket.pk])).json()["timeline"]
    # The first public reply also moved the new ticket to triaging.
    assert [(e["kind"], e["body"]) for e in timeline][-3:] == [
        ("reply", "We are on it."),
        ("status", "First public reply."),
        ("note", "strace next"),
    ]


# --- Ticket versions: ETag, If-Match and the body's version ----------------------------


def test_a_ticket_read_carries_its_version_in_the_body_and_as_a_weak_etag(tech, ticket):
    services.ticket_add_note(ticket=ticket, author=tech, body="strace next")
    client = api_as(tech)
    response = client.get(reverse("api:ticket", args=[ticket.pk]))
    assert response["ETag"] == 'W/"2"' and response.json()["version"] == 2
    assert response.json()["timeline"][-1]["version"] == 2  # the entry that made version 2
    (row,) = client.get(reverse("api:tickets")).json()["results"]
    assert row["version"] == 2


def test_a_change_at_the_version_read_is_applied_and_answers_the_new_etag(tech, ticket):
    client = api_as(tech)
    etag = client.get(reverse("api:ticket", args=[ticket.pk]))["ETag"]
    response = client.patch(
        reverse("api:ticket", args=[ticket.pk]),
        {"priority": 1, "tags": ["urgent"]},
        format="json",
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.content
    assert response["ETag"] == 'W/"3"' and response.json()["version"] == 3  # two changes, one check
    again = client.patch(reverse("api:ticket", args=[ticket.pk]), {"priority": 3, "version": 3}, format="json")
    assert again.status_code == 200 and again.json()["priority"] == 3


def test_a_change_with_a_stale_if_match_is_a_412_saying_what_changed_and_by_whom(tech, admin_user, ticket):
    etag = api_as(tech).get(reverse("api:ticket", args=[ticket.pk]))["ETag"]
    services.ticket_set_tags(ticket=ticket, tag_names=["mail", "urgent"], by=admin_user)
    services.ticket_change_priority(ticket=ticket, priority=1, by=admin_user)

    response = api_as(tech).patch(
        reverse("api:ticket", args=[ticket.pk]),
        {"priority": 4, "status": "triaging"},
        format="json",
        headers={"If-Match": etag},
    )

    assert response.status_code == 412
    body = response.json()
    assert (body["seen_version"], body["version"], body["changed_by"]) == (1, 3, ["ada"])
    assert body["detail"].startswith("Not changed: the ticket changed after version 1 (it is now version 3), by ada")
    assert [(c["kind"], c["kind_label"], c["actor"], c["data"]["to"]) for c in body["changes"]] == [
        ("tags", "Tags changed", "ada", ["mail", "urgent"]),
        ("priority", "Priority change", "ada", 1),
    ]
    assert response["ETag"] == 'W/"3"'
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.status, ticket.version) == (1, "new", 3)  # nothing of the change was made


def test_a_stale_version_in_the_body_is_a_409_with_the_same_answer(tech, admin_user, ticket):
    services.ticket_assign(ticket=ticket, assignee=admin_user, by=admin_user)
    response = api_as(tech).patch(
        reverse("api:ticket", args=[ticket.pk]), {"assignee": tech.pk, "version": 1}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["changed_by"] == ["ada"] and response.json()["changes"][0]["kind"] == "assignment"
    ticket.refresh_from_db()
    assert ticket.assignee == admin_user


def test_if_match_is_checked_before_the_bodys_version(tech, admin_user, ticket):
    services.ticket_change_priority(ticket=ticket, priority=1, by=admin_user)
    client = api_as(tech)
    url = reverse("api:ticket", args=[ticket.pk])
    assert (
        client.patch(url, {"priority": 4, "version": 2}, format="json", headers={"If-Match": 'W/"1"'}).status_code
        == 412
    )
    assert (
        client.patch(url, {"priority": 4, "version": 1}, format="json", headers={"If-Match": '"2"'}).status_code == 409
    )  # a strong tag names the version too


def test_without_if_match_or_a_version_the_change_is_applied_whatever_changed(tech, admin_user, ticket):
    services.ticket_change_priority(ticket=ticket, priority=1, by=admin_user)
    client = api_as(tech)
    url = reverse("api:ticket", args=[ticket.pk])
    assert client.patch(url, {"priority": 4}, format="json").status_code == 200
    assert client.patch(url, {"priority": 3}, format="json", headers={"If-Match": "*"}).status_code == 200
    ticket.refresh_from_db()
    assert ticket.priority == 3


@pytest.mark.parametrize("header", ['W/"abc"', "2", '"1", "2"', 'W/""', "x" * 50])
def test_a_malformed_if_match_is_a_400_and_changes_nothing(tech, ticket, header):
    response = api_as(tech).patch(
        reverse("api:ticket", args=[ticket.pk]), {"priority": 4}, format="json", headers={"If-Match": header}
    )
    assert response.status_code == 400 and "If-Match" in response.json()
    ticket.refresh_from_db()
    assert ticket.priority == 2


def test_only_a_version_is_no_change_at_all(tech, ticket):
    response = api_as(tech).patch(reverse("api:ticket", args=[ticket.pk]), {"version": 1}, format="json")
    assert response.status_code == 400


def test_a_comment_or_a_collection_on_a_ticket_changed_since_is_refused(tech, admin_user, ticket, server, playbook):
    services.ticket_add_note(ticket=ticket, author=admin_user, body="I have this one")
    client = api_as(tech)
    comment = client.post(
        reverse("api:ticket_comments", args=[ticket.pk]),
        {"body": "Looking."},
        format="json",
        headers={"If-Match": 'W/"1"'},
    )
    run = client.post(
        reverse("api:ticket_runs", args=[ticket.pk]),
        {"server": server.pk, "playbook": playbook.pk, "version": 1},
        format="json",
    )
    assert (comment.status_code, run.status_code) == (412, 409)
    assert comment.json()["changes"][0]["body"] == "I have this one"
    assert not ticket.events.filter(kind__in=[EventKind.REPLY, EventKind.COLLECTION]).exists()
    assert not CollectionRun.objects.exists()

    reply = client.post(
        reverse("api:ticket_comments", args=[ticket.pk]), {"body": "Looking.", "version": 2}, format="json"
    )
    assert reply.status_code == 201 and reply.json()["version"] == 3


# --- Servers ----------------------------------------------------------------------------


def test_admins_add_and_change_servers_with_the_browsers_rules(admin_user, customer):
    client = api_as(admin_user)
    created = client.post(
        reverse("api:servers"),
        {"customer": customer.pk, "name": "web1", "address": "Web1.Example.COM", "roles": ["web", "Cache"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert (created.json()["address"], created.json()["roles"]) == ("web1.example.com", ["cache", "web"])
    changed = client.patch(reverse("api:server", args=[created.json()["id"]]), {"ssh_port": 2222}, format="json")
    assert changed.status_code == 200 and changed.json()["ssh_port"] == 2222
    assert changed.json()["roles"] == ["cache", "web"]
    bad = client.post(
        reverse("api:servers"), {"customer": customer.pk, "name": "x", "address": "not an address"}, format="json"
    )
    assert bad.status_code == 400 and "address" in bad.json()
    clash = client.post(
        reverse("api:servers"), {"customer": customer.pk, "name": "web1", "address": "10.0.0.1"}, format="json"
    )
    assert clash.status_code == 400
    nobody = client.post(
        reverse("api:servers"), {"customer": 999999, "name": "x", "address": "10.0.0.1"}, format="json"
    )
    assert nobody.status_code == 400 and "customer" in nobody.json()


def test_servers_list_filters_by_customer_and_pages(tech, customer, server):
    Server.objects.create(customer=customer, name="mx2", address="192.0.2.11")
    client = api_as(tech)
    first = client.get(reverse("api:servers"), {"customer": customer.pk, "page_size": 1}).json()
    second = client.get(first["next"]).json()
    assert [s["name"] for s in first["results"] + second["results"]] == ["mx1", "mx2"]
    assert client.get(reverse("api:server", args=[999999])).status_code == 404


# --- Collections --------------------------------------------------------------------------


def test_starting_a_collection_queues_a_run_and_answers_202(tech, ticket, server, playbook):
    response = api_as(tech).post(
        reverse("api:ticket_runs", args=[ticket.pk]), {"server": server.pk, "playbook": playbook.pk}, format="json"
    )
    assert response.status_code == 202, response.content
    run = CollectionRun.objects.get()
    assert (run.state, run.requested_by, run.playbook_name) == (RunState.QUEUED, tech, "Host health")
    assert response["Location"].endswith(reverse("api:run", args=[run.pk]))
    assert ticket.events.filter(kind=EventKind.COLLECTION).exists()


def test_a_collection_on_another_customers_server_or_unknown_playbook_is_a_400(tech, ticket, playbook):
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    foreign = Server.objects.create(customer=other, name="web1", address="192.0.2.99")
    client = api_as(tech)
    url = reverse("api:ticket_runs", args=[ticket.pk])
    assert client.post(url, {"server": foreign.pk, "playbook": playbook.pk}, format="json").status_code == 400
    assert client.post(url, {"server": 999999, "playbook": playbook.pk}, format="json").status_code == 400
    assert client.post(url, {"server": ticket.servers.get().pk, "playbook": 999999}, format="json").status_code == 400
    playbook.enabled = False
    playbook.save()
    refused = client.post(url, {"server": ticket.servers.get().pk, "playbook": playbook.pk}, format="json")
    assert refused.status_code == 400 and "disabled" in str(refused.json())
    assert not CollectionRun.objects.exists()


def test_a_runs_steps_evidence_and_download(tech, make_run, ticket):
    run = make_run({"load": "up 3 days, load average: 9.1\n", "dmesg": "nothing\n"})
    client = api_as(tech)
    listed = client.get(reverse("api:ticket_runs", args=[ticket.pk])).json()
    assert [r["id"] for r in listed] == [run.pk]
    detail = client.get(reverse("api:run", args=[run.pk])).json()
    assert detail["progress"] == 100 and [s["probe"] for s in detail["steps"]] == ["load", "dmesg"]
    evidence = detail["steps"][0]["evidence"]
    assert evidence["exit_status"] == 0 and evidence["output_bytes"] == 29
    raw = client.get(evidence["download_url"])
    assert raw.status_code == 200 and raw.content == b"up 3 days, load average: 9.1\n"
    assert raw["Content-Type"].startswith("text/plain")
    assert client.get(reverse("api:evidence_raw", args=[run.pk, 7])).status_code == 404
    assert client.get(reverse("api:run", args=[999999])).status_code == 404


def test_a_runs_matches_and_ranked_fixes(tech, kb, make_run):
    symptom = Symptom.objects.filter(enabled=True, recipes__isnull=False).first()
    run = make_run({"load": "up"})
    # Stand in for a real match of the shipped knowledge base: the matcher's own output is tested elsewhere.
    Match.objects.create(
        run=run,
        symptom=symptom,
        score=0.9,
        confidence="high",
        matched=True,
        why="because",
        citations=[{"step": 0, "probe": "load", "line_start": 1, "line_end": 1, "text": "up"}],
        symptom_version=symptom.version,
    )
    run.diagnosed_at = run.finished_at
    run.save(update_fields=["diagnosed_at"])
    body = api_as(tech).get(reverse("api:run_matches", args=[run.pk])).json()
    assert body["terminal"] is True and body["diagnosed"] is True
    assert body["symptoms"][0]["title"] == symptom.title and body["symptoms"][0]["citations"][0]["line"] == 1
    offered = {f["key"] for f in body["fixes"]} | {a for f in body["fixes"] for a in f["alternatives"]}
    assert offered == set(symptom.recipes.values_list("key", flat=True))
    assert all(symptom.key in f["symptoms"] for f in body["fixes"])


# --- Knowledge base ---------------------------------------------------------------------


def test_the_knowledge_base_round_trips_through_export_and_import(admin_user, kb):
    client = api_as(admin_user)
    exported = client.get(reverse("api:kb_export"))
    assert exported.status_code == 200 and exported["Content-Type"].startswith("application/yaml")
    text = exported.content.decode()
    same = client.post(reverse("api:kb_import"), {"yaml": text}, format="json")
    assert same.status_code == 200 and same.json()["changes"] == [] and same.json()["unchanged"] > 0
    edited = text.replace("title: ", "title: Edited ", 1)
    changed = client.post(reverse("api:kb_import"), {"yaml": edited, "note": "from CI"}, format="json")
    assert changed.status_code == 200 and len(changed.json()["changes"]) == 1
    assert client.get(reverse("api:kb_export")).content.decode() == edited


def test_a_bad_knowledge_base_import_lists_every_error_and_changes_nothing(admin_user, kb):
    client = api_as(admin_user)
    before = client.get(reverse("api:kb_export")).content
    broken = client.post(reverse("api:kb_import"), {"yaml": "symptoms: [unclosed"}, format="json")
    assert broken.status_code == 400 and "not valid YAML" in broken.json()["errors"][0]
    document = (
        "symptoms:\n- key: new-one\n  title: New\n  signature: {probe: nope, regex: x}\n"
        "- key: BAD KEY\n  title: Bad\nrecipes: []\n"
    )
    invalid = client.post(reverse("api:kb_import"), {"yaml": document}, format="json")
    assert invalid.status_code == 400 and len(invalid.json()["errors"]) >= 2
    assert client.post(reverse("api:kb_import"), {"yaml": "- a list"}, format="json").status_code == 400
    assert client.get(reverse("api:kb_export")).content == before


# --- Monitoring alerts --------------------------------------------------------------------


def _alert(client, **fields):
    body = {
        "customer": "northwind hosting",
        "server": "192.0.2.10",
        "subject": "Mail queue growing",
        "description": "exim queue at 5000",
        **fields,
    }
    return client.post(reverse("api:alerts"), body, format="json")


def test_an_alert_files_a_ticket_with_its_server_and_requests_a_collection(tech, server, playbook):
    response = _alert(api_as(tech), priority=1)
    assert response.status_code == 201, response.content
    body = response.json()
    ticket = Ticket.objects.get(pk=body["ticket"]["id"])
    assert list(ticket.servers.all()) == [server] and ticket.priority == 1 and ticket.created_by == tech
    run = CollectionRun.objects.get(ticket=ticket)
    assert (body["run"]["id"], run.server, run.playbook) == (run.pk, server, playbook)
    assert body["repeated"] is False and body["collection_error"] == ""


def test_a_repeated_alert_becomes_a_note_while_its_ticket_is_open(tech, server, playbook):
    client = api_as(tech)
    first = _alert(client, dedupe_key="nagios:mx1:queue").json()
    again = _alert(client, dedupe_key="nagios:mx1:queue", description="queue at 9000")
    assert again.status_code == 200 and again.json()["repeated"] is True
    assert again.json()["ticket"]["id"] == first["ticket"]["id"] and again.json()["run"] is None
    ticket = Ticket.objects.get()
    assert ticket.events.filter(kind=EventKind.NOTE, body__contains="queue at 9000").exists()
    assert AlertKey.objects.get().repeats == 1
    services.ticket_change_status(ticket=ticket, status="resolved", by=tech)
    later = _alert(client, dedupe_key="nagios:mx1:queue")
    assert later.status_code == 201 and later.json()["ticket"]["id"] != ticket.pk
    assert Ticket.objects.count() == 2
    other_key = _alert(client, dedupe_key="nagios:mx1:disk")
    assert other_key.status_code == 201 and Ticket.objects.count() == 3


def test_a_repeated_alert_whose_ticket_was_merged_becomes_a_note_on_the_survivor(tech, server, playbook):
    from triage import merging

    client = api_as(tech)
    first = Ticket.objects.get(pk=_alert(client, dedupe_key="nagios:mx1:queue").json()["ticket"]["id"])
    survivor = services.ticket_create(
        subject="Mail queue on mx1", description="Seen by a tech.", customer=first.customer, created_by=tech
    )
    merging.tickets_merge(sources=[first], into=survivor, by=tech)
    again = _alert(client, dedupe_key="nagios:mx1:queue", description="queue at 9000")
    assert again.status_code == 200 and again.json()["ticket"]["id"] == survivor.pk
    assert survivor.events.filter(kind=EventKind.NOTE, body__contains="queue at 9000").exists()
    assert Ticket.objects.count() == 2


def test_an_alert_for_an_unknown_customer_server_or_playbook_is_a_400(tech, server, playbook):
    client = api_as(tech)
    assert "customer" in _alert(client, customer="Nobody Ltd").json()
    assert "server" in _alert(client, server="db9").json()
    assert "playbook" in _alert(client, playbook="No such book").json()
    assert not Ticket.objects.exists()


def test_an_alert_without_the_default_playbook_still_files_the_ticket(tech, server):
    response = _alert(api_as(tech), server="mx1")
    assert response.status_code == 201
    assert response.json()["run"] is None and "default playbook" in response.json()["collection_error"]


def test_evidence_rows_are_untouched_by_reads(tech, make_run):
    run = make_run({"load": "up"})
    api_as(tech).get(reverse("api:run", args=[run.pk]))
    assert Evidence.objects.filter(run=run).count() == 1


def test_a_finished_run_not_yet_diagnosed_says_so_and_offers_no_fixes_yet(tech, kb, make_run):
    from diagnostics.knowledge.diagnosis import run_diagnose
    from tests.test_fixes_view import KERNEL_LOG

    run = make_run({"kernel_log": KERNEL_LOG})
    body = api_as(tech).get(reverse("api:run_matches", args=[run.pk])).json()
    assert (body["terminal"], body["diagnosed"], body["fixes"]) == (True, False, [])
    run_diagnose(run_id=run.pk)
    body = api_as(tech).get(reverse("api:run_matches", args=[run.pk])).json()
    assert body["diagnosed"] is True and body["fixes"][0]["key"] == "bnx2-disable-msi"


def test_a_runs_fixes_are_the_ones_its_ticket_page_shows(tech, kb, make_run, ticket):
    from diagnostics.knowledge.diagnosis import run_diagnose
    from diagnostics.selectors import suggested_fixes
    from tests.test_fixes_view import KERNEL_LOG

    run = make_run({"kernel_log": KERNEL_LOG})
    run_diagnose(run_id=run.pk)
    fixes = api_as(tech).get(reverse("api:run_matches", args=[run.pk])).json()["fixes"]
    page = suggested_fixes(ticket=ticket)  # the ticket's only run: the same diagnosis
    assert fixes and [(f["key"], f["title"], f["score"], f["steps"], f["fits"]) for f in fixes] == [
        (v.key, v.title, v.score, v.steps, v.fits) for v in page
    ]
    assert [f["symptoms"] for f in fixes] == [v.symptom_keys for v in page]
