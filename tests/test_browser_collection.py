"""Collecting evidence in a real browser: headless chromium, the live server and a real sshd in the lab.

The tech presses Collect on the ticket page and lands on the run page, which polls its own fragment with htmx
until the run is terminal. Nothing consumes the broker here, so the test plays the worker: once the page shows
the run queued it calls `run_execute` from a thread, exactly as the Celery task would.
"""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect

from diagnostics import services
from diagnostics.models import CollectionRun, Playbook, RunState
from tests.browser import BROWSER_MARKS, save_screenshot, sign_in
from tests.lab_servers import lab_server
from triage import services as desk

HOSTILE_LOG_LINE = "<script>alert(1)</script>"
# `load` samples vmstat for a second, so the run is still going while the page polls.
STEPS = [
    {"probe": "load", "params": {}},
    {"probe": "disk", "params": {}},
    {"probe": "processes", "params": {}},
    {"probe": "system_log", "params": {}},
]

pytestmark = [*BROWSER_MARKS, pytest.mark.root]

# Appended to on every htmx swap: the state badge each poll brought, so the test can see the page move on its own.
RECORD_STATES = """
window.__sameDocument = true;
window.__states = [document.querySelector('.runstate').className];
document.body.addEventListener('htmx:afterSwap', () => {
  window.__states.push(document.querySelector('.runstate').className);
});
"""


class Worker:
    """What the Celery task does with a run id, on a thread of this process."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.result: CollectionRun | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name=f"worker-run-{run_id}", daemon=True)

    def _work(self) -> None:
        try:
            self.result = services.run_execute(run_id=self.run_id, worker="browser-test")
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            self.error = exc
        finally:
            # The live server's flush at teardown must not find this thread's connection open.
            connections.close_all()

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the run did not finish within 60 s"
        if self.error is not None:
            raise self.error


def test_a_tech_collects_from_a_lab_host_and_watches_the_evidence_arrive(lab, page, tech, customer):
    host = lab.add_host("webdesk", private_tmp=True, own_pids=True)
    # The host's own /var/log: a log line that would run as script if the page ever rendered output as HTML.
    host.write_file("/var/log/messages", f"kernel: link up\n{HOSTILE_LOG_LINE}\n")
    server = lab_server(customer, host)
    ticket = desk.ticket_create(
        subject="Site slow since the kernel update",
        description="Pages take 10 s.",
        customer=customer,
        servers=[server],
        created_by=tech,
        now=timezone.now(),
    )
    Playbook.objects.create(name="Quick health", steps=STEPS)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page, tech, then=f"/tickets/{ticket.pk}/")
    collections = page.locator("#collections")
    expect(collections).to_contain_text("No evidence collected yet.")
    collections.locator("select[name=server]").select_option(label=str(server))
    collections.locator("select[name=playbook]").select_option(label="Quick health")
    collections.get_by_role("button", name="Collect", exact=True).click()

    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    assert CollectionRun.objects.get(pk=run_id).ticket_id == ticket.pk
    # No worker has it yet: the page shows it queued, at 0 %, and is polling.
    expect(page.locator(".runstate")).to_have_class(re.compile(r"\bstate-queued\b"))
    expect(page.locator(".progress")).to_have_attribute("aria-valuenow", "0")
    expect(page.locator(f"#run-{run_id}-state")).to_have_attribute("hx-trigger", "every 1s")
    expect(page.locator(".steps li.step")).to_have_count(len(STEPS))
    page.evaluate(RECORD_STATES)

    worker = Worker(run_id)
    worker.start()
    try:
        expect(page.locator(".runstate")).to_have_class(re.compile(r"\bstate-succeeded\b"), timeout=30_000)
    finally:
        worker.join()
    assert worker.result is not None and worker.result.state == RunState.SUCCEEDED, worker.result

    # The page got there by swapping fragments, never reloading, and every state before the last was live.
    assert page.evaluate("window.__sameDocument === true"), "the run page reloaded instead of swapping"
    states = page.evaluate("window.__states")
    assert "state-succeeded" in states[-1]
    # A poll that swaps steps out of band too fires afterSwap for each: the final state may be recorded more than once.
    first_final = states.index(states[-1])
    assert all(re.search(r"state-(queued|connecting|running)\b", s) for s in states[:first_final]), states
    assert set(states[first_final:]) == {states[-1]}, states
    assert len(states) >= 2, states
    # Terminal: the fragment no longer asks to be polled.
    assert page.locator(f"#run-{run_id}-state").get_attribute("hx-trigger") is None
    expect(page.locator(".progress")).to_have_attribute("aria-valuenow", "100")

    steps = page.locator(".steps li.step")
    for index, step in enumerate(STEPS):
        expect(steps.nth(index).locator("summary")).to_contain_text(step["probe"])
        expect(steps.nth(index).locator(".stepstate")).to_contain_text(re.compile(r"^exit 0 · "))

    load = steps.nth(0)
    if load.locator("details").get_attribute("open") is None:
        load.locator("summary").click()
    expect(load.locator("pre.output")).to_contain_text("load average")
    expect(steps.nth(2).locator("pre.output")).to_contain_text("sshd")

    # Command output is text: the hostile line shows literally and never becomes an element.
    system_log = steps.nth(3)
    system_log.locator("summary").click()
    expect(system_log.locator("pre.output")).to_contain_text(HOSTILE_LOG_LINE)
    assert page.locator("script:has-text('alert(1)')").count() == 0
    assert page.locator("pre.output script").count() == 0
    assert dialogs == []

    download = load.get_by_role("link", name="Download raw output")
    response = page.request.get(download.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="run{run_id}-0-load.txt"'
    assert "load average" in response.text()
    raw_log = page.request.get(system_log.get_by_role("link", name="Download raw output").get_attribute("href"))
    assert HOSTILE_LOG_LINE in raw_log.text() and raw_log.headers["x-content-type-options"] == "nosniff"

    save_screenshot(page, "run")

    page.get_by_role("link", name=re.compile(re.escape(ticket.subject))).click()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket.pk}/$"))
    row = page.locator("#collections tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"#{run_id}")
    expect(row).to_contain_text("Quick health")
    expect(row.locator(".runstate")).to_have_text("Succeeded")
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text(f"Collection requested: Quick health on {server.name}.")
    expect(timeline).to_contain_text(f"Collection succeeded: Quick health on {server.name}.")
