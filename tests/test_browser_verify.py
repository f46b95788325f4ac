"""Verify in a real browser, against a lab host that really has the fault and then really loses it.

A tech accepts the bnx2 fix found on a lab host, "applies" it (the host boots without the faulty
interrupt: its kernel messages no longer carry the flaps), presses Verify, and the ticket follows the
re-collection live until it shows the symptom gone and the fix verified, with before and after runs.
Then the same again on a host where the fault is still there: Verify says so and nothing is verified.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from diagnostics import services
from diagnostics.models import CollectionRun, FixRecipe, Playbook, RecipeOutcome
from diagnostics.playbooks import DEFAULT_PLAYBOOKS
from tests.browser import BROWSER_MARKS, save_screenshot, sign_in
from tests.lab_servers import lab_server
from tests.test_browser_collection import Worker
from tests.test_browser_triage_flow import bnx2_messages
from triage import services as desk

pytestmark = [*BROWSER_MARKS, pytest.mark.root]


@pytest.fixture
def kb_loaded(db):
    from io import StringIO

    from django.core.management import call_command

    call_command("load_kb", stdout=StringIO())


def quiet_messages(hostname: str) -> str:
    """The same host's log after the fix: ordinary lines only."""
    start = datetime(2026, 3, 15, 9, 30)
    return "".join(
        f"{start + timedelta(minutes=m):%b %e %H:%M:%S} {hostname} CRON[{3000 + m}]: (root) CMD (run-parts)\n"
        for m in range(30)
    )


def _collected_ticket(lab, customer, tech, name: str):
    host = lab.add_host(name, private_tmp=True)
    host.write_file("/var/log/messages", bnx2_messages(name))
    server = lab_server(customer, host)
    book = next(b for b in DEFAULT_PLAYBOOKS if b["name"] == "Network interface down")
    playbook = Playbook.objects.create(name=book["name"], description=book["description"], steps=book["steps"])
    ticket = desk.ticket_create(
        subject="Gateway drops off the network",
        description="eth0 goes away.",
        customer=customer,
        servers=[server],
        created_by=tech,
    )
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=tech, enqueue=False)
    worker = Worker(run.pk)
    worker.start()
    worker.join()
    return host, ticket


def _accept_and_verify(page, ticket, recipe) -> CollectionRun:
    card = page.locator("#fixes li.fix", has=page.locator("h3", has_text=recipe.title))
    card.get_by_role("button", name="Accept").click()
    card = page.locator("#fixes li.fix", has=page.locator("h3", has_text=recipe.title))
    expect(card).to_contain_text("Accepted")
    card.get_by_role("button", name="Verify").click()
    expect(page.locator("#ticket-runs")).to_contain_text("Verify: ")
    return CollectionRun.objects.get(ticket=ticket, verifies_recipe=recipe)


def test_verify_recollects_and_the_ticket_shows_the_symptom_gone_and_the_fix_verified(
    lab, page, tech, customer, kb_loaded
):
    host, ticket = _collected_ticket(lab, customer, tech, "mxfixed")
    recipe = FixRecipe.objects.get(key="bnx2-disable-msi")
    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    verify = _accept_and_verify(page, ticket, recipe)
    assert {step["probe"] for step in verify.steps} <= {step["probe"] for step in verify.verifies_run.steps}

    save_screenshot(page, "ticket-verify")
    host.write_file("/var/log/messages", quiet_messages("mxfixed"))  # the fix applied, the host rebooted
    worker = Worker(verify.pk)
    worker.start()
    worker.join()

    # The page was following the verify run; the poll that finds it diagnosed brings the result.
    cleared = page.locator("#fixes .cleared")
    expect(cleared).to_contain_text("bnx2", timeout=30_000)
    expect(cleared).to_contain_text(f"Verified: {recipe.title}")
    expect(cleared.locator(f'a[href="/runs/{verify.verifies_run_id}/"]')).to_have_count(1)
    expect(cleared.locator(f'a[href="/runs/{verify.pk}/"]')).to_have_count(1)
    expect(page.locator("#fixes li.fix", has=page.locator("h3", has_text=recipe.title))).to_have_count(0)
    assert RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe, kind=RecipeOutcome.VERIFIED).exists()
    page.reload()
    expect(page.locator(".timeline")).to_contain_text(f"Verified: {recipe.title}")


def test_verify_on_a_host_still_at_fault_says_so_and_verifies_nothing(lab, page, tech, customer, kb_loaded):
    _host, ticket = _collected_ticket(lab, customer, tech, "mxstill")
    recipe = FixRecipe.objects.get(key="bnx2-disable-msi")
    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    verify = _accept_and_verify(page, ticket, recipe)
    worker = Worker(verify.pk)
    worker.start()
    worker.join()
    expect(page.locator("#ticket-runs")).not_to_have_attribute("hx-trigger", re.compile("every"), timeout=30_000)
    card = page.locator("#fixes li.fix", has=page.locator("h3", has_text=recipe.title))
    expect(card).to_contain_text(f"run #{verify.pk}")  # the verify run proves it again
    page.reload()
    expect(page.locator(".timeline")).to_contain_text("still present")
    assert not RecipeOutcome.objects.filter(ticket=ticket, kind=RecipeOutcome.VERIFIED).exists()
