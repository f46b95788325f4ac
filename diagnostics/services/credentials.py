"""SSH credentials: stored only as Fernet tokens, per customer or per server; never shown again."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from diagnostics import crypto, ssh
from diagnostics.models import AuditEntry, Credential
from triage.models import Customer, Server


def credential_set(
    *,
    customer: Customer | None = None,
    server: Server | None = None,
    kind: str,
    secret: str,
    passphrase: str = "",
    by=None,
) -> Credential:
    """Store (or replace) the credential of a customer or a server, encrypted."""
    if (customer is None) == (server is None):
        raise ValueError("a credential belongs to a customer or to a server")
    fingerprint = ""
    if kind == Credential.KEY:
        try:
            fingerprint = ssh.public_key_of(secret, passphrase or None).fingerprint
        except ssh.SshError as exc:
            raise ValidationError({"secret": exc.message}) from None
    elif kind == Credential.PASSWORD:
        if not secret:
            raise ValidationError({"secret": "Enter the password."})
    else:
        raise ValidationError({"kind": "Choose a private key or a password."})
    with transaction.atomic():
        Credential.objects.filter(customer=customer, server=server).delete()
        credential = Credential.objects.create(
            customer=customer,
            server=server,
            kind=kind,
            secret_token=crypto.encrypt(secret),
            passphrase_token=crypto.encrypt(passphrase) if passphrase else None,
            public_fingerprint=fingerprint,
            created_by=by,
        )
        AuditEntry.objects.create(
            actor=by,
            action="credential_set",
            server=server,
            detail={"customer": customer.name if customer else None, "kind": kind, "fingerprint": fingerprint},
        )
    return credential


def credential_for(server: Server) -> Credential | None:
    """The server's own credential, else its customer's."""
    return (
        Credential.objects.filter(server=server).first()
        or Credential.objects.filter(customer_id=server.customer_id, server__isnull=True).first()
    )


def credential_secret(credential: Credential) -> ssh.Secret:
    secret = crypto.decrypt(credential.secret_token)
    if credential.kind == Credential.PASSWORD:
        return ssh.Secret(password=secret)
    passphrase = crypto.decrypt(credential.passphrase_token) if credential.passphrase_token else None
    return ssh.Secret(private_key=secret, passphrase=passphrase)


def credentials_rotate() -> int:
    """Re-encrypt every credential under the newest key; returns how many were rewritten."""
    count = 0
    with transaction.atomic():
        for credential in Credential.objects.select_for_update():
            credential.secret_token = crypto.rotate(credential.secret_token)
            if credential.passphrase_token:
                credential.passphrase_token = crypto.rotate(credential.passphrase_token)
            credential.save(update_fields=["secret_token", "passphrase_token"])
            count += 1
    return count
