"""The ticket page as a desk a tech works in all day, in a real browser (headless chromium, live server).

What a tech does: starts a reply, changes the priority, the status and the assignee while it waits,
and the half-typed reply is still there; reloads the page and the draft is back; sends it and the
draft is gone. And two techs on one ticket: the second, acting from a page the first has changed,
is told what changed and by whom instead of undoing it, and re-applies the change with one click.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import BROWSER_MARKS, PASSWORD, assert_same_document, mark_document, save_screenshot, sign_in
from tests.conftest import make_user
from triage import access
from triage.models import DraftKind, EventKind, Status, TicketDraft

pytestmark = BROWSER_MARKS

REPLY = "Hello,\n\nwe can see the 30 s delay on mx1 and are looking at the queue now."


@pytest.fixture
def other_tech(roles):
    return make_user("tom", access.TECH, password=PASSWORD)


def _draft_saved(page: Page, composer: str) -> None:
    expect(page.locator(f"#{composer}-draft-state")).to_contain_text("Draft saved")


def test_a_half_typed_reply_survives_sidebar_actions_a_reload_and_goes_when_sent(page, tech, other_tech, ticket):
    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    mark_document(page)
    page.locator("#id_body").press_sequentially("Hello,")  # a real tech types key by key
    page.locator("#id_body").press("Enter")
    page.locator("#id_body").press("Enter")
    page.locator("#id_body").press_sequentially("we can see the 30 s delay on mx1 and are looking at the queue now.")
    page.fill("#id_note-body", "Queue on mx1 is 4k deep.")
    _draft_saved(page, "reply")
    _draft_saved(page, "note")

    page.select_option("#id_priority", label="P1 critical")
    page.get_by_role("button", name="Set priority").click()
    expect(page.locator(".timeline .event-priority")).to_contain_text("P2 → P1")
    expect(page.locator("#id_body")).to_have_value(REPLY)

    page.select_option("#id_status", label="Triaging")
    page.get_by_role("button", name="Change status").click()
    expect(page.locator(".timeline .event-status")).to_contain_text("New → Triaging")
    expect(page.locator(".ticket-main .meta .status")).to_have_text("Triaging")
    expect(page.locator("#id_body")).to_have_value(REPLY)

    page.select_option("#id_assignee", label=other_tech.username)
    page.get_by_role("button", name="Assign").click()
    expect(page.locator(".timeline .event-assignment")).to_contain_text("unassigned → tom")
    expect(page.locator(".ticket-side .facts")).to_contain_text("tom")
    expect(page.locator("#id_body")).to_have_value(REPLY)
    expect(page.locator("#id_note-body")).to_have_value("Queue on mx1 is 4k deep.")
    assert_same_document(page)
    save_screenshot(page, "ticket-draft")

    page.reload()
    expect(page.locator("#id_body")).to_have_value(REPLY)
    expect(page.locator("#reply-draft-state")).to_contain_text("Draft restored")
    expect(page.locator("#id_note-body")).to_have_value("Queue on mx1 is 4k deep.")

    mark_document(page)
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".timeline .event-reply")).to_contain_text("we can see the 30 s delay")
    expect(page.locator("#id_body")).to_have_value("")
    expect(page.locator("#id_note-body")).to_have_value("Queue on mx1 is 4k deep.")  # the other draft stays
    assert_same_document(page)
    assert list(TicketDraft.objects.filter(user=tech, ticket=ticket).values_list("kind", flat=True)) == [DraftKind.NOTE]
    assert ticket.events.get(kind=EventKind.REPLY).body.replace("\r\n", "\n") == REPLY

    page.reload()
    expect(page.locator("#id_body")).to_have_value("")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.status, ticket.assignee) == (1, Status.TRIAGING, other_tech)


def test_a_second_tech_on_a_stale_page_is_told_what_changed_and_re_applies(
    page, browser, live_server, tech, other_tech, ticket
):
    # Two techs, two browser contexts (two sessions): the `page` fixture's and one more.
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(5_000)
    first, second = context.new_page(), page
    sign_in(first, tech, then=f"/tickets/{ticket.pk}/")
    sign_in(second, other_tech, then=f"/tickets/{ticket.pk}/")
    try:
        first.fill("#id_tags", "mail, urgent")
        first.get_by_role("button", name="Save tags").click()
        expect(first.locator(".timeline .event-tags")).to_contain_text("mail → mail, urgent")

        mark_document(second)
        second.fill("#id_body", "Typed while the other tech worked.")
        second.select_option("#id_assignee", label=other_tech.username)
        second.get_by_role("button", name="Assign").click()
        conflict = second.locator("#action-assign .conflict")
        expect(conflict).to_contain_text("Not saved: this ticket changed after you loaded it.")
        expect(conflict).to_contain_text(re.compile(r"Tags changed\s+by tess"))
        expect(conflict).to_contain_text("mail → mail, urgent")
        # The page now shows the ticket as it is, the tech's choice is kept, and nothing was typed in vain.
        expect(second.locator(".ticket-side .facts")).to_contain_text("urgent")
        expect(second.locator("#id_assignee")).to_have_value(str(other_tech.pk))
        expect(second.locator("#id_body")).to_have_value("Typed while the other tech worked.")
        ticket.refresh_from_db()
        assert ticket.assignee is None
        save_screenshot(second, "ticket-conflict")

        second.get_by_role("button", name="Re-apply my change").click()
        expect(second.locator(".timeline .event-assignment")).to_contain_text("unassigned → tom")
        expect(second.locator("#action-assign .conflict")).to_have_count(0)
        assert_same_document(second)
        ticket.refresh_from_db()
        assert ticket.assignee == other_tech
        assert sorted(ticket.tags.values_list("name", flat=True)) == ["mail", "urgent"]
    finally:
        context.close()
