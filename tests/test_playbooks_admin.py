"""Admins edit playbooks in the browser; bad steps are clear errors that lose nothing."""

from __future__ import annotations

import json
import re
from html import unescape

from django.conf import settings
from django.urls import reverse

from diagnostics import services, tasks
from diagnostics.models import Playbook
from tests.conftest import login, make_user
from triage import access


def test_the_default_playbooks_are_created_once_and_all_validate(db):
    first = services.playbooks_ensure()
    assert {p.name for p in first} >= {"Mail is slow to send", "Connections piling up", "Slow logins", "Host health"}
    services.playbooks_ensure()
    assert Playbook.objects.count() == len(first)


def test_an_admin_saves_a_playbook_and_a_bad_step_is_explained(client, admin_user):
    login(client, admin_user)
    bad = [{"probe": "load", "params": {}}, {"probe": "strace", "params": {"process": "tcp; reboot"}}]
    response = client.post(reverse("playbook_new"), {"name": "Ident check", "description": "port 113",
                                                     "steps": json.dumps(bad), "enabled": "on"})
    page = response.content.decode()
    assert response.status_code == 200 and "step 2 (strace)" in page and "process" in page
    assert "tcp; reboot" in page  # what was typed is kept for correcting
    assert not Playbook.objects.filter(name="Ident check").exists()

    good = [{"probe": "strace", "params": {"process": "tcpserver", "seconds": 20}}]
    response = client.post(reverse("playbook_new"), {"name": "Ident check", "description": "port 113",
                                                     "steps": json.dumps(good), "enabled": "on"})
    assert response.status_code == 302
    saved = Playbook.objects.get(name="Ident check")
    assert saved.steps[0]["probe"] == "strace" and saved.steps[0]["params"]["seconds"] == 20
    assert saved.updated_by == admin_user


def test_malformed_json_is_a_field_error(client, admin_user):
    login(client, admin_user)
    response = client.post(reverse("playbook_new"), {"name": "x", "steps": "[{", "enabled": "on"})
    assert "Not valid JSON" in response.content.decode()


def test_a_tech_cannot_edit_playbooks(client, tech):
    login(client, tech)
    assert client.post(reverse("playbook_new"), {"name": "x", "steps": "[]"}).status_code == 403


def test_runs_outlive_no_broker_redelivery_window():
    """A long run must never be re-delivered while it still runs: the broker's
    visibility timeout has to exceed the task's hard time limit."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if "visibility_timeout" in options:
        assert options["visibility_timeout"] > tasks.collect_run.time_limit
    assert tasks.collect_run.acks_late and tasks.collect_run.reject_on_worker_lost
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_a_save_from_an_editor_opened_before_anothers_save_is_shown_not_applied(client, admin_user):
    playbook = Playbook.objects.create(name="Ident check", description="port 113",
                                       steps=[{"probe": "load", "params": {}}])
    page = login(client, admin_user).get(reverse("playbook_edit", args=[playbook.pk])).content.decode()
    seen = unescape(re.search(r'name="seen_updated_at" value="([^"]+)"', page).group(1))
    mine = {"name": "Ident check", "description": "port 113, mine", "enabled": "on", "seen_updated_at": seen,
            "steps": json.dumps([{"probe": "load", "params": {}}, {"probe": "disk", "params": {}}])}

    other = make_user("grace", access.ADMIN)
    login(client, other).post(reverse("playbook_edit", args=[playbook.pk]), {
        "name": "Ident check", "description": "theirs", "enabled": "on", "seen_updated_at": seen,
        "steps": json.dumps([{"probe": "memory", "params": {}}])})
    playbook.refresh_from_db()
    assert playbook.description == "theirs"

    text = unescape(login(client, admin_user).post(reverse("playbook_edit", args=[playbook.pk]), mine)
                    .content.decode())
    assert "saved by grace" in text and "nothing was saved" in text and '"memory"' in text
    assert "port 113, mine" in text
    playbook.refresh_from_db()
    assert playbook.description == "theirs" and playbook.steps[0]["probe"] == "memory"

    again = unescape(re.search(r'name="seen_updated_at" value="([^"]+)"', text).group(1))
    saved = client.post(reverse("playbook_edit", args=[playbook.pk]), {**mine, "seen_updated_at": again})
    assert saved.status_code == 302
    playbook.refresh_from_db()
    assert playbook.description == "port 113, mine" and len(playbook.steps) == 2


def test_crlf_from_the_browser_is_stored_as_lf(client, admin_user):
    login(client, admin_user).post(reverse("playbook_new"), {
        "name": "Two lines", "description": "first\r\nsecond", "enabled": "on",
        "steps": '[\r\n  {"probe": "load", "params": {}}\r\n]'})
    assert Playbook.objects.get(name="Two lines").description == "first\nsecond"
