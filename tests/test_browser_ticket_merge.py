"""Related and merged tickets in a real browser: a tech with a half-typed reply links a related
ticket without losing the reply, merges the ticket into another from its page (confirming with
both subjects in view) and lands on the survivor showing both timelines; and merges three
tickets selected in the queue in one step."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser import BROWSER_MARKS, assert_same_document, mark_document, save_screenshot, sign_in
from triage import services
from triage.models import Customer, SlaTier, Status, Ticket, TicketLink

pytestmark = BROWSER_MARKS

REPLY = "Hello, we are looking at the relay now."


def _file(customer, subject: str, tech) -> Ticket:
    return services.ticket_create(
        subject=subject, description=f"{subject} (as reported).", customer=customer, created_by=tech, now=timezone.now()
    )


@pytest.fixture
def outage(roles, tech):
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Standard"))
    return _file(other, "Upstream relay down", tech)


def test_a_tech_links_a_related_ticket_keeps_the_draft_then_merges_into_the_survivor(
    page: Page, tech, customer, ticket, outage
):
    survivor = _file(customer, "Everyone's mail is slow", tech)
    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    mark_document(page)
    page.locator("#id_body").press_sequentially(REPLY)
    expect(page.locator("#reply-draft-state")).to_contain_text("Draft saved")

    page.fill("#id_other", f"#{outage.pk}")
    page.get_by_role("button", name="Add link").click()
    links = page.locator("#ticket-links")
    expect(links).to_contain_text("Upstream relay down")
    expect(links).to_contain_text("New")
    expect(page.locator(".timeline .event-link")).to_contain_text(f"Related to #{outage.pk}")
    expect(page.locator("#id_body")).to_have_value(REPLY)
    assert_same_document(page)
    assert TicketLink.objects.count() == 1

    page.fill("#id_into", str(survivor.pk))
    page.get_by_role("button", name="Merge into…").click()
    confirm = page.locator("#action-merge .confirm")
    expect(confirm).to_contain_text("Mail sits 30 seconds before sending")
    expect(confirm).to_contain_text("Everyone's mail is slow")
    expect(page.locator("#id_body")).to_have_value(REPLY)
    save_screenshot(page, "ticket-merge-confirm")
    confirm.get_by_role("button", name=f"Merge #{ticket.pk} into #{survivor.pk}").click()

    expect(page).to_have_url(re.compile(rf"/tickets/{survivor.pk}/$"))
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Everyone's mail is slow (as reported).")
    merged_entry = timeline.locator(".event", has_text="Outlook users wait 30 s after pressing Send.")
    expect(merged_entry.locator(".merged-from")).to_have_text(f"on #{ticket.pk}")
    expect(timeline).to_contain_text(f"Merged #{ticket.pk} into this ticket.")
    expect(page.locator("#ticket-links")).to_contain_text("Upstream relay down")  # the link came along
    expect(page.locator(".ticket-side .facts")).to_contain_text("mx1")  # and the servers
    save_screenshot(page, "ticket-merged-survivor")

    page.goto(f"/tickets/{ticket.pk}/")
    expect(page.locator("#merged-banner")).to_contain_text(f"Merged into #{survivor.pk}")
    expect(page.locator("#reply-composer")).to_have_count(0)
    page.locator("#merged-banner").get_by_role("link", name=f"#{survivor.pk}").click()
    expect(page).to_have_url(re.compile(rf"/tickets/{survivor.pk}/$"))


def test_a_tech_merges_three_tickets_selected_in_the_queue(page: Page, tech, customer):
    three = [_file(customer, f"Bounce storm {i}", tech) for i in range(3)]
    other = _file(customer, "Unrelated", tech)
    sign_in(page, tech, then="/tickets/")
    mark_document(page)
    for ticket in three:
        page.get_by_label(f"Select {ticket.reference}", exact=True).check()
    page.get_by_role("button", name="Merge selected").click()

    oldest, *rest = three
    expect(page.locator("#bulk-outcome")).to_contain_text(
        f"Merged {', '.join(t.reference for t in rest)} into {oldest.reference}."
    )
    expect(page.locator("#queue-results tbody tr")).to_have_count(2)  # the merged ones are closed
    assert_same_document(page)
    assert sorted(Ticket.objects.filter(merged_into=oldest, status=Status.CLOSED).values_list("pk", flat=True)) == [
        t.pk for t in rest
    ]
    assert Ticket.objects.get(pk=other.pk).merged_into_id is None
