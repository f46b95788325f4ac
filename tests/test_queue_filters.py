"""The queue's filters have one definition (triage.forms.QueueFilterForm): the browser's queue and
GET /api/v1/tickets/ accept the same values and refuse the same ones with the same messages, and the
API schema describes the form's fields."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from tests.conftest import login
from tests.test_api import api_as
from triage import services

# Rows from the browser's form and rows the API's own serializer used to refuse, side by side:
# before they shared one definition, an assignee of 13 to 20 characters passed the API only.
REFUSED = [
    {"assignee": "1" * 13},  # longer than any user id
    {"assignee": "bob"},
    {"assignee": "١٢"},  # digits, but not ASCII ones
    {"priority": "9"},
    {"status": "bogus"},
    {"customer": "999999"},
    {"customer": "x"},
    {"customer": str(2**70)},  # past any id column
    {"tag": "no spaces!"},
    {"sort": "random"},
    {"q": "x" * 201},
    {"q": "a\x00b"},
    {"cursor": "c" * 501},
    {"assignee": "bob", "priority": "9"},  # every error, not only the first
]

ACCEPTED = [
    {"assignee": "1" * 12},
    {"assignee": " me "},
    {"status": ""},
    {"status": "all", "sort": "newest"},
    {"tag": "MAIL"},
    {"at_risk": "false"},
    {"at_risk": "no"},
    {"at_risk": "on"},
    {"q": "#12"},
]


def _browser_errors(client, params) -> list[str]:
    page = client.get(reverse("queue"), params).content.decode()
    box = re.search(r'<div class="form-errors" role="alert">(.*?)</div>', page, re.S)
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", box.group(1))] if box else []


def _api_errors(tech, params) -> list[str]:
    response = api_as(tech).get(reverse("api:tickets"), params)
    if response.status_code == 200:
        return []
    assert response.status_code == 400, response.content
    return [f"{field}: {message}" for field, messages in response.json().items() for message in messages]


@pytest.mark.parametrize("params", REFUSED, ids=lambda p: ",".join(f"{k}={v[:12]!r}" for k, v in p.items()))
def test_a_value_either_refuses_both_refuse_with_the_same_message(client, tech, customer, params):
    login(client, tech)
    browser = _browser_errors(client, params)
    assert browser, "the browser's queue accepted it"
    assert sorted(_api_errors(tech, params)) == sorted(browser)


@pytest.mark.parametrize("params", ACCEPTED, ids=lambda p: ",".join(f"{k}={v!r}" for k, v in p.items()))
def test_a_value_either_accepts_both_accept(client, tech, customer, params):
    login(client, tech)
    assert _browser_errors(client, params) == []
    assert _api_errors(tech, params) == []


def test_the_assignee_message_is_the_same_for_a_person_and_a_program(client, tech):
    login(client, tech)
    message = 'assignee: Choose "me", "none" (unassigned) or a user id.'
    assert _browser_errors(client, {"assignee": "bob"}) == [message]
    assert _api_errors(tech, {"assignee": "bob"}) == [message]


def test_at_risk_no_means_the_whole_queue_in_both(client, tech, customer):
    ticket = services.ticket_create(subject="Calm", description="x", customer=customer, created_by=tech)
    login(client, tech)
    assert ticket.subject in client.get(reverse("queue"), {"at_risk": "no"}).content.decode()
    results = api_as(tech).get(reverse("api:tickets"), {"at_risk": "no"}).json()["results"]
    assert [t["id"] for t in results] == [ticket.pk]


def test_the_api_schema_describes_the_forms_fields(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/tickets/"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert set(params) == {
        "status",
        "priority",
        "assignee",
        "customer",
        "tag",
        "at_risk",
        "q",
        "sort",
        "cursor",
        "page_size",
    }
    assert params["assignee"]["maxLength"] == 12 and params["q"]["maxLength"] == 200
    assert params["cursor"]["maxLength"] == 500 and params["tag"]["maxLength"] == 40
    assert params["status"]["default"] == "open" and "all" in params["status"]["enum"]
    assert params["sort"]["default"] == "due" and set(params["sort"]["enum"]) >= {"due", "newest", "priority"}
    assert params["priority"]["enum"] == [1, 2, 3, 4]
    assert params["customer"]["type"] == "integer" and params["at_risk"]["type"] == "boolean"
    assert params["page_size"]["maximum"] == 100
    descriptions = {p["name"]: p.get("description", "") for p in operation["parameters"]}
    assert '"me"' in descriptions["assignee"]
