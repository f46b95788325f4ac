"""Rate limits: the API's throttles and the browser login's limiter answer 429 with Retry-After."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from api.services import token_create


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
        }

    return set_rates


def test_password_logins_for_tokens_are_throttled_per_address(tech, rates):
    rates(token="3/minute")
    client = APIClient()
    codes = [
        client.post(reverse("api:token_login"), {"username": "tess", "password": "guess"}, format="json").status_code
        for _ in range(4)
    ]
    assert codes == [400, 400, 400, 429]
    refused = client.post(
        reverse("api:token_login"), {"username": "tess", "password": "correct-horse-battery"}, format="json"
    )
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    other_address = APIClient(REMOTE_ADDR="192.0.2.200")
    assert (
        other_address.post(
            reverse("api:token_login"), {"username": "tess", "password": "correct-horse-battery"}, format="json"
        ).status_code
        == 201
    )


def test_creating_tokens_is_throttled_but_listing_them_is_not(tech, rates):
    rates(token="2/minute")
    client = APIClient()
    client.force_authenticate(tech)
    assert [client.post(reverse("api:tokens"), {"name": "t"}, format="json").status_code for _ in range(3)] == [
        201,
        201,
        429,
    ]
    assert client.get(reverse("api:tokens")).status_code == 200


def test_the_whole_api_is_throttled_per_user(tech, admin_user, rates):
    rates(api="3/minute")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=tech, name='t')[1]}")
    assert [client.get(reverse("api:tickets")).status_code for _ in range(4)] == [200, 200, 200, 429]
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=admin_user, name='t')[1]}")
    assert other.get(reverse("api:tickets")).status_code == 200


def _login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_the_login_form_refuses_after_repeated_failures_for_one_user(client, tech, settings):
    settings.TRIAGE_LOGIN_ATTEMPTS = 3
    assert [_login(client, "tess", "wrong").status_code for _ in range(3)] == [200, 200, 200]
    refused = _login(client, "TESS", "correct-horse-battery")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= settings.TRIAGE_LOGIN_WINDOW_SECONDS
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not locked out by tess's failures.
    assert _login(client, "ada", "wrong").status_code == 200


def test_a_successful_login_clears_the_users_failures(client, tech, settings):
    settings.TRIAGE_LOGIN_ATTEMPTS = 3
    _login(client, "tess", "wrong")
    _login(client, "tess", "wrong")
    assert _login(client, "tess", "correct-horse-battery").status_code == 302
    client.logout()
    assert [_login(client, "tess", "wrong").status_code for _ in range(3)] == [200, 200, 200]


def test_the_login_form_limits_one_address_across_user_names(client, db, settings):
    settings.TRIAGE_LOGIN_ATTEMPTS_PER_ADDRESS = 4
    assert [_login(client, f"user{n}", "wrong").status_code for n in range(5)] == [200, 200, 200, 200, 429]


def test_the_login_limit_ends_with_its_window(client, tech, settings, monkeypatch):
    import time

    settings.TRIAGE_LOGIN_ATTEMPTS = 1
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    _login(client, "tess", "wrong")
    assert _login(client, "tess", "wrong").status_code == 429
    monkeypatch.setattr(time, "time", lambda: now + settings.TRIAGE_LOGIN_WINDOW_SECONDS + 1)
    assert _login(client, "tess", "correct-horse-battery").status_code == 302


def test_without_trusted_proxies_a_forged_forwarded_for_does_not_dodge_the_limit(client, tech, settings):
    settings.TRIAGE_LOGIN_ATTEMPTS = 2
    codes = [
        client.post(
            reverse("login"), {"username": "tess", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(3)
    ]
    assert codes == [200, 200, 429]
