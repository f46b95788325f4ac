"""The Mailboxes page in a real browser (headless chromium, the live server) against a real dovecot:
an admin adds the team's hosted mailbox from the admin menu, tries its connection, and after a poll
the page shows when it was polled; the mail became a ticket."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from mailgate import mailbox_services
from mailgate.models import Mailbox
from tests.browser import BROWSER_MARKS, save_screenshot, sign_in
from tests.imap_server import PASSWORD
from tests.mailgate_support import mail
from triage.models import Ticket

pytest_plugins = ["tests.imap_fixtures"]
pytestmark = [*BROWSER_MARKS, pytest.mark.django_db(transaction=True)]


def test_an_admin_adds_a_mailbox_tests_it_and_sees_its_poll(page, settings, admin_user, customer, dovecot):
    settings.TRIAGE_IMAP_CA_FILE, settings.TRIAGE_IMAP_TIMEOUT = str(dovecot.cert), 5
    user = dovecot.add_user()
    dovecot.deliver(user, mail(subject="Backups failed overnight"))
    sign_in(page, admin_user, then="/")

    page.click("nav >> text=Mailboxes")
    expect(page.locator("main")).to_contain_text("No mailboxes yet")
    page.click("text=New mailbox")
    page.fill("#id_name", "Support inbox")
    page.fill("#id_host", "localhost")
    page.select_option("#id_security", "imaps")
    page.fill("#id_port", str(dovecot.imaps_port))
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")

    expect(page).to_have_url(re.compile(r"/mail/mailboxes/$"))
    row = page.locator("tr.mailbox-row", has_text="Support inbox")
    expect(row).to_contain_text(f"{user}@localhost:{dovecot.imaps_port}")
    expect(row).to_contain_text("never")
    row.get_by_role("button", name="Test connection").click()
    expect(page.locator(".messages")).to_contain_text("1 unread in INBOX")

    mailbox_services.mailbox_poll(mailbox_id=Mailbox.objects.get().pk)  # what beat's task does
    page.reload()
    row = page.locator("tr.mailbox-row", has_text="Support inbox")
    expect(row.locator(".mailbox-error")).to_have_text("none")
    expect(row).not_to_contain_text("never")
    save_screenshot(page, "mailboxes")

    page.click("tr.mailbox-row a")
    expect(page.locator("#id_password")).to_have_value("")  # never shown back
    assert PASSWORD not in page.content()
    assert Ticket.objects.get().subject == "Backups failed overnight"
