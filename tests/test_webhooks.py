"""Outbound webhooks against a real HTTP receiver on loopback.

The receiver verifies each request the way the README tells integrators to, with its own
code (hmac over "timestamp.body"), so a signing change that breaks receivers fails here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from diagnostics.knowledge import services as knowledge
from diagnostics.knowledge.diagnosis import run_diagnose
from diagnostics.models import CollectionRun, Evidence, RunState
from diagnostics.services.runs import _finish
from tests.conftest import login
from triage import events
from triage import services as desk
from webhooks import services, tasks
from webhooks.models import Delivery, DeliveryState, Endpoint, EventType

ALL_EVENTS = list(EventType.values)


def receiver_verifies(*, secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    """The README's receiver check, verbatim."""
    timestamp = headers["X-Triage-Timestamp"]
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance
    return fresh and hmac.compare_digest(expected, headers["X-Triage-Signature"])


class Receiver:
    """A real HTTP server in a thread: answers from a script, records every request it got."""

    def __init__(self):
        self.script: list[tuple[int, dict, bytes]] = []
        self.requests: list[dict] = []
        self.secret = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "json": json.loads(body),
                        "verified": receiver_verifies(secret=receiver.secret, headers=self.headers, body=body),
                    }
                )
                status, headers, text = receiver.script.pop(0) if receiver.script else (204, {}, b"")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/triage"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def answer(self, status: int, body: bytes = b"", **headers):
        self.script.append((status, headers, body))


@pytest.fixture(autouse=True)
def _loopback_receivers_allowed(settings):
    # The receiver listens on loopback, which production refuses (tests/test_webhooks_targets.py).
    settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def endpoint(receiver, admin_user):
    endpoint, secret = services.endpoint_create(name="Portal", url=receiver.url, event_types=ALL_EVENTS, by=admin_user)
    receiver.secret = secret
    return endpoint


def send_all(*, now=None) -> list:
    """What the worker does for every due delivery (the tasks are called directly)."""
    return [
        services.delivery_attempt(delivery_id=pk, now=now)
        for pk in Delivery.objects.order_by("pk").values_list("pk", flat=True)
    ]


def only_delivery(event_type: str) -> Delivery:
    return Delivery.objects.get(event_type=event_type)


# --- Events ------------------------------------------------------------------------------


def test_filing_a_ticket_sends_a_signed_ticket_created(
    endpoint, receiver, customer, server, tech, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as enqueued:
        ticket = desk.ticket_create(
            subject="Mail <b>slow</b>",
            description="30 s",
            customer=customer,
            servers=[server],
            tag_names=["mail"],
            created_by=tech,
        )
    assert enqueued, "the delivery is handed to the broker on commit"
    delivery = only_delivery(EventType.TICKET_CREATED)
    tasks.deliver(delivery.pk)

    [request] = receiver.requests
    assert request["verified"]
    assert request["path"] == "/hooks/triage"
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("Triage-Webhooks/")
    assert headers["X-Triage-Event"] == "ticket.created"
    assert headers["X-Triage-Delivery"] == str(delivery.event_id) == request["json"]["id"]
    data = request["json"]["data"]
    assert data["ticket"]["id"] == ticket.pk
    assert data["ticket"]["subject"] == "Mail <b>slow</b>"
    assert data["ticket"]["servers"] == ["mx1"] and data["ticket"]["tags"] == ["mail"]
    assert data["ticket"]["customer"]["name"] == customer.name
    assert data["actor"] == tech.username
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.DELIVERED, 1, 204)
    assert delivery.delivered_at is not None and delivery.last_duration is not None


def test_a_public_reply_sends_ticket_updated_with_the_reply(endpoint, receiver, ticket, tech):
    Delivery.objects.all().delete()
    desk.ticket_reply(ticket=ticket, author=tech, body="We are on it.")
    send_all()
    # The first public reply also moves the new ticket to triaging: a second update, after the reply.
    request, moved = receiver.requests
    assert request["verified"] and request["headers"]["X-Triage-Event"] == "ticket.updated"
    assert request["json"]["data"]["change"] == {"kind": "reply", "body": "We are on it."}
    assert moved["json"]["data"]["change"] == {"kind": "status", "from": "new", "to": "triaging"}


def test_status_changes_say_from_and_to_but_not_the_internal_note(endpoint, receiver, ticket, tech):
    Delivery.objects.all().delete()
    desk.ticket_change_status(ticket=ticket, status="triaging", by=tech, note="customer is on old exim")
    send_all()
    change = receiver.requests[0]["json"]["data"]["change"]
    assert change == {"kind": "status", "from": "new", "to": "triaging"}
    assert "exim" not in receiver.requests[0]["body"].decode()


def test_an_internal_note_sends_nothing(endpoint, ticket, tech):
    Delivery.objects.all().delete()
    desk.ticket_add_note(ticket=ticket, author=tech, body="root password is in the vault")
    assert not Delivery.objects.exists()


def test_endpoints_receive_only_what_they_subscribe_to_and_their_customer(receiver, admin_user, customer, tech):
    from triage.models import Customer, SlaTier

    other = Customer.objects.create(name="Elsewhere", sla_tier=SlaTier.objects.get(name="Gold"))
    services.endpoint_create(name="Created only", url=receiver.url, event_types=["ticket.created"])
    services.endpoint_create(name="Other customer", url=receiver.url, event_types=ALL_EVENTS, customer=other)
    ticket = desk.ticket_create(subject="s", description="d", customer=customer, created_by=tech)
    desk.ticket_reply(ticket=ticket, author=tech, body="hi")
    assert list(Delivery.objects.values_list("endpoint__name", "event_type")) == [("Created only", "ticket.created")]


def test_a_finished_collection_and_its_fixes_are_each_sent(endpoint, receiver, ticket, server, admin_user):
    knowledge.symptom_save(
        data={"key": "slow-host", "title": "Slow host", "signature": {"probe": "load", "regex": "up"}}, by=admin_user
    )
    knowledge.recipe_save(
        data={"key": "reboot-it", "title": "Reboot <it>", "fixes": ["slow-host"], "steps": ["Reboot."]}, by=admin_user
    )
    run = CollectionRun.objects.create(
        ticket=ticket,
        server=server,
        playbook_name="Host health",
        steps=[{"probe": "load", "params": {}}, {"probe": "mounts", "params": {}}],
        state=RunState.RUNNING,
    )
    Evidence.objects.create(run=run, step=0, probe="load", command="uptime", exit_status=0, output=b"up 1 day")
    Delivery.objects.all().delete()

    _finish(run, state=RunState.PARTIAL, reason="1 probe(s) did not finish (mounts).", kind="incomplete")
    run_diagnose(run_id=run.pk)  # the step after collection, as run_execute takes it
    send_all()

    by_event = {r["headers"]["X-Triage-Event"]: r for r in receiver.requests}
    assert set(by_event) == {"collection.finished", "fix.suggested"}
    assert all(r["verified"] for r in receiver.requests)
    finished = by_event["collection.finished"]["json"]["data"]["run"]
    assert finished["id"] == run.pk and finished["state"] == "partial"
    assert finished["reason"] == "1 probe(s) did not finish (mounts)." and finished["failure_kind"] == "incomplete"
    assert finished["counts"] == {"probes": 2, "stored": 1, "succeeded": 1, "timed_out": 0, "truncated": 0}
    fixes = by_event["fix.suggested"]["json"]["data"]
    assert fixes["run"]["id"] == run.pk
    [recipe] = fixes["recipes"]
    assert recipe["key"] == "reboot-it" and recipe["title"] == "Reboot <it>"
    assert 0 < recipe["score"] <= 1 and recipe["symptoms"] == [{"key": "slow-host", "title": "Slow host"}]


def test_a_fixes_suggested_publication_alone_records_a_delivery(endpoint, make_run):
    run = make_run({"load": "up"})
    events.fixes_suggested(run=run, recipe_ids=[])
    assert only_delivery(EventType.FIX_SUGGESTED).payload["data"]["recipes"] == []


def test_a_rolled_back_write_records_and_sends_nothing(endpoint, customer, tech, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as enqueued, pytest.raises(RuntimeError), transaction.atomic():
        desk.ticket_create(subject="s", description="d", customer=customer, created_by=tech)
        raise RuntimeError("the writer failed")
    assert not Delivery.objects.exists()
    assert enqueued == []


# --- Sending ----------------------------------------------------------------------------


def a_pending_delivery(endpoint) -> Delivery:
    return services.endpoint_send_test(endpoint=endpoint)


def test_a_500_is_retried_with_backoff_then_delivered(endpoint, receiver, settings):
    settings.TRIAGE_WEBHOOK_BACKOFF_BASE = 10
    receiver.answer(500, b"database down")
    delivery = a_pending_delivery(endpoint)
    now = timezone.now()
    first = services.delivery_attempt(delivery_id=delivery.pk, now=now)
    delivery.refresh_from_db()
    assert first.state == DeliveryState.PENDING and 5 <= first.retry_in <= 10
    assert delivery.attempts == 1 and delivery.last_status == 500 and delivery.response_excerpt == ""
    assert now + timedelta(seconds=5) <= delivery.next_attempt_at <= now + timedelta(seconds=10)
    assert services.delivery_attempt(delivery_id=delivery.pk, now=now) is None, "not due before its backoff"

    second = services.delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert second.state == delivery.state == DeliveryState.DELIVERED
    assert delivery.attempts == 2 and len(receiver.requests) == 2
    assert receiver.requests[0]["json"]["id"] == receiver.requests[1]["json"]["id"], "same idempotency key"
    assert all(r["verified"] for r in receiver.requests)


def test_backoff_doubles_and_is_capped(settings):
    settings.TRIAGE_WEBHOOK_BACKOFF_BASE, settings.TRIAGE_WEBHOOK_BACKOFF_MAX = 30, 100
    assert [
        15 <= services.backoff_seconds(1) <= 30,
        30 <= services.backoff_seconds(2) <= 60,
        50 <= services.backoff_seconds(5) <= 100,
    ] == [True, True, True]


def test_it_gives_up_after_the_configured_attempts(endpoint, receiver, settings):
    settings.TRIAGE_WEBHOOK_MAX_ATTEMPTS = 3
    for _ in range(3):
        receiver.answer(503)
    delivery = a_pending_delivery(endpoint)
    when = timezone.now()
    for _ in range(3):
        services.delivery_attempt(delivery_id=delivery.pk, now=when)
        when += timedelta(hours=2)
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.GAVE_UP and delivery.attempts == 3
    assert "gave up after 3 attempts" in delivery.last_error
    assert services.delivery_attempt(delivery_id=delivery.pk, now=when) is None
    assert len(receiver.requests) == 3


def test_410_gone_disables_the_endpoint_and_says_so(endpoint, receiver):
    receiver.answer(410)
    delivery = a_pending_delivery(endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED and "410 Gone" in delivery.last_error
    assert not endpoint.enabled and "410 Gone" in endpoint.disabled_reason
    assert services.subscribed_endpoints(event_type="ticket.created", customer_id=None) == []


def test_a_disabled_endpoint_holds_its_deliveries_until_enabled(endpoint, receiver):
    delivery = a_pending_delivery(endpoint)
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False)
    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    assert services.deliveries_requeue_due() == 0 and receiver.requests == []
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=True)
    assert services.delivery_attempt(delivery_id=delivery.pk).state == DeliveryState.DELIVERED


def test_other_4xx_answers_are_final(endpoint, receiver):
    receiver.answer(400, b"bad signature")
    delivery = a_pending_delivery(endpoint)
    assert services.delivery_attempt(delivery_id=delivery.pk).retry_in is None
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED and "not retried" in delivery.last_error


def test_429_honours_retry_after_within_the_bound(endpoint, receiver, settings):
    settings.TRIAGE_WEBHOOK_RETRY_AFTER_MAX = 120
    receiver.answer(429, **{"Retry-After": "90"})
    receiver.answer(429, **{"Retry-After": "86400"})
    delivery = a_pending_delivery(endpoint)
    assert services.delivery_attempt(delivery_id=delivery.pk).retry_in == 90
    delivery.refresh_from_db()
    assert services.delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at).retry_in == 120


def test_redirects_are_not_followed(endpoint, receiver):
    receiver.answer(302, Location="http://elsewhere.test/steal")
    delivery = a_pending_delivery(endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED and "not followed" in delivery.last_error
    assert len(receiver.requests) == 1


def test_a_receiver_that_never_answers_is_bounded(admin_user, settings):
    settings.TRIAGE_WEBHOOK_READ_TIMEOUT = 0.5
    with socket.socket() as silent:  # accepts connections (backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint, _ = services.endpoint_create(
            name="Silent", url=f"http://127.0.0.1:{silent.getsockname()[1]}/", event_types=ALL_EVENTS
        )
        delivery = a_pending_delivery(endpoint)
        attempt = services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    # Bounded by the read timeout, as the recorded error says (the time it took belongs in bench/).
    assert attempt.state == DeliveryState.PENDING and "timed out after 0.5 s" in delivery.last_error


def test_a_claimed_delivery_is_not_sent_twice(endpoint, receiver):
    delivery = a_pending_delivery(endpoint)
    now = timezone.now()
    assert services.delivery_claim(delivery_id=delivery.pk, now=now)  # another worker holds it
    assert services.delivery_attempt(delivery_id=delivery.pk, now=now) is None
    assert receiver.requests == []


def test_a_delivered_delivery_is_not_sent_again(endpoint, receiver):
    delivery = a_pending_delivery(endpoint)
    now = timezone.now()
    results = [services.delivery_attempt(delivery_id=delivery.pk, now=now) for _ in range(2)]
    assert [r is None for r in results] == [False, True]
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_delivery_send_it_once(receiver, roles):
    from django.db import connection

    endpoint, receiver.secret = services.endpoint_create(name="Race", url=receiver.url, event_types=ALL_EVENTS)
    delivery = a_pending_delivery(endpoint)
    start = threading.Barrier(4)
    results = []

    def worker():
        try:
            start.wait()
            results.append(services.delivery_attempt(delivery_id=delivery.pk))
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(r is None for r in results) == [False, True, True, True]
    assert len(receiver.requests) == 1 and receiver.requests[0]["verified"]


def test_a_worker_that_died_mid_send_lets_the_sweeper_send_it(endpoint, receiver, settings):
    delivery = a_pending_delivery(endpoint)
    then = timezone.now() - timedelta(seconds=settings.TRIAGE_WEBHOOK_TOTAL_TIMEOUT + 60)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=then)
    assert services.delivery_claim(delivery_id=delivery.pk, now=then)
    assert services.delivery_attempt(delivery_id=delivery.pk).state == DeliveryState.DELIVERED


def test_the_sweeper_requeues_only_due_pending_deliveries(endpoint, receiver):
    due = a_pending_delivery(endpoint)
    later = a_pending_delivery(endpoint)
    Delivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    done = a_pending_delivery(endpoint)
    services.delivery_attempt(delivery_id=done.pk)
    assert services.deliveries_requeue_due() == 1
    assert due.pk in services._due(timezone.now()).values_list("pk", flat=True)


def test_redelivery_is_a_new_row_with_the_same_event_id(endpoint, receiver, django_capture_on_commit_callbacks):
    delivery = a_pending_delivery(endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    with django_capture_on_commit_callbacks():
        again = services.delivery_redeliver(delivery=delivery)
    services.delivery_attempt(delivery_id=again.pk)
    assert [r["headers"]["X-Triage-Delivery"] for r in receiver.requests] == [str(delivery.event_id)] * 2
    assert all(r["verified"] for r in receiver.requests)


def test_the_secret_is_encrypted_at_rest_and_rotation_takes_effect(endpoint, receiver):
    secret = receiver.secret
    assert secret.encode() not in bytes(Endpoint.objects.get(pk=endpoint.pk).secret_token)
    receiver.secret = services.endpoint_rotate_secret(endpoint=endpoint)
    services.delivery_attempt(delivery_id=a_pending_delivery(endpoint).pk)
    assert receiver.requests[0]["verified"] and receiver.secret != secret


# --- Admin pages --------------------------------------------------------------------------


def test_creating_an_endpoint_shows_the_secret_once(client, admin_user):
    login(client, admin_user)
    response = client.post(
        reverse("webhook_new"),
        {"name": "Portal", "url": "https://portal.test/hook", "event_types": ["ticket.created"], "enabled": "on"},
    )
    assert response.status_code == 200
    endpoint = Endpoint.objects.get(name="Portal")
    secret = endpoint.secret()
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    for url in (
        reverse("webhook_deliveries", args=[endpoint.pk]),
        reverse("webhook_edit", args=[endpoint.pk]),
        reverse("webhooks"),
    ):
        assert secret not in client.get(url).content.decode()
    rotated = client.post(reverse("webhook_rotate", args=[endpoint.pk])).content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret() in rotated and endpoint.secret() != secret


def test_a_bad_url_is_explained_and_keeps_what_was_typed(client, admin_user):
    login(client, admin_user)
    response = client.post(
        reverse("webhook_new"), {"name": "Portal", "url": "ftp://portal.test/hook", "event_types": ["ticket.created"]}
    )
    page = response.content.decode()
    assert response.status_code == 400 and "Enter an http:// or https:// URL." in page
    assert 'value="ftp://portal.test/hook"' in page and not Endpoint.objects.exists()


def test_the_delivery_log_escapes_names_and_never_shows_what_the_receiver_said(client, admin_user, endpoint, receiver):
    receiver.answer(500, b"<script>alert(1)</script>")
    services.delivery_attempt(delivery_id=a_pending_delivery(endpoint).pk)
    Endpoint.objects.filter(pk=endpoint.pk).update(name="<img src=x onerror=alert(2)>")
    login(client, admin_user)
    page = client.get(reverse("webhook_deliveries", args=[endpoint.pk])).content.decode()
    assert "alert(1)" not in page and "HTTP 500 Internal Server Error" in page
    assert "<img src=x" not in page and "&lt;img src=x" in page


def test_send_test_event_and_redeliver_from_the_page(
    client, admin_user, endpoint, receiver, django_capture_on_commit_callbacks
):
    login(client, admin_user)
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(reverse("webhook_test", args=[endpoint.pk])).status_code == 302
    delivery = Delivery.objects.get(event_type="ping")
    services.delivery_attempt(delivery_id=delivery.pk)
    assert receiver.requests[0]["verified"] and receiver.requests[0]["json"]["type"] == "ping"
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("webhook_redeliver", args=[endpoint.pk, delivery.pk]))
    assert Delivery.objects.filter(redelivery_of=delivery).count() == 1
    page = client.get(reverse("webhook_deliveries", args=[endpoint.pk])).content.decode()
    assert page.index("Pending") < page.index("Delivered"), "newest first"
