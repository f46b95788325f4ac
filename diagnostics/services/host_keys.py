"""Pinned host keys: trusted by an admin (or imported from known_hosts), revoked, or offered by a server."""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from diagnostics import ssh, ssh_certs
from diagnostics.models import AuditEntry, HostKey
from triage.models import Server


def host_key_trust(*, host_key: HostKey, by) -> HostKey:
    with transaction.atomic():
        host_key.status = HostKey.TRUSTED
        host_key.decided_at = timezone.now()
        host_key.decided_by = by
        host_key.save()
        # Once the new key is trusted, the change alert has been dealt with; older keys stop counting.
        HostKey.objects.filter(server=host_key.server_id, status=HostKey.TRUSTED).exclude(pk=host_key.pk).update(
            status=HostKey.REVOKED, decided_at=timezone.now(), decided_by=by
        )
        Server.objects.filter(pk=host_key.server_id).update(host_key_changed_at=None)
        AuditEntry.objects.create(
            actor=by,
            action="host_key_trusted",
            server_id=host_key.server_id,
            detail={"fingerprint": host_key.fingerprint, "type": host_key.key_type},
        )
    return host_key


def host_key_revoke(*, host_key: HostKey, by) -> HostKey:
    host_key.status = HostKey.REVOKED
    host_key.decided_at = timezone.now()
    host_key.decided_by = by
    host_key.save()
    AuditEntry.objects.create(
        actor=by, action="host_key_revoked", server_id=host_key.server_id, detail={"fingerprint": host_key.fingerprint}
    )
    return host_key


def host_key_proven(*, server: Server, key: ssh.HostKey) -> bool:
    """A collection has just logged in to `server`, which proved it holds the pinned `key`.

    A host-key-changed alert raised earlier is over once no offered key still waits for an
    admin's decision (the impostor's key revoked, or trusted as the new one). Returns whether
    the alert was cleared here.
    """
    if HostKey.objects.filter(server=server, status=HostKey.PENDING).exists():
        return False
    cleared = Server.objects.filter(pk=server.pk, host_key_changed_at__isnull=False).update(host_key_changed_at=None)
    if cleared:
        AuditEntry.objects.create(
            action="host_key_alert_cleared",
            server=server,
            detail={"fingerprint": key.fingerprint, "why": "pinned key proven on login"},
        )
    return bool(cleared)


def _known_hosts_names(server: Server) -> set[str]:
    names = {server.address, server.name}
    if server.ssh_port != 22:
        names = {f"[{n}]:{server.ssh_port}" for n in names}
    return names


def _pattern_matches(pattern: str, names: set[str]) -> bool:
    if pattern.startswith("|1|"):  # hashed: |1|base64(salt)|base64(hmac-sha1(salt, name))
        try:
            _, _, salt, digest = pattern.split("|")
            salt_bytes, digest_bytes = base64.b64decode(salt), base64.b64decode(digest)
        except ValueError:
            return False
        return any(
            hmac.compare_digest(hmac.new(salt_bytes, n.encode(), hashlib.sha1).digest(), digest_bytes) for n in names
        )
    return bool(set(pattern.split(",")) & names)


def host_keys_import(*, server: Server, known_hosts: str, by) -> list[HostKey]:
    """Trust the keys that known_hosts text lists for this server (by address or name, hashed or not)."""
    names = _known_hosts_names(server)
    imported = []
    for pattern, key in ssh.parse_known_hosts(known_hosts):
        if not _pattern_matches(pattern, names):
            continue
        record, _ = HostKey.objects.get_or_create(
            server=server,
            key_type=key.key_type,
            key_base64=key.key_base64,
            defaults={"fingerprint": key.fingerprint, "source": "known_hosts"},
        )
        imported.append(host_key_trust(host_key=record, by=by))
    if not imported:
        raise ValidationError({"known_hosts": f"No line lists a key for {', '.join(sorted(names))}."})
    return imported


def connect_trust(server: Server) -> dict:
    """What ``ssh.connect`` checks the server's host key against (its ``pinned``, ``ca_keys``, ``names``
    and ``revoked`` arguments), with one query for the pinned and revoked keys: a collection asks this
    before it connects."""
    keys = HostKey.objects.filter(server=server, status__in=[HostKey.TRUSTED, HostKey.REVOKED])
    by_status: dict[str, list[ssh.HostKey]] = {HostKey.TRUSTED: [], HostKey.REVOKED: []}
    for key in keys:
        by_status[key.status].append(ssh.HostKey(key.key_type, key.key_base64))
    return {
        "pinned": by_status[HostKey.TRUSTED],
        "ca_keys": trusted_cas(server),
        "names": certificate_names(server),
        "revoked": by_status[HostKey.REVOKED],
    }


def record_offered_key(server: Server, key: ssh.HostKey) -> HostKey:
    record, _ = HostKey.objects.get_or_create(
        server=server,
        key_type=key.key_type,
        key_base64=key.key_base64,
        defaults={"fingerprint": key.fingerprint, "source": "seen"},
    )
    return record


def trusted_cas(server: Server) -> list[ssh.HostKey]:
    """The CA keys whose host certificates the server's customer trusts (validated when stored)."""
    try:
        return [ssh.HostKey(t, b) for t, b in ssh_certs.parse_ca_keys(server.customer.host_ca_keys)]
    except ValueError:  # stored before validation, or edited outside the form: trust nothing rather than fail
        return []


def certificate_names(server: Server) -> list[str]:
    """The principals a host certificate may name for this server: what the desk connects to."""
    return [server.address, server.name]


def ssh_trust_set(*, server: Server, ca_keys: str, allow_legacy: bool, by) -> None:
    """Store the customer's CA keys and the server's legacy-algorithm exception; audited."""
    try:
        ssh_certs.parse_ca_keys(ca_keys)
    except ValueError as exc:
        raise ValidationError({"ca_keys": str(exc)}) from None
    with transaction.atomic():
        customer = server.customer
        if customer.host_ca_keys != ca_keys:
            customer.host_ca_keys = ca_keys
            customer.save(update_fields=["host_ca_keys"])
            fingerprints = [ssh.fingerprint_of(b) for _, b in ssh_certs.parse_ca_keys(ca_keys)]
            AuditEntry.objects.create(
                actor=by,
                action="host_ca_keys_set",
                server=server,
                detail={"customer": customer.pk, "fingerprints": fingerprints},
            )
        if server.allow_legacy_ssh != allow_legacy:
            server.allow_legacy_ssh = allow_legacy
            server.save(update_fields=["allow_legacy_ssh"])
            AuditEntry.objects.create(
                actor=by,
                action="legacy_ssh_allowed" if allow_legacy else "legacy_ssh_refused",
                server=server,
                detail={},
            )
