"""Inputs that used to answer 500 now answer a page or a 4xx with a message; and the token endpoint
gives one answer for a wrong password and a right password of a user with no role (no oracle)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from diagnostics import services
from tests.conftest import login


@pytest.fixture(autouse=True)
def _fresh_throttles():
    from django.core.cache import cache

    cache.clear()


def test_the_audit_page_shows_a_customer_wide_credential(client, admin_user, server):
    services.credential_set(customer=server.customer, kind="password", secret="s3cret-pass", by=admin_user)
    page = login(client, admin_user).get(reverse("audit"))
    assert page.status_code == 200
    assert b"credential_set" in page.content


def test_a_known_hosts_line_of_an_unknown_key_type_is_skipped_not_a_500(client, admin_user, server):
    # Valid base64 whose key blob names a type paramiko does not know.
    text = f"{server.address} ssh-unknown AAAAC3NzaC11bmtub3duAAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    page = login(client, admin_user).post(reverse("host_keys_import", args=[server.pk]), {"kh-known_hosts": text})
    assert page.status_code == 400
    assert b"No line lists a key" in page.content


@pytest.mark.parametrize("endpoint", ["api:token_login", "api:tickets"])
def test_deeply_nested_json_is_refused_with_400_not_a_500(endpoint, db):
    body = "[" * 1000 + "]" * 1000
    client = APIClient()
    client.raise_request_exception = False
    answer = client.post(reverse(endpoint), body, content_type="application/json")
    assert answer.status_code in (400, 401)
    if answer.status_code == 400:
        assert "nested" in answer.json()["detail"]


def test_nesting_that_parses_but_is_absurd_is_refused_too(tech):
    body = "[" * 200 + "]" * 200
    client = APIClient()
    answer = client.post(reverse("api:token_login"), body, content_type="application/json")
    assert answer.status_code == 400 and "nested" in answer.json()["detail"]


def test_a_right_password_without_a_role_answers_as_a_wrong_one(outsider):
    client = APIClient()
    wrong = client.post(reverse("api:token_login"), {"username": "olly", "password": "not-it-at-all"}, format="json")
    right = client.post(
        reverse("api:token_login"), {"username": "olly", "password": "correct-horse-battery"}, format="json"
    )
    assert (
        (right.status_code, right.json())
        == (wrong.status_code, wrong.json())
        == (400, {"detail": "Wrong user name or password."})
    )
