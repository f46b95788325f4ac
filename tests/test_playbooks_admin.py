"""Admins edit playbooks in the browser, a step per row: bad steps are clear errors on their own row that lose
nothing, row buttons work without JavaScript, and a save over another admin's is shown, not applied."""

from __future__ import annotations

import re
from html import unescape

from django.conf import settings
from django.urls import reverse

from diagnostics import services, tasks
from diagnostics.models import Playbook
from tests.conftest import login, make_user
from triage import access


def rows(*steps, seen="", name="Ident check", description="port 113", **extra) -> dict:
    """The editor's POST: the playbook's fields, then one row per (probe, {param: typed text})."""
    data = {
        "name": name,
        "description": description,
        "enabled": "on",
        "seen_updated_at": seen,
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(len(steps)),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "20",
        **extra,
    }
    for n, (probe, params) in enumerate(steps):
        data[f"steps-{n}-probe"] = probe
        data.update({f"steps-{n}-param_{k}": v for k, v in params.items()})
    return data


def row_html(page: str, n: int) -> str:
    """Row n's markup (from 0)."""
    return re.search(rf'<li class="step-row[^"]*" id="steps-{n}-row".*?</li>', page, re.S).group(0)


def seen_at(page: str) -> str:
    return unescape(re.search(r'name="seen_updated_at" value="([^"]+)"', page).group(1))


def test_the_default_playbooks_are_created_once_and_all_validate(db):
    first = services.playbooks_ensure()
    assert {p.name for p in first} >= {"Mail is slow to send", "Connections piling up", "Slow logins", "Host health"}
    services.playbooks_ensure()
    assert Playbook.objects.count() == len(first)


def test_an_admin_saves_a_playbook_as_rows_with_typed_parameters(client, admin_user):
    login(client, admin_user)
    response = client.post(
        reverse("playbook_new"),
        rows(
            ("load", {}),
            ("strace", {"process": "tcpserver", "seconds": "20", "syscalls": ""}),
            ("log_tail", {"log_path": "/var/log/maillog", "lines": ""}),
        ),
    )
    assert response.status_code == 302
    saved = Playbook.objects.get(name="Ident check")
    assert [s["probe"] for s in saved.steps] == ["load", "strace", "log_tail"]
    assert saved.steps[1]["params"]["process"] == "tcpserver" and saved.steps[1]["params"]["seconds"] == 20
    assert saved.steps[1]["params"]["syscalls"].startswith("connect,")  # blank: the probe's default
    assert saved.steps[2]["params"] == {"log_path": "/var/log/maillog", "lines": 500}
    assert saved.updated_by == admin_user


def test_the_editor_shows_each_stored_step_as_a_row_with_its_probes_own_inputs(client, admin_user):
    playbook = Playbook.objects.create(
        name="Ident check",
        steps=[
            {"probe": "tcpdump", "params": {"interface": "any", "seconds": 30, "count": 5000, "bpf": "tcp port 113"}},
            {"probe": "log_tail", "params": {"log_path": "/var/log/secure", "lines": 200}},
        ],
    )
    page = login(client, admin_user).get(reverse("playbook_edit", args=[playbook.pk])).content.decode()
    first, second = row_html(page, 0), row_html(page, 1)
    assert '<option value="tcpdump" selected>' in first and "Captures packets" in first  # the probe's description
    assert re.search(r'type="number" name="steps-0-param_seconds" value="30"[^>]*min="1"[^>]*max="60"', first)
    assert 'name="steps-0-param_bpf" value="tcp port 113"' in first
    # The allowlisted log files are a select, from the parameter kind's own list.
    assert '<option value="/var/log/secure" selected>' in second and 'name="steps-1-param_log_path"' in second
    # A template per probe for the script, and no JSON textarea any more; the stored steps stay readable.
    assert 'data-probe-params="strace"' in page and 'name="steps-__prefix__-param_process"' in page
    assert 'name="steps"' not in page and "Saved steps as JSON" in page


def test_a_bad_parameter_shows_on_its_row_and_everything_typed_is_kept(client, admin_user):
    login(client, admin_user)
    response = client.post(
        reverse("playbook_new"),
        rows(("load", {}), ("strace", {"process": "tcp; reboot", "seconds": "500"}), ("kernel_log", {"lines": "42"})),
    )
    page = unescape(response.content.decode())
    assert response.status_code == 400 and not Playbook.objects.filter(name="Ident check").exists()
    bad = row_html(page, 1)
    assert "is not a process name" in bad and "must be from 1 to 60 seconds, not 500" in bad
    assert 'value="tcp; reboot"' in bad and 'value="500"' in bad
    assert "error" not in row_html(page, 0) and 'value="42"' in row_html(page, 2)
    assert "Step 2 (strace)" in page and 'value="Ident check"' in page and "port 113" in page


def test_an_unknown_probe_is_refused_on_its_row(client, admin_user):
    login(client, admin_user)
    response = client.post(reverse("playbook_new"), rows(("load", {}), ("reboot", {})))
    assert response.status_code == 400 and not Playbook.objects.exists()
    row = row_html(response.content.decode(), 1)
    assert "There is no probe called reboot" in row and '<option value="reboot" selected>' in row


def test_a_stored_step_whose_probe_is_gone_is_shown_and_must_be_replaced(client, admin_user):
    playbook = Playbook.objects.create(
        name="Old", steps=[{"probe": "load", "params": {}}, {"probe": "ident_check", "params": {"port": 113}}]
    )
    page = login(client, admin_user).get(reverse("playbook_edit", args=[playbook.pk])).content.decode()
    assert '<option value="ident_check" selected>ident_check: not a known probe</option>' in row_html(page, 1)
    response = client.post(
        reverse("playbook_edit", args=[playbook.pk]),
        rows(("load", {}), ("ident_check", {}), name="Old", seen=seen_at(page)),
    )
    assert response.status_code == 400 and "There is no probe called ident_check" in response.content.decode()


def test_a_playbook_needs_a_probe_in_at_least_one_row(client, admin_user):
    login(client, admin_user)
    response = client.post(reverse("playbook_new"), rows(("", {})))
    assert response.status_code == 400 and "at least one step" in response.content.decode()
    # A blank row beside real ones is left out.
    assert client.post(reverse("playbook_new"), rows(("load", {}), ("", {}))).status_code == 302
    assert Playbook.objects.get().steps == [{"probe": "load", "params": {}}]


def test_add_step_without_javascript_adds_a_blank_row_and_keeps_what_was_typed(client, admin_user):
    login(client, admin_user)
    response = client.post(
        reverse("playbook_new"), rows(("strace", {"process": "bad name!", "seconds": "9"}), name="", edit="add")
    )
    page = response.content.decode()
    assert response.status_code == 200 and not Playbook.objects.exists()
    assert 'name="steps-TOTAL_FORMS" value="2"' in page and 'id="steps-1-row"' in page
    assert 'value="bad name!"' in page and 'value="9"' in page
    main = page[page.index("<main>") :]
    assert 'class="error"' not in main and "form-errors" not in main  # nothing judged before Save, not even the name


def test_remove_and_move_without_javascript_rearrange_the_rows(client, admin_user):
    login(client, admin_user)
    three = (("load", {}), ("kernel_log", {"lines": "7"}), ("disk", {}))
    page = client.post(reverse("playbook_new"), rows(*three, edit="up-1")).content.decode()
    assert '<option value="kernel_log" selected>' in row_html(page, 0) and 'value="7"' in row_html(page, 0)
    assert '<option value="load" selected>' in row_html(page, 1)

    page = client.post(reverse("playbook_new"), rows(*three, edit="down-1")).content.decode()
    assert [re.search(r'<option value="(\w+)" selected>', row_html(page, n)).group(1) for n in range(3)] == [
        "load",
        "disk",
        "kernel_log",
    ]

    page = client.post(reverse("playbook_new"), rows(*three, edit="remove-0")).content.decode()
    assert 'name="steps-TOTAL_FORMS" value="2"' in page and '<option value="kernel_log" selected>' in row_html(page, 0)
    assert "steps-2-row" not in page and not Playbook.objects.exists()


def test_showing_a_newly_chosen_probes_parameters_without_javascript(client, admin_user):
    login(client, admin_user)
    # The row still carries the old probe's lines; the newly chosen strace gets its own inputs, and lines
    # is not one of them.
    page = client.post(reverse("playbook_new"), rows(("strace", {"lines": "50"}), edit="show-0")).content.decode()
    assert 'name="steps-0-param_process"' in page and 'name="steps-0-param_lines"' not in page


def test_a_tech_cannot_edit_playbooks(client, tech):
    login(client, tech)
    assert client.post(reverse("playbook_new"), rows(("load", {}))).status_code == 403


def test_runs_outlive_no_broker_redelivery_window():
    """A long run must never be re-delivered while it still runs: the broker's
    visibility timeout has to exceed the task's hard time limit."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if "visibility_timeout" in options:
        assert options["visibility_timeout"] > tasks.collect_run.time_limit
    assert tasks.collect_run.acks_late and tasks.collect_run.reject_on_worker_lost
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_a_save_from_an_editor_opened_before_anothers_save_is_shown_not_applied(client, admin_user):
    playbook = Playbook.objects.create(
        name="Ident check", description="port 113", steps=[{"probe": "load", "params": {}}]
    )
    seen = seen_at(login(client, admin_user).get(reverse("playbook_edit", args=[playbook.pk])).content.decode())
    mine = rows(("load", {}), ("disk", {}), seen=seen, description="port 113, mine")

    other = make_user("grace", access.ADMIN)
    login(client, other).post(
        reverse("playbook_edit", args=[playbook.pk]), rows(("memory", {}), seen=seen, description="theirs")
    )
    playbook.refresh_from_db()
    assert playbook.description == "theirs"

    response = login(client, admin_user).post(reverse("playbook_edit", args=[playbook.pk]), mine)
    text = unescape(response.content.decode())
    assert response.status_code == 409
    assert "saved by grace" in text and "nothing was saved" in text and "Memory and swap" in text
    assert "port 113, mine" in text and '<option value="disk" selected>' in row_html(text, 1)
    playbook.refresh_from_db()
    assert playbook.description == "theirs" and playbook.steps[0]["probe"] == "memory"

    saved = client.post(reverse("playbook_edit", args=[playbook.pk]), {**mine, "seen_updated_at": seen_at(text)})
    assert saved.status_code == 302
    playbook.refresh_from_db()
    assert playbook.description == "port 113, mine" and [s["probe"] for s in playbook.steps] == ["load", "disk"]


def test_a_row_button_keeps_the_time_the_editor_opened_so_the_conflict_is_still_caught(client, admin_user):
    playbook = Playbook.objects.create(name="Ident check", steps=[{"probe": "load", "params": {}}])
    seen = seen_at(login(client, admin_user).get(reverse("playbook_edit", args=[playbook.pk])).content.decode())
    services.playbook_save(
        playbook=playbook,
        name="Ident check",
        description="theirs",
        steps=[{"probe": "memory", "params": {}}],
        enabled=True,
        by=make_user("grace", access.ADMIN),
    )

    page = client.post(reverse("playbook_edit", args=[playbook.pk]), rows(("load", {}), seen=seen, edit="add"))
    assert seen_at(page.content.decode()) == seen
    response = client.post(reverse("playbook_edit", args=[playbook.pk]), rows(("load", {}), ("disk", {}), seen=seen))
    assert response.status_code == 409 and "nothing was saved" in response.content.decode()


def test_crlf_from_the_browser_is_stored_as_lf(client, admin_user):
    login(client, admin_user).post(
        reverse("playbook_new"), rows(("load", {}), name="Two lines", description="first\r\nsecond")
    )
    assert Playbook.objects.get(name="Two lines").description == "first\nsecond"
