"""The whole triage loop in a real browser, against a lab host that really has the fault.

A tech files a ticket, collects from a host whose logs hold the bnx2 "No irq handler for vector" story,
watches the run finish, reads the right fix first with its cited lines, follows a citation to the
highlighted line, accepts the fix and resolves the ticket naming it. Then a tech is refused the admin pages.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from diagnostics import services
from diagnostics.models import CollectionRun, FixRecipe, Playbook, RecipeOutcome, RunState
from diagnostics.playbooks import DEFAULT_PLAYBOOKS
from tests.browser import BROWSER_MARKS, assert_same_document, mark_document, save_screenshot, sign_in
from tests.lab_servers import lab_server
from tests.test_browser_collection import Worker
from triage import services as desk
from triage.models import Status, Ticket

pytestmark = [*BROWSER_MARKS, pytest.mark.root]

IRQ = "No irq handler for vector"


def bnx2_messages(hostname: str) -> str:
    """A syslog with the war story's lines among ordinary ones."""
    start = datetime(2026, 3, 14, 9, 30)
    lines = []
    for minute in range(40):
        when = start + timedelta(minutes=minute)
        lines.append(f"{when:%b %e %H:%M:%S} {hostname} CRON[{2000 + minute}]: (root) CMD (run-parts /etc/cron.hourly)")
    irq_at = start + timedelta(minutes=17, seconds=12)
    lines[17:17] = [
        f"{irq_at:%b %e %H:%M:%S} {hostname} kernel: [3018172.820223] do_IRQ: 1.221 {IRQ} (irq -1)",
        f"{irq_at + timedelta(seconds=3):%b %e %H:%M:%S} {hostname} kernel: [3018175.401877] "
        "bnx2: eth0 NIC Copper Link is Down",
        f"{irq_at + timedelta(seconds=6):%b %e %H:%M:%S} {hostname} kernel: [3018178.611020] "
        "bnx2: eth0 NIC Copper Link is Up, 1000 Mbps full duplex",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def kb_loaded(db):
    from io import StringIO

    from django.core.management import call_command

    call_command("load_kb", stdout=StringIO())


def test_a_tech_files_collects_reads_the_fix_accepts_it_and_resolves(lab, page, tech, customer, kb_loaded):
    host = lab.add_host("mxflap", private_tmp=True)
    host.write_file("/var/log/messages", bnx2_messages("mxflap"))
    server = lab_server(customer, host)
    book = next(b for b in DEFAULT_PLAYBOOKS if b["name"] == "Network interface down")
    Playbook.objects.create(name=book["name"], description=book["description"], steps=book["steps"])

    # File the ticket through the form.
    sign_in(page, tech, then="/tickets/new/")
    page.select_option("#id_customer", label=str(customer))
    page.fill("#id_subject", "Mail gateway drops off the network every few days")
    page.fill("#id_description", "Customer says eth0 goes away, then comes back by itself.")
    page.select_option("#id_servers", label=str(server))
    page.get_by_role("button", name="File ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+/$"))
    ticket = Ticket.objects.get(subject="Mail gateway drops off the network every few days")

    # Collect, and watch the run page reach its end on its own.
    collections = page.locator("#collections")
    collections.locator("select[name=server]").select_option(label=str(server))
    collections.locator("select[name=playbook]").select_option(label=book["name"])
    collections.get_by_role("button", name="Collect", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    worker = Worker(run_id)
    worker.start()
    try:
        expect(page.locator(".runstate")).to_have_class(re.compile(r"\bstate-succeeded\b"), timeout=60_000)
    finally:
        worker.join()
    assert CollectionRun.objects.get(pk=run_id).state == RunState.SUCCEEDED
    expect(page.locator(".run-symptoms")).to_contain_text("bnx2")

    # The ticket: the right fix first, with the lines that prove it.
    page.goto(f"/tickets/{ticket.pk}/")
    recipe = FixRecipe.objects.get(key="bnx2-disable-msi")
    first = page.locator("#fixes li.fix").first
    expect(first.locator("h3")).to_have_text(recipe.title)
    expect(first.locator(".citations")).to_contain_text(IRQ)
    expect(first.locator(".citations")).to_contain_text("NIC Copper Link is Down")
    save_screenshot(page, "ticket-fixes")

    # A citation leads to the highlighted line of the evidence.
    link = first.locator(".citations a", has_text="line").first
    href = link.get_attribute("href")
    anchor = href.split("#", 1)[1]
    link.click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/#{anchor}$"))
    expect(page.locator(f"#{anchor}")).to_contain_text(IRQ)
    expect(page.locator(f"#{anchor}")).to_have_class(re.compile(r"\bcited\b"))

    # Accept it, then resolve naming it as the fix.
    page.goto(f"/tickets/{ticket.pk}/")
    first = page.locator("#fixes li.fix").first
    first.get_by_role("button", name="Accept").click()
    expect(page.locator("#fixes li.fix").first).to_contain_text("Accepted")
    status_form = page.locator("form.action", has=page.locator("select[name=status]"))
    status_form.locator("select[name=status]").select_option(Status.RESOLVED.value)
    status_form.locator("select[name=fixed_by]").select_option(label=recipe.title)
    status_form.get_by_role("button", name="Change status").click()
    expect(page.locator("#fixes li.fix").first).to_contain_text("Fixed this ticket")
    expect(page.locator(".timeline")).to_contain_text(f"Fixed by: {recipe.title}")
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    kinds = set(RecipeOutcome.objects.filter(ticket=ticket, recipe=recipe).values_list("kind", flat=True))
    assert kinds >= {RecipeOutcome.SUGGESTED, RecipeOutcome.ACCEPTED, RecipeOutcome.FIXED}


@pytest.mark.parametrize("path", ["/kb/symptoms/new/", "/users/", "/playbooks/", "/audit/"])
def test_a_tech_cannot_reach_the_admin_pages(page, tech, kb_loaded, path):
    sign_in(page, tech)
    response = page.goto(path)
    assert response.status == 403
    expect(page.locator("main")).not_to_contain_text("Save")


def test_the_ticket_page_follows_a_collection_live_and_shows_the_fix_without_reloading(
    lab, page, tech, customer, kb_loaded
):
    host = lab.add_host("mxlive", private_tmp=True)
    host.write_file("/var/log/messages", bnx2_messages("mxlive"))
    server = lab_server(customer, host)
    book = next(b for b in DEFAULT_PLAYBOOKS if b["name"] == "Network interface down")
    playbook = Playbook.objects.create(name=book["name"], description=book["description"], steps=book["steps"])
    ticket = desk.ticket_create(
        subject="eth0 flaps", description="Again.", customer=customer, servers=[server], created_by=tech
    )
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=tech, enqueue=False)

    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    expect(page.locator(f"#live-run-{run.pk} .progress")).to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#ticket-runs")).to_have_attribute("hx-trigger", "every 1s")
    expect(page.locator("#fixes")).to_contain_text("no evidence has been collected")
    mark_document(page)
    worker = Worker(run.pk)
    worker.start()
    try:
        expect(page.locator("#fixes li.fix").first.locator("h3")).to_have_text(
            FixRecipe.objects.get(key="bnx2-disable-msi").title, timeout=60_000
        )
    finally:
        worker.join()
    assert_same_document(page)
    expect(page.locator(f"#live-run-{run.pk}")).to_have_count(0)
    expect(page.locator("#ticket-runs .runstate").first).to_have_text("Succeeded")
    assert page.locator("#ticket-runs").get_attribute("hx-trigger") is None
