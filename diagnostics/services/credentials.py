"""SSH credentials: stored only as Fernet tokens, per customer or per server; never shown again."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q

from diagnostics import ssh
from diagnostics.models import AuditEntry, Credential
from triage import crypto
from triage.models import Customer, Server, ssh_user_validator


def credential_set(
    *,
    customer: Customer | None = None,
    server: Server | None = None,
    kind: str,
    secret: str,
    passphrase: str = "",
    username: str = "",
    sudo_password: str = "",
    by=None,
) -> Credential:
    """Store (or replace) the credential of a customer or a server, encrypted.

    ``username`` is the login user (blank: each server's SSH user); ``sudo_password``, for a login
    user whose sudo asks for one, is stored encrypted like the secret and only ever sent to sudo's stdin.
    """
    if (customer is None) == (server is None):
        raise ValueError("a credential belongs to a customer or to a server")
    if username:
        try:
            ssh_user_validator(username)
        except ValidationError as exc:
            raise ValidationError({"username": exc.messages}) from None
    if any(c in sudo_password for c in "\n\r\0"):
        # sudo -S reads one line: a line break would end the password early.
        raise ValidationError({"sudo_password": "A sudo password cannot contain line breaks or NUL characters."})
    fingerprint = secret_fingerprint(kind=kind, secret=secret, passphrase=passphrase)
    with transaction.atomic():
        Credential.objects.filter(customer=customer, server=server).delete()
        credential = Credential.objects.create(
            customer=customer,
            server=server,
            kind=kind,
            secret_token=crypto.encrypt(secret),
            passphrase_token=crypto.encrypt(passphrase) if passphrase else None,
            username=username,
            sudo_password_token=crypto.encrypt(sudo_password) if sudo_password else None,
            public_fingerprint=fingerprint,
            created_by=by,
        )
        AuditEntry.objects.create(
            actor=by,
            action="credential_set",
            server=server,
            detail={
                "customer": customer.name if customer else None,
                "kind": kind,
                "fingerprint": fingerprint,
                "username": username,
                "sudo_password": bool(sudo_password),
            },
        )
    return credential


def credential_for(server: Server) -> Credential | None:
    """The server's own credential, else its customer's: one query, the server's own sorting first
    (a customer-wide credential has no server; a collection asks this before it connects)."""
    return (
        Credential.objects.filter(Q(server=server) | Q(customer_id=server.customer_id, server__isnull=True))
        .order_by(F("server_id").asc(nulls_last=True))
        .first()
    )


def credential_secret(credential: Credential) -> ssh.Secret:
    secret = crypto.decrypt(credential.secret_token)
    if credential.kind == Credential.PASSWORD:
        return ssh.Secret(password=secret)
    passphrase = crypto.decrypt(credential.passphrase_token) if credential.passphrase_token else None
    return ssh.Secret(private_key=secret, passphrase=passphrase)


def credential_sudo_password(credential: Credential) -> str | None:
    """The decrypted sudo password, or None when sudo needs none (or the login user is root)."""
    return crypto.decrypt(credential.sudo_password_token) if credential.sudo_password_token else None


def credentials_rotate() -> int:
    """Re-encrypt every credential under the newest key; returns how many were rewritten."""
    return crypto.rotate_rows(Credential.objects.all(), ["secret_token", "passphrase_token", "sudo_password_token"])


def secret_fingerprint(*, kind: str, secret: str, passphrase: str = "") -> str:
    """Check a secret before it is stored (a server's, a customer's or a jump host's): a private key must
    load (with its passphrase), a password must not be empty. The key's public fingerprint, or ""."""
    if kind == Credential.KEY:
        try:
            return ssh.public_key_of(secret, passphrase or None).fingerprint
        except ssh.SshError as exc:
            raise ValidationError({"secret": exc.message}) from None
    if kind == Credential.PASSWORD:
        if not secret:
            raise ValidationError({"secret": "Enter the password."})
        return ""
    raise ValidationError({"kind": "Choose a private key or a password."})
