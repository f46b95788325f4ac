"""Credentials at rest: Fernet tokens under keys from settings.CREDENTIALS_KEYS.

The first key encrypts; every key decrypts (MultiFernet), so rotation is: put a
new key first, run `manage.py rotate_credentials`, then drop the old key.

Every field encrypted here must be re-encrypted by that command (`rotate_rows`): SSH credentials
and jump hosts (diagnostics), mailbox passwords (mailgate), webhook secrets (webhooks). A field
it missed becomes unreadable the day the old key is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from triage.env import ConfigError


class CredentialUnreadable(Exception):
    """No configured key decrypts this token (a key was dropped too early)."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ConfigError("CREDENTIALS_KEYS is empty")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ConfigError("CREDENTIALS_KEYS must hold Fernet keys (32 url-safe base64-encoded bytes)") from None


def _current() -> MultiFernet:
    return _fernet(tuple(settings.CREDENTIALS_KEYS))


def encrypt(plaintext: str) -> bytes:
    return _current().encrypt(plaintext.encode())


def decrypt(token: bytes | memoryview) -> str:
    try:
        return _current().decrypt(bytes(token)).decode()
    except InvalidToken:
        raise CredentialUnreadable("no configured credentials key can decrypt this credential") from None


def rotate(token: bytes | memoryview) -> bytes:
    """Re-encrypt under the first (newest) key."""
    try:
        return _current().rotate(bytes(token))
    except InvalidToken:
        raise CredentialUnreadable("no configured credentials key can decrypt this credential") from None


def rotate_rows(queryset: QuerySet, fields: Sequence[str]) -> int:
    """Re-encrypt ``fields`` (tokens, or None where optional) of every row of ``queryset`` under the
    newest key, each row locked so a change saved meanwhile is not overwritten with the old token;
    all or nothing. Returns how many rows were rewritten."""
    count = 0
    with transaction.atomic():
        for row in queryset.select_for_update():
            for name in fields:
                token = getattr(row, name)
                if token:
                    setattr(row, name, rotate(token))
            row.save(update_fields=list(fields))
            count += 1
    return count
