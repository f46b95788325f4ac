"""A host-key-changed alert against a real sshd: an impostor's key raises it; once the impostor's
key is revoked and a collection logs in with the pinned key again, the alert clears; and a
revoked key can never be trusted with a button again."""

from __future__ import annotations

import shutil

import pytest
from django.urls import reverse

from diagnostics import services
from diagnostics.models import HostKey, Playbook, RunState
from tests.conftest import login
from tests.lab_servers import lab_server
from triage import services as desk

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]


def _collect(ticket, server):
    playbook, _ = Playbook.objects.get_or_create(name="lab load", defaults={"steps": [{"probe": "load", "params": {}}]})
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    return services.run_execute(run_id=run.pk, worker="test")


def _impostor_then_back(host, tmp_path):
    """The host answers with another key (a man in the middle) until the returned callable puts the real one back."""
    saved = [shutil.copy2(p, tmp_path / p.name) for p in (host.host_key_path, host.host_key_path.with_suffix(".pub"))]
    host.rotate_host_key()

    def real_key_back():
        host.stop_sshd()
        for copy, original in zip(saved, (host.host_key_path, host.host_key_path.with_suffix(".pub")), strict=True):
            shutil.copy2(copy, original)
        host.start_sshd()

    return real_key_back


def test_the_alert_clears_when_the_impostor_key_is_revoked_and_a_collection_succeeds(
    lab, customer, tech, admin_user, client, tmp_path
):
    host = lab.add_host("mitm")
    server = lab_server(customer, host)
    ticket = desk.ticket_create(subject="Mail is slow", description="30 s", customer=customer, created_by=tech)
    real_key_back = _impostor_then_back(host, tmp_path)

    assert _collect(ticket, server).failure_kind == "host_key_changed"
    server.refresh_from_db()
    assert server.host_key_changed_at is not None
    impostor = HostKey.objects.get(server=server, status=HostKey.PENDING)

    login(client, admin_user)
    decide = reverse("host_key_decide", args=[server.pk, impostor.pk])
    assert client.post(decide, {"decision": "revoke"}).status_code == 302
    page = client.get(reverse("server_access", args=[server.pk])).content.decode()
    assert "Host key changed at" in page
    assert f'action="{decide}"' not in page and 'value="trust"' not in page, "no Trust button for a revoked key"
    refused = client.post(decide, {"decision": "trust"})
    impostor.refresh_from_db()
    assert refused.status_code == 400 and impostor.status == HostKey.REVOKED

    real_key_back()
    assert _collect(ticket, server).state == RunState.SUCCEEDED
    server.refresh_from_db()
    assert server.host_key_changed_at is None
    assert "Host key changed at" not in client.get(reverse("server_access", args=[server.pk])).content.decode()


def test_the_alert_stays_while_the_offered_key_waits_for_a_decision(lab, customer, tech, tmp_path):
    host = lab.add_host("undecided")
    server = lab_server(customer, host)
    ticket = desk.ticket_create(subject="Mail is slow", description="30 s", customer=customer, created_by=tech)
    real_key_back = _impostor_then_back(host, tmp_path)
    assert _collect(ticket, server).failure_kind == "host_key_changed"
    real_key_back()
    assert _collect(ticket, server).state == RunState.SUCCEEDED
    server.refresh_from_db()
    assert server.host_key_changed_at is not None, "an offered key nobody has looked at keeps the alert up"
