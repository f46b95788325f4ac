"""Bootstrapping a production desk: the first admin (Django's password validators
enforced, idempotent) and the demo loader refused in production mode."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tests.test_deployment import production_env

REPO = Path(__file__).resolve().parent.parent


def create_admin(**options) -> str:
    out = StringIO()
    call_command("create_admin", stdout=out, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("1234567890", "entirely numeric"),
        ("password123", "too common"),
        ("short", "too short"),
        ("first-admin-ops", "too similar"),
    ],
)
def test_create_admin_refuses_a_password_the_validators_refuse(db, password, why):
    with pytest.raises(CommandError, match=why):
        create_admin(username="first-admin-ops", email="ops@desk.example.com", password=password)

    assert not get_user_model().objects.filter(username="first-admin-ops").exists()


def test_create_admin_takes_its_account_from_the_environment_once(db, monkeypatch, client):
    monkeypatch.setenv("TRIAGE_ADMIN_USERNAME", "root-ops")
    monkeypatch.setenv("TRIAGE_ADMIN_EMAIL", "root@desk.example.com")
    monkeypatch.setenv("TRIAGE_ADMIN_PASSWORD", "violet-harbour-lantern-42")
    call_command("setup_roles", stdout=StringIO())

    assert "created admin 'root-ops'" in create_admin()
    user = get_user_model().objects.get(username="root-ops")
    assert user.email == "root@desk.example.com"
    assert set(user.groups.values_list("name", flat=True)) == {"admin", "tech"}
    assert client.login(username="root-ops", password="violet-harbour-lantern-42")

    # Every `docker-compose up` runs it again: a no-op that never resets the password.
    monkeypatch.setenv("TRIAGE_ADMIN_PASSWORD", "a-different-long-password-7")
    assert "already exists" in create_admin()
    assert client.login(username="root-ops", password="violet-harbour-lantern-42")


def test_seed_demo_refuses_to_run_in_production(tmp_path):
    # A subprocess, because production mode is read once when settings load. The refusal comes
    # before any query, so the database the URL names need not exist.
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--tickets", "1"],
        cwd=REPO,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "seed_demo refuses to run in production" in result.stderr
    assert "Traceback" not in result.stderr
