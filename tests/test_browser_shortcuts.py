"""Keyboard shortcuts for the common moves, in headless chromium: j/k and o in the queue, r and n to
write, a to take the ticket, ? for the list. Keys typed into a field stay the field's."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import BROWSER_MARKS, sign_in
from triage import services

pytestmark = [*BROWSER_MARKS, pytest.mark.django_db(transaction=True)]


def _focused(page) -> str:
    return page.evaluate("document.activeElement ? document.activeElement.name || '' : ''")


def test_a_tech_works_the_queue_and_a_ticket_from_the_keyboard(page, tech, customer):
    tickets = [
        services.ticket_create(subject=f"Mail delay {n}", description="30 s", customer=customer, created_by=tech)
        for n in range(3)
    ]
    sign_in(page, tech, then="/tickets/")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-help")).to_be_visible()
    expect(page.locator("#shortcuts-help")).to_contain_text("Assign the ticket to me")
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts-help")).to_be_hidden()

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    selected = page.locator("#queue-results tr.kbd-selected")
    expect(selected).to_have_count(1)
    second = selected.locator("a").first.get_attribute("href")
    page.keyboard.press("o")
    expect(page).to_have_url(re.compile(re.escape(second) + "$"))
    ticket = next(t for t in tickets if second.endswith(f"/{t.pk}/"))

    page.keyboard.press("r")
    assert _focused(page) == "body"
    page.keyboard.type("ran a quick check")  # typed into the reply: no shortcut fires
    expect(page.locator("#shortcuts-help")).to_be_hidden()
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    assert _focused(page) == "note-body"
    page.keyboard.press("Escape")

    page.keyboard.press("a")
    expect(page.locator("#ticket-facts")).to_contain_text(tech.get_username())
    ticket.refresh_from_db()
    assert ticket.assignee == tech
    expect(page.locator("#reply-composer textarea")).to_have_value("ran a quick check")  # still there
