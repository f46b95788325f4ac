"""Pages fit the window: no sideways scrolling on a 1,440 to 1,024 px desktop, and the queue and a
ticket work on a 390 px phone (headless chromium, the live server)."""

from __future__ import annotations

import pytest

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
    endpoint = Endpoint.objects.create(name="Ops chat", url="https://hooks.example.test/" + "a" * 200,
                                       secret_token=b"x", event_types=["ticket.created"])
    for _ in range(3):
        Delivery.objects.create(endpoint=endpoint, event_type="ticket.created", payload={"subject": LONG},
                                state="failed", attempts=5, last_status=502, last_error="x" * 400,
                                response_excerpt="<html>" + "y" * 2000)
    return endpoint


@pytest.mark.parametrize("width", [1440, 1366, 1280, 1024])
def test_desk_pages_do_not_scroll_sideways_on_a_desktop(page, admin_user, busy_desk, webhook_log, width):
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, admin_user, then="/")  # the admin: the longest navigation bar
    for path in ("/", "/tickets/", f"/tickets/{busy_desk.pk}/", "/webhooks/", f"/webhooks/{webhook_log.pk}/"):
        page.goto(path)
        assert _overflow(page) <= 0, f"{path} at {width} px scrolls sideways by {_overflow(page)} px"


def test_the_queue_and_a_ticket_fit_a_phone(page, tech, busy_desk):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, tech, then="/tickets/")
    for path in ("/tickets/", f"/tickets/{busy_desk.pk}/"):
        page.goto(path)
        assert _overflow(page) <= 0, f"{path} at 390 px scrolls sideways by {_overflow(page)} px"

