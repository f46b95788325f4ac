"""Business-hours SLA in a real browser: headless chromium against the live server.

An admin adds a Berlin office calendar (Mon-Fri 09:00-17:00) and puts the Gold tier on it. A ticket
filed for a Gold customer on a Friday at 16:00 Berlin time then shows its first response due on Monday
at 12:00 (four business hours: one on Friday, three on Monday), not on Friday at 20:00 as the 24x7
clock would have it. The ticket is filed through the service with the Friday as its time, since the
live server's clock cannot be set to a Friday afternoon.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser import BROWSER_MARKS, save_screenshot, sign_in
from triage import services
from triage.models import BusinessCalendar, Priority, SlaTier

pytestmark = [*BROWSER_MARKS]

FRIDAY_4PM_BERLIN = datetime(2026, 11, 27, 16, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def test_an_admin_puts_a_tier_on_office_hours_and_a_friday_ticket_is_due_on_monday(page, admin_user, customer):
    sign_in(page, admin_user, then="/sla/")
    page.get_by_role("link", name="New calendar").click()
    page.get_by_label("Name", exact=True).fill("Berlin office")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    expect(page.get_by_label("Monday")).to_have_value("09:00-17:00")
    expect(page.get_by_label("Saturday")).to_have_value("")
    page.get_by_label("Holidays").fill("2026-12-25 Christmas Day\n2026-12-26 Boxing Day")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/sla/$"))
    expect(page.locator("#calendars")).to_contain_text("Berlin office")

    gold = page.locator(".sla-tier[data-tier=Gold]")
    expect(gold.locator(".sla-clock")).to_have_text("24x7")
    gold.get_by_role("link", name="Change clock").click()
    page.get_by_label("Calendar", exact=True).select_option(label="Berlin office (Europe/Berlin)")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Tier Gold now runs on Berlin office.")
    expect(gold.locator(".sla-clock")).to_have_text("Berlin office (Europe/Berlin)")
    assert SlaTier.objects.get(name="Gold").calendar == BusinessCalendar.objects.get(name="Berlin office")
    save_screenshot(page, "sla-settings")

    ticket = services.ticket_create(
        subject="VPN down for the whole office",
        description="No one can connect.",
        customer=customer,
        priority=Priority.P3,
        created_by=admin_user,
        now=FRIDAY_4PM_BERLIN,
    )  # Gold P3: first response within 4 h
    page.goto(f"/tickets/{ticket.pk}/")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("First response due")
    first_due = facts.locator("dt:has-text('First response due') + dd .sla-due")
    expect(first_due).to_have_text("Mon 2026-11-30 12:00 CET")
    expect(facts.locator("dt:has-text('SLA tier') + dd")).to_contain_text("Gold (business hours: Berlin office)")
    save_screenshot(page, "ticket-business-hours-due")
