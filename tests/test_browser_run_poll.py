"""The run page's poll in a real browser: a finished step a tech opened stays open while the run goes on, and
the polls never carry a finished step's output again (tests/test_run_poll.py has the server side).

The lab host runs a quick step beside an 8-second strace, so the page is still polling for a while after the
quick step finished. As in test_browser_collection.py the test plays the Celery worker on a thread.
"""

from __future__ import annotations

import re
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from diagnostics import services
from diagnostics.models import Playbook, RunState
from tests.browser import BROWSER_MARKS, sign_in
from tests.lab_servers import lab_server
from tests.test_browser_collection import Worker
from triage import services as desk

STEPS = [{"probe": "disk", "params": {}}, {"probe": "strace", "params": {"process": "sshd", "seconds": 8}}]

pytestmark = [*BROWSER_MARKS, pytest.mark.root]


def wait_for(page, condition, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        page.wait_for_timeout(100)  # not time.sleep: Playwright handles the routed polls only while it runs


def test_a_step_opened_while_the_run_goes_on_stays_open_and_polls_skip_finished_steps(lab, page, tech, customer):
    host = lab.add_host("pollhost", private_tmp=True, own_pids=True)
    server = lab_server(customer, host)
    ticket = desk.ticket_create(
        subject="Disk filling up",
        description="Writes fail at night.",
        customer=customer,
        servers=[server],
        created_by=tech,
        now=timezone.now(),
    )
    run = services.run_request(
        ticket=ticket, server=server, by=tech, playbook=Playbook.objects.create(name="Disk and sshd", steps=STEPS)
    )

    # Every poll's answer, as the browser got it.
    polls: list[str] = []

    def record(route):
        response = route.fetch()
        polls.append(response.text())
        route.fulfill(response=response)

    page.route(re.compile(rf"/runs/{run.pk}/\?pending="), record)
    sign_in(page, tech, then=f"/runs/{run.pk}/")
    state = page.locator(f"#run-{run.pk}-state")
    expect(state).to_have_attribute("hx-trigger", "every 1s")
    disk = page.locator("#ev-0")
    expect(disk).to_have_class(re.compile(r"\bstep-pending\b"))

    worker = Worker(run.pk)
    worker.start()
    try:
        expect(disk).to_have_class(re.compile(r"\bstep-done\b"), timeout=15_000)
        expect(disk.locator("pre.output")).to_contain_text("Filesystem")
        # strace is still watching: the run goes on and the page still polls.
        expect(page.locator("#ev-1")).to_have_class(re.compile(r"\bstep-pending\b"))
        expect(state).to_have_attribute("hx-trigger", "every 1s")
        details = disk.locator("details")
        assert details.get_attribute("open") is None, "a step that went well starts closed"
        disk.locator("summary").click()
        expect(details).to_have_attribute("open", "")

        opened_at = len(polls)
        wait_for(page, lambda: len(polls) >= opened_at + 3, seconds=10, what="three more polls")
        expect(details).to_have_attribute("open", "")
        expect(page.locator("#ev-1")).to_have_class(re.compile(r"\bstep-pending\b"))
    finally:
        worker.join()
    assert worker.result is not None and worker.result.state == RunState.SUCCEEDED, worker.result

    expect(page.locator(".runstate")).to_have_class(re.compile(r"\bstate-succeeded\b"), timeout=15_000)
    expect(state).not_to_have_attribute("hx-trigger", re.compile(".*"))
    expect(details).to_have_attribute("open", "")  # still, after the polls that finished the run
    expect(page.locator("#ev-1")).to_have_class(re.compile(r"\bstep-(done|nonzero)\b"))

    # Each step came in a poll's answer until it finished, then never again: disk's output was sent once.
    with_disk_output = [body for body in polls if 'id="ev-0"' in body and "Filesystem" in body]
    assert len(with_disk_output) == 1, len(with_disk_output)
    after = polls[polls.index(with_disk_output[0]) + 1 :]
    assert len(after) >= 3 and not any('id="ev-0"' in body for body in after)
    assert all(body.count('<pre class="output') <= 2 for body in polls)  # at most one step's output and stderr
