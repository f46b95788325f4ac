"""Pages fit the window: no sideways scrolling on a 1,440 to 1,024 px desktop, and the queue, a ticket, the
webhook pages and the playbook editor work on a 390 px phone (headless chromium, the live server)."""

from __future__ import annotations

import pytest

from diagnostics.models import Playbook
from tests.browser import BROWSER_MARKS, sign_in
from triage import services
from webhooks.models import Delivery, Endpoint

pytestmark = [*BROWSER_MARKS, pytest.mark.django_db(transaction=True)]

LONG = "Mail from noreply@very-long-subdomain.example-customer-hosting.co.uk sits in the queue " * 2


@pytest.fixture
def busy_desk(customer, tech, ticket):
    for n in range(12):
        services.ticket_create(subject=f"{LONG} {n}", description=LONG, customer=customer, created_by=tech)
    services.ticket_add_note(ticket=ticket, author=tech, body="x" * 300 + " " + LONG)
    return ticket


def _overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.fixture
def webhook_log(db):
    endpoint = Endpoint.objects.create(
        name="Ops chat",
        url="https://hooks.example.test/" + "a" * 200,
        secret_token=b"x",
        event_types=["ticket.created"],
    )
    for _ in range(3):
        Delivery.objects.create(
            endpoint=endpoint,
            event_type="ticket.created",
            payload={"subject": LONG},
            state="failed",
            attempts=5,
            last_status=502,
            last_error="x" * 400,
            response_excerpt="<html>" + "y" * 2000,
        )
    return endpoint


@pytest.fixture
def long_playbook(db):
    bpf = "tcp port 25 and tcp[tcpflags] & (tcp-syn|tcp-rst) != 0 and not host 192.0.2.1 " * 3
    return Playbook.objects.create(
        name="Mail queue growing on the very-long-subdomain.example relays",
        description=LONG,
        steps=[
            {"probe": "tcpdump", "params": {"interface": "any", "seconds": 20, "count": 2000, "bpf": bpf.strip()}},
            {"probe": "log_tail", "params": {"log_path": "/var/log/exim4/rejectlog", "lines": 500}},
        ],
    )


def _admin_pages(webhook_log, long_playbook) -> tuple[str, ...]:
    return (
        "/webhooks/",
        "/webhooks/new/",
        f"/webhooks/{webhook_log.pk}/",
        f"/webhooks/{webhook_log.pk}/edit/",
        "/playbooks/",
        "/playbooks/new/",
        f"/playbooks/{long_playbook.pk}/",
    )


@pytest.mark.parametrize("width", [1440, 1366, 1280, 1024])
def test_desk_pages_do_not_scroll_sideways_on_a_desktop(page, admin_user, busy_desk, webhook_log, long_playbook, width):
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, admin_user, then="/")  # the admin: the longest navigation bar
    for path in ("/", "/tickets/", f"/tickets/{busy_desk.pk}/", *_admin_pages(webhook_log, long_playbook)):
        page.goto(path)
        assert _overflow(page) <= 0, f"{path} at {width} px scrolls sideways by {_overflow(page)} px"


def test_the_webhook_pages_and_the_playbook_editor_fit_a_phone(page, admin_user, webhook_log, long_playbook):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, admin_user, then="/webhooks/")
    for path in _admin_pages(webhook_log, long_playbook):
        page.goto(path)
        assert _overflow(page) <= 0, f"{path} at 390 px scrolls sideways by {_overflow(page)} px"
    # The signing secret shown once after a rotation, and the editor with a step added by its script.
    page.goto(f"/webhooks/{webhook_log.pk}/")
    page.click("button:has-text('Rotate secret')")
    page.wait_for_selector("#webhook-secret")
    assert _overflow(page) <= 0, f"the new secret's page at 390 px scrolls sideways by {_overflow(page)} px"
    page.goto(f"/playbooks/{long_playbook.pk}/")
    page.click("button:has-text('Add step')")
    page.locator("[data-step-row]").nth(2).locator("select").select_option("strace")
    assert _overflow(page) <= 0, f"the playbook editor at 390 px scrolls sideways by {_overflow(page)} px"


def test_the_queue_and_a_ticket_fit_a_phone(page, tech, busy_desk):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, tech, then="/tickets/")
    for path in ("/tickets/", f"/tickets/{busy_desk.pk}/"):
        page.goto(path)
        assert _overflow(page) <= 0, f"{path} at 390 px scrolls sideways by {_overflow(page)} px"


def test_the_delivery_log_breaks_short_cells_between_words_not_letters(page, admin_user, webhook_log):
    # A long error once squeezed every other column to a letter's width ("Re/de/liv/er").
    page.set_viewport_size({"width": 1024, "height": 900})
    sign_in(page, admin_user, then=f"/webhooks/{webhook_log.pk}/")
    button = page.locator("button:has-text('Redeliver')").first.bounding_box()
    assert button["height"] < 45, f"the Redeliver button wraps ({button['height']} px high)"
    error = page.locator(".cell-scroll").first.bounding_box()
    assert error["width"] >= 180 and error["height"] <= 140  # wraps in its cell, bounded, scrolls inside
