"""The run page's poll brings the run's state and only the steps that changed.

The browser side (a step a tech opened stays open, poll responses carry no finished output) is in
tests/test_browser_run_poll.py.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from diagnostics.models import CollectionRun, Evidence, RunState
from tests.conftest import login

HTMX = {"HX-Request": "true"}
OUTPUTS = ["first-output-line", "second-output-line", "third-output-line"]


def running_run(ticket, server) -> CollectionRun:
    steps = [{"probe": probe, "params": {}} for probe in ("load", "disk", "processes")]
    return CollectionRun.objects.create(
        ticket=ticket,
        server=server,
        playbook_name="recorded",
        steps=steps,
        state=RunState.RUNNING,
        started_at=timezone.now(),
    )


def finish_step(run: CollectionRun, step: int) -> None:
    text = OUTPUTS[step] + "\n"
    Evidence.objects.create(
        run=run,
        step=step,
        probe=run.steps[step]["probe"],
        command="true",
        exit_status=0,
        output=text.encode(),
        output_bytes=len(text),
    )


def poll(client, run, query: str):
    return client.get(reverse("run", args=[run.pk]) + "?" + query, headers=HTMX)


def test_the_page_polls_for_its_unfinished_steps_only(client, tech, ticket, server):
    run = running_run(ticket, server)
    finish_step(run, 0)
    page = login(client, tech).get(reverse("run", args=[run.pk])).content.decode()
    assert OUTPUTS[0] in page
    assert f'hx-get="/runs/{run.pk}/?pending=1%2C2&amp;shown=3"' in page


def test_a_poll_sends_the_state_and_the_steps_shown_unfinished_never_a_finished_one(client, tech, ticket, server):
    run = running_run(ticket, server)
    finish_step(run, 0)
    finish_step(run, 1)
    body = poll(login(client, tech), run, "pending=1%2C2&shown=3").content.decode()
    assert f'id="run-{run.pk}-state"' in body and 'aria-valuenow="67"' in body
    assert OUTPUTS[1] in body, "the step that finished since the last poll comes once, final"
    assert OUTPUTS[0] not in body and 'id="ev-0"' not in body, "the page has it already"
    assert 'id="ev-2" hx-swap-oob="true"' in body and "running…" in body
    assert "pending=2&amp;shown=3" in body, "the next poll asks for what is still unfinished"


def test_evidence_the_page_does_not_show_yet_is_appended(client, tech, ticket, server):
    run = running_run(ticket, server)
    for step in range(3):
        finish_step(run, step)
    Evidence.objects.create(
        run=run, step=3, probe="ssh_session", command="", exit_status=0, output=b"session\n", output_bytes=8
    )
    body = poll(login(client, tech), run, "pending=&shown=3").content.decode()
    assert f'hx-swap-oob="beforeend:#run-{run.pk}-steps"' in body and 'id="ev-3"' in body
    assert not any(output in body for output in OUTPUTS)


def test_a_settled_run_stops_polling_and_resends_only_its_cited_steps(client, tech, ticket, kb, make_run):
    from tests.diagnosing import diagnosed
    from tests.test_fixes_view import HEALTHY, KERNEL_LOG

    run = make_run({"load": HEALTHY["load"], "kernel_log": KERNEL_LOG})
    diagnosed(run)
    body = poll(login(client, tech), run, "pending=&shown=2").content.decode()
    assert "hx-trigger" not in body, "settled: the poll stops"
    assert 'id="ev-1" hx-swap-oob="true"' in body and 'class="ln cited"' in body, "the cited lines, marked"
    assert "load average" not in body and 'id="ev-0"' not in body, "an uncited finished step is not sent again"


def test_a_poll_with_bad_parameters_is_refused_with_what_is_wrong(client, tech, ticket, server):
    run = running_run(ticket, server)
    response = poll(login(client, tech), run, "pending=x&shown=3")
    assert response.status_code == 400
    assert b"pending=<step numbers, comma-separated>&shown=<number>" in response.content
