"""Managers' dashboard and the other main pages in a real browser, on the demo's six months of data.

Every chart must have drawn data: plotly's SVG with at least one trace and the point count the
server reported, never an empty plot. With TRIAGE_SCREENSHOTS=1 (`make screenshots`) these tests
also refresh the README's screenshots of the main pages.
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import expect

from diagnostics.models import Match
from reports import selectors as report_selectors
from tests.browser import BROWSER_MARKS, PASSWORD, save_screenshot, sign_in
from triage.models import Ticket

pytestmark = BROWSER_MARKS


@pytest.fixture
def demo(transactional_db):
    call_command("setup_roles", stdout=io.StringIO())
    call_command("seed_demo", tickets=60, days=182, password=PASSWORD, stdout=io.StringIO())
    users = get_user_model().objects.filter(groups__name__in=["manager", "tech"]).distinct()
    return {group: users.filter(groups__name=group).first() for group in ("manager", "tech")}


def test_a_manager_sees_every_chart_drawn_with_data(page, demo):
    manager = demo["manager"]
    assert manager is not None, "the demo has a manager"
    sign_in(page, manager, then="/dashboard/")
    charts = page.locator(".chart")
    expect(charts).to_have_count(len(report_selectors.CHARTS))
    for index in range(charts.count()):
        chart = charts.nth(index)
        name = chart.get_attribute("id")
        points = int(chart.get_attribute("data-points"))
        assert points > 0, f"{name} has no data on the demo"
        # Drawn by plotly: its SVG with at least one trace, and no "no data" note.
        expect(chart.locator(".main-svg").first).to_be_visible(timeout=10_000)
        expect(chart.locator("g.trace, g.barlayer .point, g.pielayer .slice").first).to_be_attached()
        assert "No data" not in chart.inner_text(), name
    save_screenshot(page, "dashboard")

    # A customer filter narrows the figures and keeps the page whole.
    page.select_option("#id_customer", index=1)
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"customer=\d+"))
    expect(page.locator(".chart")).to_have_count(len(report_selectors.CHARTS))

    # Each chart's data downloads as CSV.
    csv_url = page.locator(".chart-card a", has_text="CSV").first.get_attribute("href")
    response = page.request.get(csv_url)
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    assert len(response.text().splitlines()) >= 2


def test_the_main_pages_of_a_tech_render_on_the_demo(page, demo):
    tech = demo["tech"]
    sign_in(page, tech, then="/")
    expect(page.locator("main h1").first).to_be_visible()
    save_screenshot(page, "home")
    page.goto("/tickets/")
    expect(page.locator("#queue-results")).to_be_visible()
    save_screenshot(page, "queue")
    matched = Match.objects.filter(matched=True, run__ticket__status__in=["new", "triaging", "waiting"]).first()
    ticket = matched.run.ticket if matched else Ticket.objects.order_by("-created_at").first()
    page.goto(f"/tickets/{ticket.pk}/")
    expect(page.locator("#fixes")).to_be_visible()
    save_screenshot(page, "ticket")
    page.goto("/kb/")
    expect(page.locator("main")).to_contain_text("ident")
    save_screenshot(page, "knowledge-base")
