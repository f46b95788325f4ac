"""OpenSSH host certificates, checked against a customer's CA keys.

paramiko negotiates a certificate host key (ssh-ed25519-cert-v01@openssh.com, ...) and
proves the server holds the certified key, but it never looks inside the certificate.
This module does what OpenSSH's client does with `@cert-authority` in known_hosts: the
certificate must be a host certificate, signed by one of the trusted CA keys, name the
server among its principals and be inside its validity window.

Format: https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.certkeys
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

import paramiko
from cryptography.exceptions import InvalidSignature
from paramiko.pkey import UnknownKeyType

HOST_CERT = 2  # SSH2_CERT_TYPE_HOST; 1 is a user certificate
# The public-key fields between the nonce and the serial, per certificate type.
_KEY_FIELDS = {
    "ssh-ed25519-cert-v01@openssh.com": ("string",),
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": ("string", "string"),
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": ("string", "string"),
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": ("string", "string"),
    "ssh-rsa-cert-v01@openssh.com": ("mpint", "mpint"),
}


# What reading a malformed key, certificate or signature can raise (paramiko reads short
# fields as zeros, then fails somewhere further on).
_UNREADABLE = (
    paramiko.SSHException,
    UnknownKeyType,
    ValueError,
    TypeError,
    IndexError,
    OverflowError,
    struct.error,
    binascii.Error,
    UnicodeDecodeError,
)


class CertificateRefused(Exception):
    """The certificate does not make the host key trusted; the message says why."""


@dataclass(frozen=True)
class HostCertificate:
    cert_type: int
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    critical_options: bytes
    signature_key: bytes
    signed_part: bytes
    signature: bytes


def parse(blob: bytes) -> HostCertificate:
    """The fields of a certificate blob; raises CertificateRefused on anything malformed."""
    try:
        message = paramiko.Message(blob)
        cert_kind = message.get_text()
        if cert_kind not in _KEY_FIELDS:
            raise CertificateRefused(f"unsupported certificate type {cert_kind}")
        message.get_string()  # nonce
        for field in _KEY_FIELDS[cert_kind]:
            message.get_mpint() if field == "mpint" else message.get_string()
        message.get_int64()  # serial
        cert_type = message.get_int()
        key_id = message.get_text()
        names = paramiko.Message(message.get_string())
        principals = []
        while names.get_remainder():
            principals.append(names.get_text())
        valid_after, valid_before = message.get_int64(), message.get_int64()
        critical_options = message.get_string()
        message.get_string()  # extensions: none matter for a host certificate
        message.get_string()  # reserved
        signature_key = message.get_string()
        signed_length = message.packet.tell()
        signature = message.get_string()
    except _UNREADABLE as exc:
        raise CertificateRefused(f"the certificate cannot be read ({type(exc).__name__})") from None
    if not signature or not signature_key:
        raise CertificateRefused("the certificate is truncated")
    return HostCertificate(
        cert_type,
        key_id,
        tuple(principals),
        valid_after,
        valid_before,
        critical_options,
        signature_key,
        blob[:signed_length],
        signature,
    )


def check(blob: bytes, *, ca_keys: Iterable[bytes], names: Iterable[str], now: float | None = None) -> HostCertificate:
    """The certificate if it makes its host key trusted for a server called any of `names`; else
    CertificateRefused. `ca_keys` are the trusted CA public key blobs."""
    cert = parse(blob)
    if cert.cert_type != HOST_CERT:
        raise CertificateRefused("the certificate is not a host certificate")
    if cert.signature_key not in set(ca_keys):
        raise CertificateRefused("the certificate is signed by a CA the customer does not trust")
    try:
        ca = paramiko.PKey.from_type_string(paramiko.Message(cert.signature_key).get_text(), cert.signature_key)
        valid = ca.verify_ssh_sig(cert.signed_part, paramiko.Message(cert.signature))
    except (*_UNREADABLE, InvalidSignature):  # an unsupported or broken CA key or signature: not verified
        valid = False
    if not valid:
        raise CertificateRefused("the certificate's signature does not verify with the CA key")
    now = time.time() if now is None else now
    if now < cert.valid_after:
        raise CertificateRefused(f"the certificate is not valid yet (from {_when(cert.valid_after)})")
    if now >= cert.valid_before:
        raise CertificateRefused(f"the certificate expired at {_when(cert.valid_before)}")
    # OpenSSH accepts a host certificate with no principals for any host; a support desk
    # connecting to customer fleets wants the certificate to name the server it is for.
    wanted = {name for name in names if name}
    if not wanted & set(cert.principals):
        listed = ", ".join(cert.principals) or "none"
        raise CertificateRefused(f"the certificate is for {listed}, not for {' or '.join(sorted(wanted))}")
    if cert.critical_options:  # none are defined for host certificates; OpenSSH refuses unknown ones
        raise CertificateRefused("the certificate carries critical options")
    return cert


def _when(seconds: int) -> str:
    if seconds >= 1 << 63:
        return "forever"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def parse_ca_keys(text: str) -> list[tuple[str, str]]:
    """(key type, base64) of each CA public key in `text`: one per line, as `ssh-keygen` writes
    `ca.pub`, or as a known_hosts `@cert-authority <hosts> <type> <key>` line. Blank lines and
    `#` comments are skipped; anything else that is not a public key raises ValueError."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "@cert-authority":
            words = words[2:]
        if len(words) < 2:
            raise ValueError(f"line {number}: expected '<key type> <base64 key>'")
        key_type, key_b64 = words[0], words[1]
        if key_type.endswith("-cert-v01@openssh.com"):
            raise ValueError(f"line {number}: that is a certificate; paste the CA's public key")
        try:
            blob = base64.b64decode(key_b64, validate=True)
            paramiko.PKey.from_type_string(key_type, blob)
        except _UNREADABLE:
            raise ValueError(f"line {number}: not a readable {key_type} public key") from None
        keys.append((key_type, key_b64))
    return keys
