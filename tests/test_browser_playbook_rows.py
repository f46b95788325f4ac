"""An admin edits a playbook's steps as rows in a real browser: adds a step, picks its probe and fills the
probe's own parameter inputs, moves it up, saves and finds the rows in that order; a save over another
admin's is shown, with theirs beside the rows still as typed; and with JavaScript off the row buttons reload
the page with the rows as typed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from diagnostics import services
from diagnostics.models import Playbook
from tests.browser import BROWSER_MARKS, save_screenshot, sign_in
from tests.conftest import make_user
from triage import access

pytestmark = [*BROWSER_MARKS, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def playbook(admin_user):
    return Playbook.objects.create(
        name="Ident check",
        description="port 113",
        steps=[{"probe": "load", "params": {}}, {"probe": "disk", "params": {}}],
    )


def expect_probes(page, probes: list[str]) -> None:
    """The rows' probes, in order, checked with retries: without JavaScript a row button submits the form,
    and a check read at once can find the old page, or none between the two (CI once read [])."""
    selects = page.locator("[data-step-row] select[name$='-probe']")
    expect(selects).to_have_count(len(probes))
    for index, probe in enumerate(probes):
        expect(selects.nth(index)).to_have_value(probe)


def test_an_admin_adds_a_step_with_parameters_moves_it_up_and_saves(page, admin_user, playbook):
    sign_in(page, admin_user, then=f"/playbooks/{playbook.pk}/")
    expect(page.locator("[data-step-row]")).to_have_count(2)
    expect(page.locator("button:has-text('Show its parameters')").first).to_be_hidden()  # the script runs

    page.click("button:has-text('Add step')")
    third = page.locator("[data-step-row]").nth(2)
    expect(third.locator("[data-step-number]")).to_have_text("3")
    third.locator("select").select_option("strace")
    expect(third).to_contain_text("Attaches to every process")  # the probe's description
    third.get_by_label("process (required)").fill("tcpserver")
    third.get_by_label("seconds").fill("20")
    third.locator("button:has-text('Up')").click()
    expect_probes(page, ["load", "strace", "disk"])
    expect(page.locator("[data-step-row]").nth(1).get_by_label("seconds")).to_have_value("20")

    page.click("form[data-step-editor] button.primary:has-text('Save')")
    expect(page).to_have_url(re.compile(r"/playbooks/$"))
    playbook.refresh_from_db()
    assert [s["probe"] for s in playbook.steps] == ["load", "strace", "disk"]
    assert playbook.steps[1]["params"]["process"] == "tcpserver" and playbook.steps[1]["params"]["seconds"] == 20

    page.goto(f"/playbooks/{playbook.pk}/")
    expect_probes(page, ["load", "strace", "disk"])
    second = page.locator("[data-step-row]").nth(1)
    expect(second.get_by_label("process (required)")).to_have_value("tcpserver")
    expect(second.get_by_label("seconds")).to_have_value("20")
    save_screenshot(page, "playbook-rows")


def test_a_bad_value_is_shown_on_its_row_and_a_removed_row_stays_removed(page, admin_user, playbook):
    sign_in(page, admin_user, then=f"/playbooks/{playbook.pk}/")
    page.locator("[data-step-row]").nth(0).locator("button:has-text('Remove')").click()
    page.click("button:has-text('Add step')")
    row = page.locator("[data-step-row]").nth(1)
    row.locator("select").select_option("kernel_log")
    row.get_by_label("lines").fill("9000")
    page.click("form[data-step-editor] button.primary:has-text('Save')")

    bad = page.locator("[data-step-row]").nth(1)
    expect(bad).to_contain_text("must be from 1 to 5000 lines, not 9000")
    expect(bad.get_by_label("lines")).to_have_value("9000")
    expect_probes(page, ["disk", "kernel_log"])
    bad.get_by_label("lines").fill("900")
    page.click("form[data-step-editor] button.primary:has-text('Save')")
    expect(page).to_have_url(re.compile(r"/playbooks/$"))
    playbook.refresh_from_db()
    assert playbook.steps == [{"probe": "disk", "params": {}}, {"probe": "kernel_log", "params": {"lines": 900}}]


def test_a_conflict_with_another_admins_save_is_shown_and_nothing_typed_is_lost(page, admin_user, playbook):
    sign_in(page, admin_user, then=f"/playbooks/{playbook.pk}/")
    page.click("button:has-text('Add step')")
    page.locator("[data-step-row]").nth(2).locator("select").select_option("memory")
    page.fill("#id_description", "port 113, mine")

    services.playbook_save(
        playbook=Playbook.objects.get(pk=playbook.pk),
        name="Ident check",
        description="theirs",
        steps=[{"probe": "sockets", "params": {"port": 25}}],
        enabled=True,
        by=make_user("grace", access.ADMIN),
    )
    page.click("form[data-step-editor] button.primary:has-text('Save')")
    conflict = page.locator(".playbook-conflict")
    expect(conflict).to_contain_text("saved by grace")
    expect(conflict).to_contain_text("port=25")
    expect(page.locator("#id_description")).to_have_value("port 113, mine")
    expect_probes(page, ["load", "disk", "memory"])
    playbook.refresh_from_db()
    assert playbook.description == "theirs"

    page.click("form[data-step-editor] button.primary:has-text('Save')")  # knowingly over theirs
    expect(page).to_have_url(re.compile(r"/playbooks/$"))
    playbook.refresh_from_db()
    assert [s["probe"] for s in playbook.steps] == ["load", "disk", "memory"]


def test_without_javascript_the_row_buttons_reload_the_rows_as_typed(browser, live_server, admin_user, playbook):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(5_000)
    page = context.new_page()
    try:
        sign_in(page, admin_user, then=f"/playbooks/{playbook.pk}/")
        page.click("button:has-text('Add step')")
        third = page.locator("[data-step-row]").nth(2)
        third.locator("select").select_option("kernel_log")
        third.locator("button:has-text('Show its parameters')").click()
        third = page.locator("[data-step-row]").nth(2)
        expect(third).to_contain_text("The newest kernel ring buffer lines")
        third.get_by_label("lines").fill("800")
        third.locator("button:has-text('Up')").click()
        expect_probes(page, ["load", "kernel_log", "disk"])
        expect(page.locator("[data-step-row]").nth(1).get_by_label("lines")).to_have_value("800")
        page.locator("[data-step-row]").nth(0).get_by_role("button", name="Remove").click()
        expect_probes(page, ["kernel_log", "disk"])  # the reload is in, so Enter goes to the new page
        page.get_by_label("lines").press("Enter")  # Enter saves: the form's first button is Save
        expect(page).to_have_url(re.compile(r"/playbooks/$"))
        playbook.refresh_from_db()
        assert playbook.steps == [{"probe": "kernel_log", "params": {"lines": 800}}, {"probe": "disk", "params": {}}]
    finally:
        context.close()
