"""The Content-Security-Policy in a real browser: the main pages work under it (plotly draws,
htmx swaps) and the browser reports no violation; a symptom title with markup shows as text
in the dashboard's chart. (Every browser test also fails on a violation: tests/browser.py.)"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from playwright.sync_api import expect

from diagnostics.models import CollectionRun, Match, Symptom
from reports import selectors as report_selectors
from tests.browser import BROWSER_MARKS, PASSWORD, sign_in
from tests.conftest import make_user
from triage import access
from triage.models import Ticket

pytestmark = BROWSER_MARKS

HOSTILE = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
def demo(transactional_db):
    call_command("setup_roles", stdout=io.StringIO())
    call_command("seed_demo", tickets=60, days=30, password=PASSWORD, stdout=io.StringIO())
    cache.clear()  # figures are cached per filter set
    users = get_user_model().objects.filter(groups__name__in=["manager", "tech"]).distinct()
    return {group: users.filter(groups__name=group).first() for group in ("manager", "tech")}


def test_the_dashboards_charts_draw_under_the_policy_and_a_title_stays_text(page, demo):
    matched = Match.objects.filter(matched=True).values_list("symptom_id", flat=True).first()
    Symptom.objects.filter(pk=matched).update(title=HOSTILE)
    response = page.request.get("/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]

    sign_in(page, demo["manager"], then="/dashboard/")
    charts = page.locator(".chart")
    expect(charts).to_have_count(len(report_selectors.CHARTS))
    for index in range(charts.count()):
        expect(charts.nth(index).locator(".main-svg").first).to_be_visible(timeout=10_000)
    symptoms = page.locator("#chart-symptoms")
    expect(symptoms).to_contain_text("<img src=x")
    assert symptoms.locator("img").count() == 0 and page.evaluate("window.__xss") is None
    assert page.csp_violations == []


def test_a_techs_pages_work_under_the_policy(page, demo):
    sign_in(page, demo["tech"], then="/tickets/")
    page.select_option("#id_status", index=1)  # htmx swaps the results
    expect(page.locator("#queue-results")).to_be_visible()
    run = CollectionRun.objects.filter(matches__matched=True).select_related("ticket").first()
    ticket = run.ticket if run else Ticket.objects.order_by("-created_at").first()
    page.goto(f"/tickets/{ticket.pk}/")
    expect(page.locator("#fixes")).to_be_visible()
    if run:
        page.goto(f"/runs/{run.pk}/")
        expect(page.locator("main h1").first).to_be_visible()
    assert page.csp_violations == []


def test_the_api_reference_is_styled_from_a_file(page, transactional_db):
    call_command("setup_roles", stdout=io.StringIO())
    sign_in(page, make_user("ada", access.ADMIN), then="/")
    page.goto("/api/v1/docs/")
    expect(page.locator("h1")).to_be_visible()
    assert page.locator("h1").evaluate("e => getComputedStyle(document.body).fontFamily").startswith("system-ui")
    assert page.csp_violations == []
