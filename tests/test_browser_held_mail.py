"""The Held mail page in a real browser (headless chromium, the live server): an admin opens Held mail
from the navigation, files a message from an unknown sender as a ticket for a customer (routing the
sender's domain on the way), lands on the ticket, and the message has left the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from mailgate import services as mail_services
from mailgate.models import MailRoute, Outcome
from tests.browser import BROWSER_MARKS, save_screenshot, sign_in
from tests.mailgate_support import DESK, mail
from triage.models import Ticket

pytestmark = [*BROWSER_MARKS, pytest.mark.django_db(transaction=True)]


def test_an_admin_files_held_mail_as_a_ticket_and_sees_it(page, admin_user, customer):
    raw = mail(
        sender="Kim Newco <kim@newco.test>",
        subject="Our VPN drops every hour",
        body="Since Monday the tunnel to fw1 drops at :00.\n<script>alert(1)</script>",
    ).as_bytes()
    record = mail_services.inbound_receive(raw=raw, envelope_from="kim@newco.test", envelope_to=[DESK])
    assert record.outcome == Outcome.UNMATCHED
    sign_in(page, admin_user, then="/")

    page.click("nav >> text=Held mail")
    card = page.locator(f"#held-{record.pk}")
    expect(card.locator(".held-subject")).to_have_text("Our VPN drops every hour")
    expect(card.locator(".held-sender")).to_have_text("Kim Newco <kim@newco.test>")
    expect(card.locator(".held-preview")).to_contain_text("<script>alert(1)</script>")  # shown, not run
    save_screenshot(page, "held-mail")

    card.get_by_label("Create ticket for customer").select_option(label=customer.name)
    card.get_by_label("and route all of").check()
    card.get_by_role("button", name="Create ticket").click()

    ticket = Ticket.objects.get()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket.pk}/$"))
    expect(page.locator(".messages")).to_contain_text(f"Filed as {ticket.reference} for {customer.name}.")
    expect(page.locator("main")).to_contain_text("Our VPN drops every hour")
    expect(page.locator("main")).to_contain_text("tunnel to fw1")
    assert ticket.customer == customer and MailRoute.objects.get().value == "newco.test"

    page.click("nav >> text=Held mail")
    expect(page.locator(f"#held-{record.pk}")).to_have_count(0)
    expect(page.locator(".held-decided")).to_contain_text(ticket.reference)
