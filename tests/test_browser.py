"""The desk in a real browser: headless chromium against the live server.

These prove what the client tests cannot: that htmx really posts the forms and
swaps the fragments, that the queue filters without a reload, and that what a
role may not do is absent from the page, not just refused on POST.
"""

from __future__ import annotations

import re

from django.utils import timezone
from playwright.sync_api import expect

from tests.browser import BROWSER_MARKS, assert_same_document, mark_document, save_screenshot, sign_in
from triage import services
from triage.models import Priority, Status, Ticket

pytestmark = BROWSER_MARKS


def test_a_tech_files_a_ticket_and_works_it_in_the_browser(page, tech, customer, ticket):
    sign_in(page, tech)
    page.get_by_role("navigation").get_by_role("link", name="New ticket").click()
    expect(page.locator("h1")).to_have_text("New ticket")

    page.select_option("#id_customer", label=customer.name)
    page.fill("#id_subject", "VPN drops every hour")
    page.fill("#id_description", "Remote staff lose the tunnel on the hour, every hour.")
    page.select_option("#id_priority", label="P2 high")
    page.get_by_role("button", name="File ticket").click()

    expect(page).to_have_url(re.compile(r"/tickets/\d+/$"))
    expect(page.locator("#ticket h1")).to_contain_text("VPN drops every hour")
    filed = Ticket.objects.get(subject="VPN drops every hour")
    assert filed.priority == Priority.P2
    assert filed.created_by == tech

    page.goto("/tickets/")
    expect(page.locator("#queue-results tbody tr")).to_have_count(2)
    save_screenshot(page, "queue")
    page.get_by_role("link", name="VPN drops every hour").click()
    expect(page).to_have_url(re.compile(rf"/tickets/{filed.pk}/$"))

    mark_document(page)
    page.fill("#id_body", "We are looking at the tunnel logs now.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".timeline .event-reply")).to_contain_text("We are looking at the tunnel logs now.")
    # The swapped-in form is fresh: the reply went, the textarea is empty again.
    expect(page.locator("#id_body")).to_have_value("")
    # The first public reply moved the new ticket to triaging.
    expect(page.locator(".timeline .event-status")).to_contain_text("New → Triaging")
    expect(page.locator(".ticket-main .meta .status")).to_have_text("Triaging")

    page.select_option("#id_status", label="Resolved")
    page.fill("#id_note", "Keepalive raised on the concentrator.")
    page.get_by_role("button", name="Change status").click()
    expect(page.locator(".timeline .event-status").last).to_contain_text("Triaging → Resolved")
    expect(page.locator(".ticket-main .meta .status")).to_have_text("Resolved")
    expect(page.locator(".ticket-side .facts")).to_contain_text(re.compile(r"resolved \d{4}-\d\d-\d\d \d\d:\d\d"))
    expect(page.locator(".ticket-side .facts")).to_contain_text(re.compile(r"answered \d{4}-\d\d-\d\d \d\d:\d\d"))
    assert_same_document(page)
    save_screenshot(page, "ticket")

    filed.refresh_from_db()
    assert filed.status == Status.RESOLVED
    assert filed.first_response_at is not None
    assert filed.resolved_at is not None


def test_a_form_error_is_shown_beside_the_field(page, tech, customer):
    sign_in(page, tech, then="/tickets/new/")
    page.select_option("#id_customer", label=customer.name)
    page.fill("#id_description", "Subject forgotten.")
    page.get_by_role("button", name="File ticket").click()

    error = page.locator(".field.has-error:has(#id_subject) .error")
    expect(error).to_have_text("This field is required.")
    # The rest of what was typed is still there to fix and resubmit.
    expect(page.locator("#id_description")).to_have_value("Subject forgotten.")
    assert not Ticket.objects.exists()


def test_the_queue_filters_without_a_page_reload(page, tech, customer):
    now = timezone.now()
    for subject, priority in [
        ("Backups failing on db2", Priority.P1),
        ("Printer offline in accounts", Priority.P4),
        ("Mail queue stuck", Priority.P2),
    ]:
        services.ticket_create(
            subject=subject,
            description="Reported by phone.",
            customer=customer,
            priority=priority,
            created_by=tech,
            now=now,
        )
    sign_in(page, tech)
    rows = page.locator("#queue-results tbody tr")
    expect(rows).to_have_count(3)
    mark_document(page)

    page.locator("#id_priority").select_option(label="P1 critical")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Backups failing on db2")
    expect(page).to_have_url(re.compile(r"[?&]priority=1(&|$)"))

    page.locator("#id_priority").select_option(label="Any")
    expect(rows).to_have_count(3)
    # Typed key by key: the search fires on keyup, which fill() would not send.
    page.locator("#id_q").press_sequentially("printer")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Printer offline in accounts")
    expect(page).to_have_url(re.compile(r"[?&]q=printer(&|$)"))
    assert_same_document(page)


def test_a_tech_cannot_reach_the_admin_pages(page, tech):
    sign_in(page, tech)
    response = page.goto("/users/")
    assert response.status == 403
    expect(page.locator("main h1")).to_have_text("Not allowed")
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name="Queue")).to_be_visible()
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)


def test_a_manager_reads_but_cannot_act(page, manager, ticket):
    sign_in(page, manager)
    response = page.goto(f"/tickets/{ticket.pk}/")
    assert response.status == 200
    expect(page.locator("#ticket h1")).to_contain_text(ticket.subject)
    expect(page.locator(".timeline .event-created")).to_have_count(1)
    expect(page.locator("#ticket form")).to_have_count(0)
    expect(page.locator("#id_body")).to_have_count(0)
    expect(page.locator("#id_status")).to_have_count(0)
    expect(page.get_by_role("navigation").get_by_role("link", name="New ticket")).to_have_count(0)
