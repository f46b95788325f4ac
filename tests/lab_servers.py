"""The product-side setup of a lab host: its Server, credential and pinned host key."""

from __future__ import annotations

from diagnostics import services, ssh
from diagnostics.models import HostKey
from triage.models import Server


def lab_server(customer, host, *, port: int = 22, pin: bool = True, key: str = "plain") -> Server:
    """A server for a lab host as an admin sets one up: credential stored, host key pinned (unless told not to)."""
    server = Server.objects.create(customer=customer, name=host.name, address=host.address, ssh_port=port)
    if key == "plain":
        services.credential_set(server=server, kind="key", secret=host.client_key_path.read_text())
    elif key == "encrypted":
        services.credential_set(
            server=server,
            kind="key",
            secret=host.client_key_encrypted_path.read_text(),
            passphrase=host.client_key_passphrase,
        )
    if pin:
        key_type, key_b64 = host.host_public_key.split()[:2]
        HostKey.objects.create(
            server=server,
            key_type=key_type,
            key_base64=key_b64,
            fingerprint=ssh.fingerprint_of(key_b64),
            status=HostKey.TRUSTED,
        )
    return server


def lab_jump_host(
    customer,
    host,
    *,
    name: str | None = None,
    pin: bool = True,
    credential: str = "key",
    username: str = "root",
    bounds: dict | None = None,
):
    """A jump host for a lab bastion as an admin sets one up: its credential stored (the lab's key for root,
    or the password user's password), its host key pinned from a known_hosts line (unless told not to)."""
    jump_host = services.jump_host_save(
        customer=customer,
        name=name or host.name,
        address=host.address,
        ssh_port=host.port,
        username=username,
        bounds=bounds,
    )
    if credential == "key":
        services.jump_host_credential_set(jump_host=jump_host, kind="key", secret=host.client_key_path.read_text())
    elif credential == "password":
        services.jump_host_credential_set(jump_host=jump_host, kind="password", secret=host.password)
    if pin:
        services.jump_host_keys_import(jump_host=jump_host, known_hosts=host.known_hosts_line + "\n", by=None)
    return jump_host
