"""A fleet sweep in a real browser: headless chromium, the live server and real sshd hosts in the lab.

A tech sweeps a customer's servers from its page with "Open tickets for findings" ticked; the sweep page
follows each host's run by swapping its own fragment until every host is done, then shows what was found
grouped by symptom across the fleet, the host that could not be reached and why, and the ticket it filed.
Sweeping again opens no second ticket: the open one gets a note. Nothing consumes the broker here, so the
test plays the collector: one thread per run, calling `run_execute` as the Celery task would.
"""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connections
from playwright.sync_api import Page, expect

from diagnostics import services
from diagnostics.models import Playbook, RunState, Sweep
from tests.browser import BROWSER_MARKS, save_screenshot, sign_in
from tests.lab_servers import lab_server
from triage.models import EventKind, Ticket

pytestmark = [*BROWSER_MARKS, pytest.mark.root]

HOSTILE = "<script>alert(1)</script>"
CONNTRACK = f"Dec  3 02:00:01 kernel: nf_conntrack: table full, dropping packet {HOSTILE}\n"
QUIET = "Dec  3 02:00:00 systemd[1]: Started Daily apt upgrade and clean activities.\n"
TITLE = "Netfilter connection tracking table full: new connections are dropped"

# Appended to on every htmx swap of the sweep: the hosts' states each poll brought.
RECORD_SWAPS = """
window.__sameDocument = true;
window.__swaps = [];
document.body.addEventListener('htmx:afterSwap', () => {
  window.__swaps.push(Array.from(document.querySelectorAll('.sweep-host')).map(r => r.dataset.state).join(','));
});
"""


class Collector:
    """The collector's thread pool for one sweep: each run on its own thread."""

    def __init__(self, sweep: Sweep):
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._work, args=(pk,), daemon=True)
            for pk in sweep.runs.values_list("pk", flat=True)
        ]

    def _work(self, run_id: int) -> None:
        try:
            services.run_execute(run_id=run_id, worker="browser-test")
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            self.errors.append(exc)
        finally:
            connections.close_all()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self.threads), "a run did not finish within 60 s"
        if self.errors:
            raise self.errors[0]


def sweep_from_the_customer_page(page: Page, customer) -> Sweep:
    page.goto(f"/customers/{customer.pk}/")
    form = page.locator("form.sweep-form")
    form.locator("select[name=playbook]").select_option(label="Logs")
    form.get_by_label("Open tickets for findings").check()
    form.get_by_role("button", name="Sweep", exact=True).click()
    expect(page).to_have_url(re.compile(r"/sweeps/\d+/$"))
    return Sweep.objects.get(pk=int(re.search(r"/sweeps/(\d+)/$", page.url).group(1)))


def test_a_tech_sweeps_the_fleet_and_a_second_sweep_adds_to_the_same_ticket(
    lab, page, tech, customer, kb, transactional_db
):
    hosts = {name: lab.add_host(name, private_tmp=True) for name in ("web1", "web2", "web3", "db1")}
    hosts["web1"].write_file("/var/log/messages", CONNTRACK)
    hosts["web2"].write_file("/var/log/messages", QUIET + CONNTRACK)
    hosts["web3"].write_file("/var/log/messages", QUIET)
    hosts["db1"].drop_syn()  # connects time out: the host is listed as unreachable, the others go on
    for host in hosts.values():
        lab_server(customer, host)
    Playbook.objects.create(name="Logs", steps=[{"probe": "system_log", "params": {}}])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page, tech, then=f"/customers/{customer.pk}/")
    sweep = sweep_from_the_customer_page(page, customer)
    rows = page.locator(".sweep-host")
    expect(rows).to_have_count(4)
    expect(page.locator(f"#sweep-{sweep.pk}")).to_have_attribute("hx-trigger", "every 1s")
    assert [rows.nth(i).get_attribute("data-state") for i in range(4)] == ["queued"] * 4
    page.evaluate(RECORD_SWAPS)

    with Collector(sweep):
        expect(page.locator(".sweep-finished")).to_be_visible(timeout=45_000)
    # Live: swapped in place, never reloaded, with the hosts' states moving on between polls.
    assert page.evaluate("window.__sameDocument === true"), "the sweep page reloaded instead of swapping"
    swaps = page.evaluate("window.__swaps")
    assert len(set(swaps)) >= 2, swaps
    assert page.locator(f"#sweep-{sweep.pk}").get_attribute("hx-trigger") is None

    states = {rows.nth(i).locator("td").first.inner_text(): rows.nth(i).get_attribute("data-state") for i in range(4)}
    assert states == {
        "db1": RunState.FAILED,
        "web1": RunState.SUCCEEDED,
        "web2": RunState.SUCCEEDED,
        "web3": RunState.SUCCEEDED,
    }
    group = page.locator(".sweep-group")
    expect(group).to_have_count(1)
    expect(group.locator("h3")).to_have_text(f"2 of 4 hosts: {TITLE}")
    expect(group.locator(".sweep-group-hosts > li")).to_have_count(2)
    expect(group.locator(".citations code").first).to_contain_text(HOSTILE)  # evidence is text, escaped
    assert page.locator("script:has-text('alert(1)')").count() == 0 and dialogs == []
    unreached = page.locator(".sweep-unreached li")
    expect(unreached).to_have_count(1)
    expect(unreached).to_contain_text(re.compile(r"db1: Unreachable\. Connect timed out after \d+ s\."))
    save_screenshot(page, "sweep")

    # The ticket it filed: one, for the symptom, on both hosts, with the fix and the lines that prove it.
    ticket = Ticket.objects.get()
    link = group.locator(".sweep-tickets a")
    expect(link).to_have_text(ticket.reference)
    link.click()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket.pk}/$"))
    expect(page.locator("h1")).to_contain_text(TITLE)
    fixes = page.locator("#fixes .fix")
    expect(fixes.first).to_be_visible()
    expect(page.locator("#fixes")).to_contain_text("nf_conntrack: table full")
    assert sorted(ticket.servers.values_list("name", flat=True)) == ["web1", "web2"]

    # Tonight's sweep finds it again: no second ticket, a note on the open one.
    again = sweep_from_the_customer_page(page, customer)
    with Collector(again):
        expect(page.locator(".sweep-finished")).to_be_visible(timeout=45_000)
    expect(page.locator(".sweep-group .sweep-tickets a")).to_have_text(ticket.reference)
    assert Ticket.objects.count() == 1
    note = f"Seen again on 2 of 4 hosts (sweep #{again.pk}): web1, web2."
    assert ticket.events.filter(kind=EventKind.NOTE, body=note).exists()
    page.locator(".sweep-group .sweep-tickets a").click()
    expect(page.locator(".timeline")).to_contain_text(note)
