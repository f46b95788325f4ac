"""Webhook targets: loopback, private, link-local and other non-public addresses are refused
(SSRF by an admin), when the endpoint is saved and again at each delivery, after resolving the
name, for IPv4 and IPv6 (mapped addresses included); and what a receiver answers is not shown.

The real receiver of tests/test_webhooks.py listens on loopback, which is exactly what a
delivery must refuse unless TRIAGE_WEBHOOK_ALLOW_PRIVATE says otherwise.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.conftest import login
from tests.test_webhooks import ALL_EVENTS, Receiver
from webhooks import services
from webhooks.models import Delivery, DeliveryState, Endpoint


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.9/hook",
        "http://172.16.5.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "https://[2002:7f00:1::]/",
    ],
)
def test_an_endpoint_to_a_non_public_address_is_refused(url, admin_user, settings):
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError, match="public addresses only"):
        services.endpoint_create(name="Inside", url=url, event_types=ALL_EVENTS, by=admin_user)
    assert not Endpoint.objects.exists()


def test_public_addresses_and_names_not_resolvable_yet_are_accepted(admin_user, settings):
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = False
    for n, url in enumerate(
        ["https://93.184.215.14/hook", "https://[2606:4700::6810:84e5]/hook", "https://portal.invalid/hook"]
    ):
        services.endpoint_create(name=f"Public {n}", url=url, event_types=ALL_EVENTS, by=admin_user)
    assert Endpoint.objects.count() == 3


def test_the_form_explains_the_refusal(client, admin_user, settings):
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = False
    page = login(client, admin_user).post(
        reverse("webhook_new"),
        {"name": "Metadata", "url": "http://169.254.169.254/", "event_types": ["ticket.created"]},
    )
    assert page.status_code == 400 and b"link-local address" in page.content


def test_a_delivery_to_a_name_that_now_resolves_to_loopback_is_not_sent(receiver, admin_user, settings):
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = True  # saved while allowed (or the name resolved elsewhere then)
    endpoint, _ = services.endpoint_create(
        name="Rebound", url=receiver.url.replace("127.0.0.1", "localhost"), event_types=ALL_EVENTS, by=admin_user
    )
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = False
    delivery = services.endpoint_send_test(endpoint=endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.state == DeliveryState.FAILED, "final: the same address gets the same refusal"
    assert "localhost resolves to 127.0.0.1, which is a loopback address" in delivery.last_error


def test_allowed_private_targets_are_delivered(receiver, admin_user, settings):
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = True
    endpoint, secret = services.endpoint_create(name="Lab", url=receiver.url, event_types=ALL_EVENTS, by=admin_user)
    receiver.secret = secret
    delivery = services.endpoint_send_test(endpoint=endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    assert Delivery.objects.get(pk=delivery.pk).state == DeliveryState.DELIVERED
    assert receiver.requests[0]["verified"]


def test_what_the_receiver_answers_is_not_kept_or_shown(client, receiver, admin_user, settings):
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = True
    endpoint, _ = services.endpoint_create(name="Lab", url=receiver.url, event_types=ALL_EVENTS, by=admin_user)
    receiver.answer(403, b"root:x:0:0:internal-secret")
    delivery = services.endpoint_send_test(endpoint=endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_status == 403 and delivery.last_error.startswith("HTTP 403 Forbidden")
    assert delivery.response_excerpt == ""
    page = login(client, admin_user).get(reverse("webhook_deliveries", args=[endpoint.pk])).content.decode()
    assert "internal-secret" not in page and "HTTP 403 Forbidden" in page
