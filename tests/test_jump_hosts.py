"""Jump hosts in the desk (no lab needed): the chain a server is reached through, an admin setting it up on
the Access page, credentials stored only encrypted, bounds over the server defaults, and key decisions."""

from __future__ import annotations

import subprocess

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from diagnostics import services, ssh
from diagnostics.models import AuditEntry, HostKey, JumpHost, JumpHostKey, JumpLink
from diagnostics.services import jump_hosts
from tests.conftest import login
from triage.models import Customer, Server

pytestmark = pytest.mark.django_db

DEFAULTS = {"connect": 5, "banner": 10, "handshake": 15, "auth": 60, "shell_start": 20}


def _keypair(tmp_path, name="id") -> tuple[str, str]:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path.read_text(), path.with_suffix(".pub").read_text()


def _jump(customer, name="bastion1", **kwargs) -> JumpHost:
    return services.jump_host_save(
        customer=customer,
        name=name,
        address=kwargs.pop("address", "192.0.2.1"),
        username=kwargs.pop("username", "jump"),
        **kwargs,
    )


def test_a_server_uses_its_own_chain_else_its_customers_default_else_none(customer, server):
    assert jump_hosts.jump_chain(server) == []
    first, second, third = _jump(customer), _jump(customer, "bastion2"), _jump(customer, "bastion3")
    services.jump_chain_set(customer=customer, jump_hosts=[third])
    assert jump_hosts.jump_chain(server) == [third]
    services.jump_chain_set(server=server, jump_hosts=[second, first])
    assert jump_hosts.jump_chain(server) == [second, first]  # in the order given, not by id
    other = Server.objects.create(customer=customer, name="mx2", address="192.0.2.11")
    assert jump_hosts.jump_chain(other) == [third]
    services.jump_chain_set(server=server, jump_hosts=[])
    assert jump_hosts.jump_chain(server) == [third]


def test_a_chain_takes_only_the_customers_own_jump_hosts_once_each(customer, server):
    stranger = Customer.objects.create(name="Elsewhere", sla_tier=customer.sla_tier)
    theirs, ours = _jump(stranger), _jump(customer)
    with pytest.raises(ValidationError, match="same customer"):
        services.jump_chain_set(server=server, jump_hosts=[theirs])
    with pytest.raises(ValidationError, match="only once"):
        services.jump_chain_set(server=server, jump_hosts=[ours, ours])
    assert not JumpLink.objects.exists()
    with pytest.raises(ValidationError):
        _jump(customer, "bastion1")  # names are unique per customer: errors name jump hosts by them


def test_a_jump_hosts_credential_is_stored_only_encrypted_and_its_bounds_override_the_defaults(tmp_path, customer):
    private, public = _keypair(tmp_path)
    jump = _jump(customer, bounds={"connect": 2.5, "banner": None})
    with pytest.raises(jump_hosts.JumpHostUnusable, match="Jump host bastion1 has no credential"):
        jump_hosts.hops_for([jump], defaults=DEFAULTS)
    services.jump_host_credential_set(jump_host=jump, kind="key", secret=private)
    jump.refresh_from_db()
    assert b"PRIVATE KEY" not in bytes(jump.secret_token)
    assert jump.public_fingerprint == ssh.fingerprint_of(public.split()[1])
    JumpHostKey.objects.create(
        jump_host=jump, key_type="ssh-ed25519", key_base64=public.split()[1], fingerprint="x", status=HostKey.PENDING
    )  # pending: not pinned
    [hop] = jump_hosts.hops_for([jump], defaults=DEFAULTS)
    assert (hop.name, hop.address, hop.port, hop.username) == ("bastion1", "192.0.2.1", 22, "jump")
    assert hop.secret.private_key == private and "PRIVATE" not in repr(hop)
    assert (hop.timeouts.connect, hop.timeouts.banner, hop.timeouts.auth) == (2.5, 10, 60)
    assert hop.pinned == ()
    with pytest.raises(ValidationError):
        services.jump_host_credential_set(jump_host=jump, kind="key", secret="not a key")


def test_rotation_re_encrypts_jump_host_credentials_too(settings, customer):
    jump = _jump(customer)
    services.jump_host_credential_set(jump_host=jump, kind="password", secret="hop-secret")
    old, new = settings.CREDENTIALS_KEYS[0], Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [new, old]
    call_command("rotate_credentials", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.CREDENTIALS_KEYS = [new]
    jump.refresh_from_db()
    assert jump_hosts.hops_for([jump], defaults=DEFAULTS)[0].secret.password == "hop-secret"
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(jump_hosts.JumpHostUnusable, match="Jump host bastion1: no configured credentials key"):
        jump_hosts.hops_for([jump], defaults=DEFAULTS)


def test_trusting_a_jump_hosts_key_revokes_its_other_keys_and_a_revoked_key_stays_revoked(client, customer, admin_user):
    jump = _jump(customer)
    old = JumpHostKey.objects.create(
        jump_host=jump, key_type="ssh-ed25519", key_base64="AAAA", fingerprint="old", status=HostKey.TRUSTED
    )
    new = JumpHostKey.objects.create(jump_host=jump, key_type="ssh-ed25519", key_base64="BBBB", fingerprint="new")
    login(client, admin_user)
    response = client.post(reverse("jump_host_key_decide", args=[jump.pk, new.pk]), {"decision": "trust"})
    assert response.status_code == 302
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == (HostKey.REVOKED, HostKey.TRUSTED)
    response = client.post(reverse("jump_host_key_decide", args=[jump.pk, old.pk]), {"decision": "trust"})
    assert response.status_code == 400
    assert AuditEntry.objects.filter(action="jump_host_key_trusted", detail__fingerprint="new").exists()


def test_an_admin_adds_a_jump_host_pins_its_key_and_puts_the_server_behind_it(
    client, tmp_path, customer, server, admin_user
):
    private, _ = _keypair(tmp_path, "client")
    _, host_public = _keypair(tmp_path, "bastion_host")
    login(client, admin_user)
    page = client.get(reverse("server_access", args=[server.pk])).content.decode()
    assert "Collections connect to this server directly." in page

    response = client.post(
        reverse("jump_host_new", args=[server.pk]),
        {
            "jump-name": "bastion1",
            "jump-address": "203.0.113.7",
            "jump-ssh_port": "2222",
            "jump-username": "hop",
            "jump-connect_timeout": "3",
        },
    )
    jump = JumpHost.objects.get(customer=customer, name="bastion1")
    assert response.status_code == 302 and response["Location"] == reverse("jump_host", args=[jump.pk])
    assert (jump.ssh_port, jump.username, jump.connect_timeout, jump.banner_timeout) == (2222, "hop", 3.0, None)

    response = client.post(
        reverse("jump_host", args=[jump.pk]), {"action": "credential", "jcred-kind": "key", "jcred-secret": private}
    )
    assert response.status_code == 302
    key_type, key_b64 = host_public.split()[:2]
    response = client.post(
        reverse("jump_host", args=[jump.pk]),
        {"action": "known_hosts", "kh-known_hosts": f"[203.0.113.7]:2222 {key_type} {key_b64}\n"},
    )
    assert response.status_code == 302
    page = client.get(reverse("jump_host", args=[jump.pk])).content.decode()
    assert private.splitlines()[1] not in page  # the secret is never rendered back
    assert jump.host_keys.get().status == HostKey.TRUSTED

    response = client.post(reverse("server_jump_chain", args=[server.pk]), {"hop1": jump.pk, "scope": "server"})
    assert response.status_code == 302
    assert jump_hosts.jump_chain(server) == [jump]
    page = client.get(reverse("server_access", args=[server.pk])).content.decode()
    assert "through its own chain" in page and f"root@{server.address}:22 via bastion1" in page

    # Another customer's jump host is not a choice; nothing changes.
    stranger = _jump(Customer.objects.create(name="Elsewhere", sla_tier=customer.sla_tier), "theirs")
    response = client.post(reverse("server_jump_chain", args=[server.pk]), {"hop1": stranger.pk, "scope": "server"})
    assert response.status_code == 400
    assert jump_hosts.jump_chain(server) == [jump]

    # The customer's default; the server's own chain cleared so the default applies.
    response = client.post(reverse("server_jump_chain", args=[server.pk]), {"hop1": jump.pk, "scope": "customer"})
    client.post(reverse("server_jump_chain", args=[server.pk]), {"scope": "server"})
    assert JumpLink.objects.filter(customer=customer, server__isnull=True).count() == 1
    page = client.get(reverse("server_access", args=[server.pk])).content.decode()
    assert "through Northwind Hosting's default chain" in page, page[page.find("data-jump-path") :][:400]


def test_a_jump_host_with_a_taken_name_or_a_bad_bound_is_refused_on_the_page(client, customer, server, admin_user):
    _jump(customer)
    login(client, admin_user)
    response = client.post(
        reverse("jump_host_new", args=[server.pk]),
        {"jump-name": "bastion1", "jump-address": "203.0.113.8", "jump-ssh_port": "22", "jump-username": "hop"},
    )
    assert response.status_code == 400
    response = client.post(
        reverse("jump_host_new", args=[server.pk]),
        {
            "jump-name": "bastion9",
            "jump-address": "203.0.113.8",
            "jump-ssh_port": "22",
            "jump-username": "hop",
            "jump-banner_timeout": "0",
        },
    )
    assert response.status_code == 400
    assert JumpHost.objects.filter(customer=customer).count() == 1


def test_a_failed_hop_key_check_is_kept_on_the_jump_host_not_the_server(customer, server):
    jump = _jump(customer)
    services.jump_chain_set(server=server, jump_hosts=[jump])
    offered = ssh.HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
    record = jump_hosts.jump_host_key_offered(server=server, hop="bastion1", key=offered)
    assert record is not None and record.jump_host == jump and record.status == HostKey.PENDING
    assert jump_hosts.jump_host_key_offered(server=server, hop="not-on-the-chain", key=offered) is None
    assert not HostKey.objects.filter(server=server).exists()


def test_the_api_shows_the_chain_a_server_is_reached_through(tech, customer, server):
    from tests.test_api import api_as

    client = api_as(tech)
    assert client.get(reverse("api:server", args=[server.pk])).json()["jump_chain"] == []
    first, second = _jump(customer), _jump(customer, "bastion2")
    services.jump_chain_set(customer=customer, jump_hosts=[second])
    assert client.get(reverse("api:server", args=[server.pk])).json()["jump_chain"] == ["bastion2"]
    services.jump_chain_set(server=server, jump_hosts=[first, second])
    listed = client.get(reverse("api:servers"), {"customer": customer.pk}).json()["results"]
    assert listed[0]["jump_chain"] == ["bastion1", "bastion2"]
