"""Servers as customers really have them, against real sshd hosts in the lab: a non-default port,
IPv6, host keys certified by the customer's SSH CA, keyboard-interactive passwords, legacy-only
algorithms, and login shells whose rc files are slow and noisy."""

from __future__ import annotations

import subprocess

import pytest

from diagnostics import services, ssh
from diagnostics.models import CollectionRun, Playbook, RunState
from tests.lab_servers import lab_server
from triage import services as desk
from triage.models import Customer

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

LOAD = [{"probe": "load", "params": {}}]


@pytest.fixture
def ticket(customer, tech):
    return desk.ticket_create(subject="Reach", description="real-world SSH", customer=customer, created_by=tech)


def _collect(ticket, server) -> CollectionRun:
    playbook, _ = Playbook.objects.get_or_create(name="reach load", defaults={"steps": LOAD})
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    return services.run_execute(run_id=run.pk, worker="test")


def _ca(tmp_path, name="ca"):
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def _connect(host, *, address=None, pinned=(), ca_keys=(), names=(), allow_legacy=False, port=None, revoked=()):
    return ssh.connect(
        address=address or host.address,
        port=port or host.port,
        username="root",
        secret=ssh.Secret(private_key=host.client_key_path.read_text()),
        pinned=pinned,
        ca_keys=ca_keys,
        names=names,
        allow_legacy=allow_legacy,
        revoked=revoked,
        timeouts=ssh.Timeouts(connect=3, banner=5, handshake=10, auth=10),
    )


def _key(line: str) -> ssh.HostKey:
    key_type, key_b64 = line.split()[:2]
    return ssh.HostKey(key_type, key_b64)


def test_a_server_on_a_non_default_port_and_one_by_ipv6_address_are_collected(lab, customer, ticket):
    host = lab.add_host("portv6", port=2222, ipv6=True)
    by_v4 = lab_server(customer, host, port=2222)
    by_v6 = lab_server(Customer.objects.create(name="v6 customer", sla_tier=customer.sla_tier), host, port=2222)
    by_v6.address = host.address6
    by_v6.save()
    for server in (by_v4, by_v6):
        run = (
            _collect(ticket, server)
            if server is by_v4
            else _collect(
                desk.ticket_create(subject="v6", description="v6", customer=server.customer, created_by=None), server
            )
        )
        assert run.state == RunState.SUCCEEDED, (server.address, run.reason)
        assert "load average" in run.evidence.get(probe="load").text
        shown = f"[{server.address}]" if server is by_v6 else server.address  # IPv6 bracketed, as OpenSSH does
        assert f"root@{shown}:2222" in run.evidence.get(probe="ssh_session").text
    # Port 22 is closed there: the reason names the address and port tried.
    with pytest.raises(ssh.SshError) as refused:
        _connect(host, address=host.address6, port=22, pinned=[_key(host.host_public_key)])
    assert refused.value.kind == "unreachable" and f"{host.address6} port 22" in refused.value.message


def test_a_host_certificate_from_the_customers_ca_stands_in_for_the_pinned_key(
    lab, customer, ticket, tmp_path, admin_user
):
    ca = _ca(tmp_path)
    host = lab.add_host("signed")
    host.sign_host_key(ca, [host.address])
    server = lab_server(customer, host)  # the original key pinned
    services.ssh_trust_set(server=server, ca_keys=ca.with_suffix(".pub").read_text(), allow_legacy=False, by=admin_user)

    # The key is rotated and the new one signed: trusted through the CA, nothing for an admin to approve.
    host.rotate_host_key()
    host.sign_host_key(ca, [host.address])
    run = _collect(ticket, server)
    assert run.state == RunState.SUCCEEDED, run.reason

    # Rotated again without a certificate: refused like any changed key, and the alert is raised.
    host.rotate_host_key()
    run = _collect(ticket, server)
    assert run.state == RunState.FAILED and run.failure_kind == "host_key_changed", run.reason
    assert "no host certificate" in run.reason
    server.refresh_from_db()
    assert server.host_key_changed_at is not None


def test_a_certificate_is_refused_for_another_name_another_ca_expired_or_without_ca_trust(lab, tmp_path):
    ca, other_ca = _ca(tmp_path), _ca(tmp_path, "other")
    host = lab.add_host("certs")
    trusted = [_key(ca.with_suffix(".pub").read_text())]
    names = [host.address, host.name]
    cases = [
        (ca, ["someone-else.example"], "-5m:+1h", "not for"),
        (other_ca, [host.address], "-5m:+1h", "CA the customer does not trust"),
        (ca, [host.name], "-2h:-1h", "expired"),
    ]
    for signer, principals, validity, why in cases:
        host.sign_host_key(signer, principals, validity=validity)
        with pytest.raises(ssh.SshError) as refused:
            _connect(host, ca_keys=trusted, names=names)
        assert refused.value.kind == "host_key_unknown" and why in refused.value.message, refused.value.message
    host.sign_host_key(ca, [host.name])
    with _connect(host, ca_keys=trusted, names=names) as session:  # the good certificate, by the server's name
        assert session.host_key == _key(host.host_public_key)
    # A key an admin revoked for this server stays refused, certificate or not.
    with pytest.raises(ssh.SshError) as revoked:
        _connect(host, ca_keys=trusted, names=names, revoked=[_key(host.host_public_key)])
    assert revoked.value.kind == "host_key_unknown" and "revoked" in revoked.value.message
    # A customer without CA keys: the certificate counts for nothing, the raw key must be pinned.
    with pytest.raises(ssh.SshError) as unknown:
        _connect(host, names=names)
    assert unknown.value.kind == "host_key_unknown"
    with _connect(host, pinned=[_key(host.host_public_key)], names=names):
        pass


def test_a_password_is_given_at_a_keyboard_interactive_prompt(lab, customer, ticket):
    host = lab.add_host(
        "kbdint",
        user_password_login=False,
        sshd_options={"UsePAM": "yes", "PasswordAuthentication": "no", "KbdInteractiveAuthentication": "yes"},
    )
    server = lab_server(customer, host, key="none")
    server.ssh_user = host.user
    server.save()
    services.credential_set(server=server, kind="password", secret=host.password)
    run = _collect(ticket, server)
    assert run.state == RunState.SUCCEEDED, run.reason
    assert "keyboard-interactive" in host.sshd_log()


def test_a_legacy_only_server_is_refused_by_name_until_an_admin_allows_it(lab, customer, ticket, admin_user):
    host = lab.add_host(
        "legacy",
        rsa_host_key=True,
        sshd_options={"HostKeyAlgorithms": "ssh-rsa", "KexAlgorithms": "diffie-hellman-group14-sha1"},
    )
    server = lab_server(customer, host, pin=False)
    rsa = _key(host.rsa_host_key_path.with_name("ssh_host_rsa_key.pub").read_text())
    services.host_keys_import(
        server=server, known_hosts=f"{host.address} {rsa.key_type} {rsa.key_base64}\n", by=admin_user
    )
    run = _collect(ticket, server)
    assert run.state == RunState.FAILED and run.failure_kind == "algorithms", run.reason
    assert "diffie-hellman-group14-sha1" in run.reason and "allow legacy" in run.reason

    services.ssh_trust_set(server=server, ca_keys="", allow_legacy=True, by=admin_user)
    run = _collect(ticket, server)
    assert run.state == RunState.SUCCEEDED, run.reason

    # Modern key exchange, but only an ssh-rsa host key: the message names the host key algorithm.
    host.stop_sshd()
    host.sshd_options.pop("KexAlgorithms")
    host.start_sshd()
    with pytest.raises(ssh.SshError) as refused:
        _connect(host, pinned=[rsa])
    assert refused.value.kind == "algorithms" and "host key algorithms (ssh-rsa)" in refused.value.message
    with _connect(host, pinned=[rsa], allow_legacy=True):
        pass
    # The oldest: 1024-bit group 1.
    host.stop_sshd()
    host.sshd_options["KexAlgorithms"] = "diffie-hellman-group1-sha1"
    host.start_sshd()
    with pytest.raises(ssh.SshError, match=r"key exchange algorithms \(diffie-hellman-group1-sha1\)"):
        _connect(host, pinned=[rsa])
    with _connect(host, pinned=[rsa], allow_legacy=True) as session:
        assert session.run(ssh.CommandSpec("1", "echo old", timeout=5)).stdout == b"old\n"


def test_slow_noisy_rc_files_neither_time_probes_out_nor_reach_their_output(lab, customer, ticket):
    host = lab.add_host("noisyrc")
    # No `[ -z "$PS1" ] && return` guard: this runs for interactive and non-interactive shells alike.
    host.write_root_rc('sleep 3\necho "Welcome! junk from .bashrc"\necho "stderr junk" >&2\nprintf "no newline"\n')
    specs = [ssh.CommandSpec(str(n), f"echo clean {n}", timeout=1) for n in range(3)]
    with ssh.connect(
        address=host.address,
        port=22,
        username="root",
        secret=ssh.Secret(private_key=host.client_key_path.read_text()),
        pinned=[_key(host.host_public_key)],
        timeouts=ssh.Timeouts(grace=1),
    ) as session:  # 1 s + 1 s of bounds against a 3 s rc file
        results = session.run_many(specs, concurrency=3)
    for n, result in enumerate(results):
        assert (result.exit_status, result.stdout, result.stderr, result.error) == (
            0,
            f"clean {n}\n".encode(),
            b"",
            "",
        ), result
    # And through a whole collection: the probe's evidence is the probe's output alone.
    run = _collect(ticket, lab_server(customer, host))
    assert run.state == RunState.SUCCEEDED, run.reason
    text = run.evidence.get(probe="load").text
    assert "load average" in text and "junk" not in text and "no newline" not in text
