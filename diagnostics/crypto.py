"""Credentials at rest: Fernet tokens under keys from settings.CREDENTIALS_KEYS.

The first key encrypts; every key decrypts (MultiFernet), so rotation is: put a
new key first, run `manage.py rotate_credentials`, then drop the old key.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

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
