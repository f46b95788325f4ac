"""Credentials at rest, key rotation, host-key pinning records and known_hosts import."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from diagnostics import services, ssh
from diagnostics.models import AuditEntry, Credential, HostKey
from mailgate import mailbox_services
from tests.conftest import login
from triage import crypto
from webhooks import services as webhooks


def _keypair(tmp_path, passphrase: str = "") -> tuple[str, str]:
    path = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
    return path.read_text(), (tmp_path / "id.pub").read_text()


def test_a_private_key_is_stored_only_encrypted(tmp_path, server, admin_user):
    private, public = _keypair(tmp_path)
    credential = services.credential_set(server=server, kind="key", secret=private, by=admin_user)
    stored = bytes(Credential.objects.get(pk=credential.pk).secret_token)
    assert b"PRIVATE KEY" not in stored and private.encode() not in stored
    assert services.credential_secret(credential).private_key == private
    assert credential.public_fingerprint == ssh.fingerprint_of(public.split()[1])
    assert "hidden" in repr(services.credential_secret(credential))


def test_an_encrypted_key_needs_its_passphrase(tmp_path, server, admin_user):
    private, _ = _keypair(tmp_path, passphrase="open sesame")
    with pytest.raises(ValidationError, match="passphrase"):
        services.credential_set(server=server, kind="key", secret=private, passphrase="wrong", by=admin_user)
    credential = services.credential_set(
        server=server, kind="key", secret=private, passphrase="open sesame", by=admin_user
    )
    assert services.credential_secret(credential).passphrase == "open sesame"


def test_garbage_is_not_accepted_as_a_key(server, admin_user):
    with pytest.raises(ValidationError, match="not a private key"):
        services.credential_set(server=server, kind="key", secret="hello", by=admin_user)


def test_a_server_credential_wins_over_its_customers(tmp_path, customer, server, admin_user):
    services.credential_set(customer=customer, kind="password", secret="customer-wide", by=admin_user)
    assert services.credential_secret(services.credential_for(server)).password == "customer-wide"
    services.credential_set(server=server, kind="password", secret="server-own", by=admin_user)
    assert services.credential_secret(services.credential_for(server)).password == "server-own"


def test_rotation_re_encrypts_under_the_new_key_and_the_old_key_can_go(settings, server, admin_user):
    old = settings.CREDENTIALS_KEYS[0]
    credential = services.credential_set(server=server, kind="password", secret="s3cret", by=admin_user)
    new = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [new, old]
    call_command("rotate_credentials", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.CREDENTIALS_KEYS = [new]
    credential.refresh_from_db()
    assert services.credential_secret(credential).password == "s3cret"
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.CredentialUnreadable):
        services.credential_secret(credential)


def test_rotation_re_encrypts_mailbox_passwords_and_webhook_secrets_too(settings, db):
    old = settings.CREDENTIALS_KEYS[0]
    mailbox = mailbox_services.mailbox_create(
        name="Support", host="imap.example.com", port=None, security="imaps", username="support", password="imap-s3cret"
    )
    endpoint, secret = webhooks.endpoint_create(
        name="Portal", url="https://portal.test/hook", event_types=["ticket.updated"]
    )
    new = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [new, old]
    out = StringIO()
    call_command("rotate_credentials", stdout=out)
    assert "1 mailbox password(s), 1 webhook secret(s)" in out.getvalue()

    mailbox.refresh_from_db()
    endpoint.refresh_from_db()
    settings.CREDENTIALS_KEYS = [new]
    assert (mailbox.password(), endpoint.secret()) == ("imap-s3cret", secret)
    settings.CREDENTIALS_KEYS = [old]  # the old key no longer reads them: it can be dropped
    with pytest.raises(crypto.CredentialUnreadable):
        mailbox.password()
    with pytest.raises(crypto.CredentialUnreadable):
        endpoint.secret()


def test_the_secret_is_never_rendered_back(client, admin_user, server):
    services.credential_set(server=server, kind="password", secret="do-not-show-me", by=admin_user)
    login(client, admin_user)
    page = client.get(reverse("server_access", args=[server.pk])).content.decode()
    assert "do-not-show-me" not in page and "Password" in page
    response = client.post(
        reverse("server_access", args=[server.pk]),
        {"cred-kind": "password", "cred-secret": "", "cred-passphrase": "typed-pass"},
    )
    assert "typed-pass" not in response.content.decode()


def test_an_admin_stores_a_credential_from_the_browser(client, admin_user, server, tmp_path):
    private, _ = _keypair(tmp_path)
    login(client, admin_user)
    response = client.post(
        reverse("server_access", args=[server.pk]), {"cred-kind": "key", "cred-secret": private, "scope": "customer"}
    )
    assert response.status_code == 302
    assert Credential.objects.get().customer == server.customer
    assert AuditEntry.objects.filter(action="credential_set", actor=admin_user).exists()


def _hashed(name: str) -> str:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_known_hosts_import_trusts_only_this_servers_keys(tmp_path, server, admin_user):
    _, mine = _keypair(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, other = _keypair(other_dir)
    key_type, key_b64 = mine.split()[:2]
    text = "\n".join(
        [
            "# a comment",
            f"{_hashed(server.address)} {key_type} {key_b64}",
            f"192.0.2.99 {other.split()[0]} {other.split()[1]}",
            "garbage line",
        ]
    )
    keys = services.host_keys_import(server=server, known_hosts=text, by=admin_user)
    assert [k.fingerprint for k in keys] == [ssh.fingerprint_of(key_b64)]
    assert HostKey.objects.get().status == HostKey.TRUSTED
    with pytest.raises(ValidationError, match="No line lists a key"):
        services.host_keys_import(server=server, known_hosts=f"192.0.2.99 {other}", by=admin_user)


def test_trusting_a_new_key_revokes_the_old_one_and_clears_the_alert(server, admin_user):
    from django.utils import timezone

    old = HostKey.objects.create(
        server=server, key_type="ssh-ed25519", key_base64="AAAA", fingerprint="old", status=HostKey.TRUSTED
    )
    new = HostKey.objects.create(server=server, key_type="ssh-ed25519", key_base64="BBBB", fingerprint="new")
    server.host_key_changed_at = timezone.now()
    server.save()
    services.host_key_trust(host_key=new, by=admin_user)
    old.refresh_from_db()
    server.refresh_from_db()
    assert old.status == HostKey.REVOKED and server.host_key_changed_at is None
