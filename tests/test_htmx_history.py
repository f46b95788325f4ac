"""htmx and the browser's history (triage/htmx.py): a history restore gets the whole page, and every response
chosen by HX-Request says so in Vary."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import login
from tests.test_run_poll import HTMX, OUTPUTS, finish_step, poll, running_run

RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


def test_the_queue_answers_a_history_restore_of_a_pushed_filter_with_the_whole_page(client, tech, ticket):
    login(client, tech)
    url = reverse("queue") + "?q=" + ticket.subject.split()[0]
    fragment = client.get(url, headers=HTMX).content.decode()
    assert "<html" not in fragment and ticket.subject in fragment, "the filter's own swap gets the results only"
    restore = client.get(url, headers=RESTORE).content.decode()
    assert "<html" in restore and ticket.subject in restore and 'id="queue-results"' in restore


def test_a_history_restore_gets_the_whole_page_not_the_fragment(client, tech, ticket, server):
    run = running_run(ticket, server)
    finish_step(run, 0)
    login(client, tech)
    restore = client.get(reverse("run", args=[run.pk]) + "?pending=1%2C2&shown=3", headers=RESTORE)
    assert restore.status_code == 200
    assert "<html" in restore.content.decode() and OUTPUTS[0] in restore.content.decode()
    fragment = poll(client, run, "pending=1%2C2&shown=3")
    assert "<html" not in fragment.content.decode()


def test_responses_chosen_by_hx_request_say_so_in_vary(client, tech, ticket, server):
    run = running_run(ticket, server)
    login(client, tech)
    for headers in ({}, HTMX, RESTORE):
        response = client.get(reverse("run", args=[run.pk]) + "?pending=0%2C1%2C2&shown=3", headers=headers)
        vary = {v.strip() for v in response["Vary"].split(",")}
        assert {"HX-Request", "HX-History-Restore-Request"} <= vary, headers
    for url in (reverse("queue"), reverse("ticket", args=[ticket.pk])):
        vary = {v.strip() for v in client.get(url, headers=HTMX)["Vary"].split(",")}
        assert {"HX-Request", "HX-History-Restore-Request"} <= vary, url


def test_a_response_that_never_looked_at_hx_request_does_not_vary_by_it(client, tech, ticket, server):
    run = running_run(ticket, server)
    finish_step(run, 0)
    response = login(client, tech).get(reverse("evidence_raw", args=[run.pk, 0]), headers=HTMX)
    assert "HX-Request" not in response.get("Vary", "")
