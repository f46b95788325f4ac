"""The queue as a desk, in a real browser: a tech selects tickets (the page's box, then one
taken out again), assigns them to themselves, raises their priority and moves them on in one
step without a page load, reads what was done, and saves the filters they work from as a view
with its count. A ticket someone changed after the queue was loaded is left alone and named."""

from __future__ import annotations

import re

import pytest
from django.http import QueryDict
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser import BROWSER_MARKS, assert_same_document, mark_document, save_screenshot, sign_in
from triage import services
from triage.models import SavedView, Status, Ticket

pytestmark = BROWSER_MARKS


@pytest.fixture
def four(customer, tech):
    return [
        services.ticket_create(
            subject=f"Mail problem {i}",
            description="details",
            customer=customer,
            priority=2,
            created_by=tech,
            now=timezone.now(),
        )
        for i in range(4)
    ]


def _expect_ticked(page, tickets) -> None:
    for ticket in tickets:
        expect(page.get_by_label(f"Select {ticket.reference}", exact=True)).to_be_checked()


def test_a_tech_changes_three_tickets_at_once_and_saves_a_view_with_its_count(page, tech, four):
    chosen, left = four[:3], four[3]
    sign_in(page, tech, then="/tickets/")
    mark_document(page)
    page.get_by_label("Select all on this page").check()
    _expect_ticked(page, four)  # what the tech sees before going on
    page.get_by_label(f"Select {left.reference}", exact=True).uncheck()
    page.select_option("#bulk-assignee", label="Me")
    page.select_option("#bulk-status", label="Triaging")
    page.select_option("#bulk-priority", label="P1 critical")
    page.get_by_role("button", name="Apply to selected").click()

    expect(page.locator("#bulk-outcome")).to_contain_text(
        f"Changed {', '.join(t.reference for t in sorted(chosen, key=lambda t: t.pk))}."
    )
    for ticket in chosen:
        row = page.locator("#queue-results tbody tr", has=page.get_by_label(f"Select {ticket.reference}", exact=True))
        expect(row).to_contain_text("Triaging")
        expect(row).to_contain_text(tech.username)
        expect(row).to_contain_text("P1")
    expect(
        page.locator("#queue-results tbody tr", has=page.get_by_label(f"Select {left.reference}", exact=True))
    ).to_contain_text("New")
    assert_same_document(page)
    assert sorted(
        Ticket.objects.filter(assignee=tech, status=Status.TRIAGING, priority=1).values_list("pk", flat=True)
    ) == [t.pk for t in chosen]
    assert Ticket.objects.get(pk=left.pk).priority == 2
    save_screenshot(page, "queue-bulk")

    page.select_option("#id_assignee", label="Mine")
    expect(page.locator("#queue-results tbody tr")).to_have_count(3)
    page.fill("#id_view_name", "My triage")
    page.get_by_role("button", name="Save view").click()
    view = page.locator("#saved-views li", has_text="My triage")
    expect(view.locator(".count")).to_have_text("3")
    assert QueryDict(SavedView.objects.get(user=tech).query)["assignee"] == "me"
    view.get_by_role("link", name="My triage").click()
    expect(page.locator("#queue-results tbody tr")).to_have_count(3)


def test_a_ticket_changed_after_the_queue_was_loaded_is_named_and_left_alone(page, tech, admin_user, four):
    sign_in(page, tech, then="/tickets/")
    mark_document(page)
    page.get_by_label("Select all on this page").check()
    _expect_ticked(page, four)
    # Meanwhile, in another browser, ada takes one of them and makes it critical.
    taken = four[1]
    services.ticket_assign(ticket=taken, assignee=admin_user, by=admin_user)
    services.ticket_change_priority(ticket=taken, priority=1, by=admin_user)
    page.select_option("#bulk-priority", label="P4 low")
    page.get_by_role("button", name="Apply to selected").click()

    others = sorted((t for t in four if t.pk != taken.pk), key=lambda t: t.pk)
    outcome = page.locator("#bulk-outcome")
    expect(outcome).to_contain_text(f"Changed {', '.join(t.reference for t in others)}.")
    expect(outcome).to_contain_text(f"{taken.reference} was changed by ada since you loaded the queue; not changed.")
    assert_same_document(page)
    fresh = Ticket.objects.get(pk=taken.pk)
    assert (fresh.priority, fresh.assignee) == (1, admin_user)
    assert set(Ticket.objects.filter(pk__in=[t.pk for t in others]).values_list("priority", flat=True)) == {4}


def test_the_page_box_ticked_before_the_queue_script_ran_still_selects_every_row(page, tech, four):
    """A quick hand on a slow load: the box is ticked while queue.js is still on its way (held here
    by the test), so no listener saw the tick; once the script runs, the rows are ticked and sent."""
    sign_in(page, tech, then="/tickets/")
    held = []
    page.route(re.compile(r"/static/js/queue(\.[0-9a-f]+)?\.js$"), lambda route: held.append(route))
    page.goto("/tickets/", wait_until="commit")
    page.get_by_label("Select all on this page").check()
    for _ in range(100):  # the route's handler runs while Playwright waits
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the queue page did not ask for queue.js"
    expect(page.get_by_label(f"Select {four[0].reference}", exact=True)).not_to_be_checked()  # no script heard the tick
    held[0].continue_()
    page.wait_for_load_state("load")
    _expect_ticked(page, four)
    page.select_option("#bulk-priority", label="P4 low")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator("#bulk-outcome")).to_contain_text(
        f"Changed {', '.join(t.reference for t in sorted(four, key=lambda t: t.pk))}."
    )
    assert set(Ticket.objects.filter(pk__in=[t.pk for t in four]).values_list("priority", flat=True)) == {4}
