"""Which SSH algorithms a connection offers, and the legacy ones an admin may allow per server.

paramiko 5 no longer speaks SHA-1 key exchange (diffie-hellman-group1-sha1,
diffie-hellman-group14-sha1) or SHA-1 RSA host key signatures (ssh-rsa). Old appliances
and long-unpatched servers still offer nothing else. They stay refused (with a message that
names what the server offers) unless an admin sets "allow legacy SSH algorithms" on that
server; then, and only then, `Transport(allow_legacy=True)` offers them too, after every
modern algorithm, so a server that also speaks a modern one still gets the modern one.

The same Transport remembers the server's KEXINIT lists, so a failed negotiation can say
what the server offered, and can put certificate host key algorithms first for servers whose
customer trusts a CA (paramiko lists them after the plain keys, so a server offering both
would otherwise never show its certificate). It also keeps a jump host's own words for a
refused channel open ("Connection refused"), which paramiko drops.
"""

from __future__ import annotations

from hashlib import sha1

import paramiko
from cryptography.hazmat.primitives import hashes
from paramiko.kex_group14 import KexGroup14SHA256

# Oakley group 2 (RFC 2409 6.2), the 1024-bit prime of diffie-hellman-group1-sha1.
_GROUP1_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)


class _KexGroup14SHA1(KexGroup14SHA256):
    name = "diffie-hellman-group14-sha1"
    hash_algo = sha1


class _KexGroup1SHA1(KexGroup14SHA256):
    name = "diffie-hellman-group1-sha1"
    P = _GROUP1_PRIME
    hash_algo = sha1


class _LegacyRSAKey(paramiko.RSAKey):
    """An RSA host key that also verifies ssh-rsa (SHA-1) signatures; used only when allowed."""

    # The stubs mark HASHES Final; extending it in this subclass is the point.
    HASHES = {**paramiko.RSAKey.HASHES, "ssh-rsa": hashes.SHA1, "ssh-rsa-cert-v01@openssh.com": hashes.SHA1}  # type: ignore[misc]


LEGACY_KEX = ("diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1")
LEGACY_HOST_KEYS = ("ssh-rsa",)
_CERT = "-cert-v01@openssh.com"


# The _kex_info and _key_info tables and the two _parse/_filter methods are paramiko internals the stubs
# leave out; the legacy-algorithm tests in tests/test_ssh_trust.py notice a paramiko that changes them.
class Transport(paramiko.Transport):
    _kex_info = {
        **paramiko.Transport._kex_info,  # type: ignore[attr-defined]  # internal, see above
        _KexGroup14SHA1.name: _KexGroup14SHA1,
        _KexGroup1SHA1.name: _KexGroup1SHA1,
    }
    # Only a negotiated ssh-rsa host key accepts SHA-1 signatures; rsa-sha2-* keep paramiko's class.
    _key_info = {**paramiko.Transport._key_info, "ssh-rsa": _LegacyRSAKey}  # type: ignore[attr-defined]  # internal

    def __init__(self, sock, *, allow_legacy: bool = False, certificates_first: bool = False):
        super().__init__(sock)
        self.allow_legacy = allow_legacy
        self.certificates_first = certificates_first
        self.server_offer: dict[str, list[str]] = {}
        # The server's own words for the last refused channel open (a jump host's "Connection refused",
        # "No route to host"): paramiko's ChannelException keeps only its canned text for the reason code.
        self.open_failure_text = ""

    @property
    def preferred_kex(self):
        modern = super().preferred_kex
        return tuple(modern) + LEGACY_KEX if self.allow_legacy else modern

    @property
    def preferred_keys(self):
        # _filter_algorithm: internal, see above
        plain = self._filter_algorithm("keys") + (LEGACY_HOST_KEYS if self.allow_legacy else ())  # type: ignore[attr-defined]
        certs = tuple(name + _CERT for name in plain)
        return certs + plain if self.certificates_first else plain + certs

    def _really_parse_kex_init(self, m):
        parsed = super()._really_parse_kex_init(m)  # type: ignore[misc]  # internal, see above
        self.server_offer = {"kex": list(parsed["kex_algo_list"]), "host_key": list(parsed["server_key_algo_list"])}
        return parsed

    def _parse_channel_open_failure(self, m):
        m.get_int()  # channel
        m.get_int()  # reason code (paramiko's exception keeps it)
        self.open_failure_text = m.get_text()[:200]
        m.rewind()
        return super()._parse_channel_open_failure(m)  # type: ignore[misc]  # internal, see above

    def refusal(self) -> str | None:
        """Why negotiation failed, naming what the server offered, if its offer is known."""
        if not self.server_offer:
            return None
        kex = [name for name in self.server_offer["kex"] if not name.startswith(("ext-info-", "kex-strict-"))]
        if not set(kex) & set(self.preferred_kex):
            return _refusal("key exchange", kex, self.allow_legacy)
        host_keys = self.server_offer["host_key"]
        if not set(host_keys) & set(self.preferred_keys):
            return _refusal("host key", host_keys, self.allow_legacy)
        return None


def _refusal(what: str, offered: list[str], allowed: bool) -> str:
    names = ", ".join(offered) or "nothing"
    legacy = set(offered) <= set(LEGACY_KEX + LEGACY_HOST_KEYS + tuple(n + _CERT for n in LEGACY_HOST_KEYS))
    if legacy and not allowed:
        return (
            f"the server offers only legacy SHA-1 {what} algorithms ({names}); refused. An admin can allow "
            "legacy SSH algorithms for this server on its Access page"
        )
    return f"no {what} algorithm in common with the server (it offers {names})"
