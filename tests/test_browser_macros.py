"""Macros and "Send and set …" in a real browser (headless chromium, the live server).

A tech types the start of a reply, applies a macro: its text lands after the draft with the customer's
name and the ticket's reference filled in, and its action moves the ticket to Triaging, all in one htmx
swap. Then "Send and set Waiting on customer" sends the reply and parks the ticket in the same step.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser import BROWSER_MARKS, assert_same_document, mark_document, save_screenshot, sign_in
from triage.macros import services as macros
from triage.models import EventKind, Status

pytestmark = [*BROWSER_MARKS]


def test_a_tech_applies_a_macro_to_a_draft_then_sends_and_sets_waiting(page, tech, ticket):
    macros.macro_save(
        name="Investigating",
        body="Hello {{customer}}, we are looking into {{ticket}}.",
        set_status=Status.TRIAGING,
        add_tags=["investigating"],
    )
    macros.macro_save(name="Unused", body="Not this one.", active=False)

    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    mark_document(page)
    composer = page.locator("#id_body")
    composer.fill("Thanks for the screenshots.")
    expect(page.get_by_role("button", name="Unused")).to_have_count(0)
    page.get_by_role("button", name="Investigating").click()

    expect(page.locator(".macro-outcome")).to_contain_text("Applied “Investigating”: status set to Triaging")
    expect(composer).to_have_value(
        f"Thanks for the screenshots.\n\nHello Northwind Hosting, we are looking into #{ticket.pk}."
    )
    expect(page.locator(".meta .status")).to_have_text("Triaging")
    assert_same_document(page)
    ticket.refresh_from_db()
    assert ticket.status == Status.TRIAGING
    assert not ticket.events.filter(kind=EventKind.REPLY).exists()  # inserted, not sent
    save_screenshot(page, "ticket-macro-applied")

    actions = page.locator(".reply-actions")
    expect(actions.get_by_role("button", name="Send and set Triaging")).to_have_count(0)  # it is triaging already
    actions.get_by_role("button", name="Send and set Waiting on customer").click()

    expect(page.locator(".meta .status")).to_have_text("Waiting on customer")
    reply = page.locator(".timeline .event-reply").last
    expect(reply).to_contain_text(f"Hello Northwind Hosting, we are looking into #{ticket.pk}.")
    expect(reply).to_contain_text("Thanks for the screenshots.")
    expect(composer).to_have_value("")
    ticket.refresh_from_db()
    assert ticket.status == Status.WAITING
    moves = [(e.data["from"], e.data["to"]) for e in ticket.events.filter(kind=EventKind.STATUS)]
    assert moves == [(Status.NEW, Status.TRIAGING), (Status.TRIAGING, Status.WAITING)]
    assert "investigating" in ticket.tags.values_list("name", flat=True)
