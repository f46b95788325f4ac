"""Jump hosts: their settings, credentials and pinned keys, and the chains servers are reached through."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from diagnostics import ssh
from diagnostics.models import AuditEntry, Credential, HostKey, JumpHost, JumpHostKey, JumpLink
from diagnostics.services.credentials import secret_fingerprint
from diagnostics.services.host_keys import _pattern_matches
from triage import crypto
from triage.models import Customer, Server


class JumpHostUnusable(Exception):
    """A jump host of the chain cannot be logged in to as stored (no credential); the message says which."""


def jump_host_save(
    *,
    customer: Customer,
    name: str,
    address: str,
    username: str,
    ssh_port: int = 22,
    bounds: Mapping[str, float | None] | None = None,
    jump_host: JumpHost | None = None,
    by=None,
) -> JumpHost:
    """Create or update a jump host of `customer`; `bounds` maps connect/banner/handshake/auth to seconds
    (None: the server default)."""
    jump_host = jump_host or JumpHost(customer=customer)
    jump_host.name, jump_host.address, jump_host.username, jump_host.ssh_port = name, address, username, ssh_port
    for bound, value in (bounds or {}).items():
        setattr(jump_host, f"{bound}_timeout", value)
    jump_host.full_clean()
    with transaction.atomic():
        created = jump_host.pk is None
        jump_host.save()
        AuditEntry.objects.create(
            actor=by,
            action="jump_host_added" if created else "jump_host_changed",
            detail={
                "customer": customer.name,
                "jump_host": name,
                "address": f"{username}@{address}:{ssh_port}",
                "bounds": jump_host.bounds(),
            },
        )
    return jump_host


def jump_host_credential_set(*, jump_host: JumpHost, kind: str, secret: str, passphrase: str = "", by=None) -> JumpHost:
    """Store (or replace) the jump host's credential, encrypted like every credential (triage.crypto)."""
    fingerprint = secret_fingerprint(kind=kind, secret=secret, passphrase=passphrase)
    with transaction.atomic():
        jump_host.credential_kind = kind
        jump_host.secret_token = crypto.encrypt(secret)
        jump_host.passphrase_token = crypto.encrypt(passphrase) if passphrase else None
        jump_host.public_fingerprint = fingerprint
        jump_host.save(update_fields=["credential_kind", "secret_token", "passphrase_token", "public_fingerprint"])
        AuditEntry.objects.create(
            actor=by,
            action="jump_host_credential_set",
            detail={
                "jump_host": jump_host.name,
                "customer": jump_host.customer.name,
                "kind": kind,
                "fingerprint": fingerprint,
            },
        )
    return jump_host


def jump_host_key_decide(*, key: JumpHostKey, trust: bool, by) -> JumpHostKey:
    """Trust a key (the jump host's other trusted keys are revoked: it has one identity) or revoke it."""
    with transaction.atomic():
        key.status = HostKey.TRUSTED if trust else HostKey.REVOKED
        key.decided_at, key.decided_by = timezone.now(), by
        key.save()
        if trust:
            JumpHostKey.objects.filter(jump_host=key.jump_host_id, status=HostKey.TRUSTED).exclude(pk=key.pk).update(
                status=HostKey.REVOKED, decided_at=timezone.now(), decided_by=by
            )
        AuditEntry.objects.create(
            actor=by,
            action="jump_host_key_trusted" if trust else "jump_host_key_revoked",
            detail={"jump_host": key.jump_host.name, "fingerprint": key.fingerprint},
        )
    return key


def jump_host_keys_import(*, jump_host: JumpHost, known_hosts: str, by) -> list[JumpHostKey]:
    """Trust the keys that known_hosts text lists for the jump host (by address or name, hashed or not)."""
    names = {jump_host.address, jump_host.name}
    if jump_host.ssh_port != 22:
        names = {f"[{n}]:{jump_host.ssh_port}" for n in names}
    imported = []
    for pattern, key in ssh.parse_known_hosts(known_hosts):
        if _pattern_matches(pattern, names):
            record, _ = JumpHostKey.objects.get_or_create(
                jump_host=jump_host,
                key_type=key.key_type,
                key_base64=key.key_base64,
                defaults={"fingerprint": key.fingerprint, "source": "known_hosts"},
            )
            imported.append(jump_host_key_decide(key=record, trust=True, by=by))
    if not imported:
        raise ValidationError({"known_hosts": f"No line lists a key for {', '.join(sorted(names))}."})
    return imported


def jump_chain_set(
    *, jump_hosts: Sequence[JumpHost], server: Server | None = None, customer: Customer | None = None, by=None
) -> None:
    """Set a server's own chain, or its customer's default chain (empty: direct, or the customer's default)."""
    if server is not None and customer is None:
        owner = server.customer
    elif customer is not None and server is None:
        owner = customer
    else:
        raise ValueError("a chain belongs to a customer or to a server")
    if any(hop.customer_id != owner.pk for hop in jump_hosts):
        raise ValidationError({"jump_hosts": "Every jump host must belong to the same customer."})
    if len({hop.pk for hop in jump_hosts}) != len(jump_hosts):
        raise ValidationError({"jump_hosts": "A jump host can be on the chain only once."})
    with transaction.atomic():
        JumpLink.objects.filter(server=server, customer=customer).delete()
        JumpLink.objects.bulk_create(
            [JumpLink(server=server, customer=customer, jump_host=hop, position=n) for n, hop in enumerate(jump_hosts)]
        )
        AuditEntry.objects.create(
            actor=by,
            action="jump_chain_set",
            server=server,
            detail={
                "customer": owner.name,
                "scope": "server" if server else "customer",
                "chain": [hop.name for hop in jump_hosts],
            },
        )


def _links(**owner) -> list[JumpHost]:
    return [link.jump_host for link in JumpLink.objects.filter(**owner).select_related("jump_host")]


def jump_chain(server: Server) -> list[JumpHost]:
    """The jump hosts a collection goes through to reach `server`, first hop first: the server's own chain,
    else its customer's default one (empty: connect directly). One query: a collection asks this before
    it connects."""
    links = JumpLink.objects.filter(
        Q(server=server) | Q(customer_id=server.customer_id, server__isnull=True)
    ).select_related("jump_host")
    own = [link.jump_host for link in links if link.server_id is not None]
    return own or [link.jump_host for link in links if link.server_id is None]


def customer_jump_chain(customer: Customer) -> list[JumpHost]:
    return _links(customer=customer)


def server_jump_chain(server: Server) -> list[JumpHost]:
    return _links(server=server)


def path_label(chain: Sequence[JumpHost]) -> str:
    """How a path reads in the audit log and on pages: 'bastion1, bastion2' (empty when direct)."""
    return ", ".join(hop.name for hop in chain)


def hops_for(chain: Sequence[JumpHost], *, defaults: Mapping[str, float]) -> list[ssh.Hop]:
    """The chain as ssh.Hop values: decrypted secrets, trusted keys, each hop's bounds over the server defaults.
    Raises JumpHostUnusable (no credential, or one no configured key decrypts), naming the jump host."""
    hops = []
    for jump_host in chain:
        if not jump_host.has_credential:
            raise JumpHostUnusable(
                f"Jump host {jump_host.name} has no credential stored; an admin can add one on the server's Access page"
            )
        assert jump_host.secret_token is not None  # has_credential says so
        try:
            secret_text = crypto.decrypt(jump_host.secret_token)
            passphrase = crypto.decrypt(jump_host.passphrase_token) if jump_host.passphrase_token else None
        except crypto.CredentialUnreadable as exc:
            raise JumpHostUnusable(f"Jump host {jump_host.name}: {exc}") from None
        if jump_host.credential_kind == Credential.PASSWORD:
            secret = ssh.Secret(password=secret_text)
        else:
            secret = ssh.Secret(private_key=secret_text, passphrase=passphrase)
        pinned = tuple(
            ssh.HostKey(k.key_type, k.key_base64) for k in jump_host.host_keys.filter(status=HostKey.TRUSTED)
        )
        bounds: dict[str, Any] = {**defaults, **jump_host.bounds()}  # Timeouts' own fields, by name
        hops.append(
            ssh.Hop(
                name=jump_host.name,
                address=jump_host.address,
                port=jump_host.ssh_port,
                username=jump_host.username,
                secret=secret,
                pinned=pinned,
                timeouts=ssh.Timeouts(**bounds),
            )
        )
    return hops


def jump_host_key_offered(*, server: Server, hop: str, key: ssh.HostKey) -> JumpHostKey | None:
    """Keep the key a jump host of `server`'s chain offered at a failed collection, for an admin to trust."""
    jump_host = next((j for j in jump_chain(server) if j.name == hop), None)
    if jump_host is None:
        return None
    record, _ = JumpHostKey.objects.get_or_create(
        jump_host=jump_host,
        key_type=key.key_type,
        key_base64=key.key_base64,
        defaults={"fingerprint": key.fingerprint, "source": "seen"},
    )
    return record


def jump_hosts_rotate() -> int:
    """Re-encrypt every jump host's credential under the newest key; returns how many were rewritten."""
    return crypto.rotate_rows(JumpHost.objects.exclude(secret_token=None), ["secret_token", "passphrase_token"])
