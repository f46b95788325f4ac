"""Host certificates checked against CA keys, legacy-algorithm refusals, rc-file noise stripped, and the
Access page's trust settings; certificates are made by the real ssh-keygen. (The lab tests in
test_ssh_reach_lab.py take the same paths against real sshd.)"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import socket
import subprocess
import threading

import paramiko
import pytest
from django.urls import reverse

from diagnostics import ssh, ssh_algorithms, ssh_certs
from diagnostics.models import AuditEntry
from tests.conftest import login


def _keygen(path, *args):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path), *args], check=True, timeout=20
    )
    return path


def _blob(pub_path) -> bytes:
    return base64.b64decode(pub_path.read_text().split()[1])


@pytest.fixture
def keys(tmp_path):
    return _keygen(tmp_path / "ca"), _keygen(tmp_path / "host")


def _sign(keys, *options, host=True):
    ca, key = keys
    cert = key.with_name("host-cert.pub")
    cert.unlink(missing_ok=True)
    argv = ["ssh-keygen", "-q", "-s", str(ca), "-I", "test", *(["-h"] if host else []), *options, f"{key}.pub"]
    subprocess.run(argv, check=True, timeout=20)
    return _blob(cert)


def test_a_host_certificate_signed_by_the_ca_for_the_server_is_accepted(keys):
    cert = ssh_certs.check(
        _sign(keys, "-n", "mail1,10.0.0.5", "-V", "-5m:+1h"),
        ca_keys=[_blob(keys[0].with_suffix(".pub"))],
        names=["10.0.0.5", "mail1"],
    )
    assert cert.principals == ("mail1", "10.0.0.5") and cert.cert_type == ssh_certs.HOST_CERT


@pytest.mark.parametrize(
    ("options", "host", "why"),
    [
        (["-n", "mail1"], False, "not a host certificate"),
        (["-n", "other"], True, "is for other, not for 10.0.0.5 or mail1"),
        ([], True, "is for none"),  # no principals: OpenSSH would take it for any host; we do not
        (["-n", "mail1", "-V", "+1h:+2h"], True, "not valid yet"),
        (["-n", "mail1", "-V", "-2h:-1h"], True, "expired"),
    ],
)
def test_a_certificate_that_does_not_fit_is_refused_with_the_reason(keys, options, host, why):
    with pytest.raises(ssh_certs.CertificateRefused, match=why):
        ssh_certs.check(
            _sign(keys, *options, host=host), ca_keys=[_blob(keys[0].with_suffix(".pub"))], names=["10.0.0.5", "mail1"]
        )


def test_a_tampered_or_foreign_certificate_is_refused(keys, tmp_path):
    blob = _sign(keys, "-n", "mail1")
    ca_blob = _blob(keys[0].with_suffix(".pub"))
    tampered = blob.replace(b"mail1", b"mail2")  # the principal changed after signing
    with pytest.raises(ssh_certs.CertificateRefused, match="signature does not verify"):
        ssh_certs.check(tampered, ca_keys=[ca_blob], names=["mail2"])
    other = _blob(_keygen(tmp_path / "other").with_suffix(".pub"))
    with pytest.raises(ssh_certs.CertificateRefused, match="does not trust"):
        ssh_certs.check(blob, ca_keys=[other], names=["mail1"])
    for garbage in (b"", blob[:40], b"\x00\x00\x00\x05hello"):
        with pytest.raises(ssh_certs.CertificateRefused):
            ssh_certs.check(garbage, ca_keys=[ca_blob], names=["mail1"])


def test_ca_keys_are_read_from_pub_lines_and_cert_authority_lines_and_garbage_is_refused(keys):
    line = keys[0].with_suffix(".pub").read_text().strip()
    key_type, key_b64 = line.split()[:2]
    text = f"# our CA\n\n{line}\n@cert-authority *.example.com {key_type} {key_b64}\n"
    assert ssh_certs.parse_ca_keys(text) == [(key_type, key_b64)] * 2
    for bad, why in [
        ("ssh-ed25519 not-base64!", "line 1: not a readable"),
        ("ssh-ed25519", "line 1: expected"),
        ("ssh-ed25519 " + base64.b64encode(b"junk").decode(), "not a readable"),
    ]:
        with pytest.raises(ValueError, match=why):
            ssh_certs.parse_ca_keys(bad)
    cert_line = keys[1].with_name("host-cert.pub")
    _sign(keys, "-n", "x")
    with pytest.raises(ValueError, match="that is a certificate"):
        ssh_certs.parse_ca_keys(cert_line.read_text())


def test_a_legacy_only_offer_is_named_and_points_at_the_per_server_switch():
    refused = ssh_algorithms._refusal("key exchange", ["diffie-hellman-group1-sha1"], allowed=False)
    assert "only legacy SHA-1 key exchange algorithms (diffie-hellman-group1-sha1)" in refused
    assert "allow legacy SSH algorithms for this server" in refused
    other = ssh_algorithms._refusal("host key", ["ssh-dss"], allowed=False)
    assert other == "no host key algorithm in common with the server (it offers ssh-dss)"


def test_rc_file_noise_in_front_of_the_marker_is_dropped_wherever_the_chunks_split():
    marker = b"rundesk-start-0123\n"
    stream = b"Welcome!\nno newline" + b"\n" + marker + b"real output\n"
    for split in range(1, len(stream)):
        sink = ssh.HeadTail(1 << 10)
        after = ssh.AfterMarker(sink, marker)
        after.feed(stream[:split])
        after.feed(stream[split:])
        after.finish()
        assert sink.value() == b"real output\n", split
    # No marker ever (a shell that is not sh-like): nothing is lost.
    sink = ssh.HeadTail(1 << 10)
    after = ssh.AfterMarker(sink, marker)
    after.feed(b"whatever came\n")
    after.finish()
    assert sink.value() == b"whatever came\n"
    # A flood of noise is held only up to the bound.
    after = ssh.AfterMarker(ssh.HeadTail(1 << 10), marker, hold=100)
    after.feed(b"x" * 10_000)
    assert after.noise == 9_900


def test_the_start_marker_prints_on_both_streams_before_the_command():
    wrapped = ssh.marked(ssh.remote_wrapper("echo out; echo err >&2", 5), "abc")
    done = subprocess.run(["sh", "-c", f"echo noise; echo noise >&2; {wrapped}"], capture_output=True, timeout=20)
    assert done.stdout == b"noise\n\nrundesk-start-abc\nout\n"
    assert done.stderr == b"noise\n\nrundesk-start-abc\nerr\n"


@pytest.mark.django_db
def test_an_admin_sets_the_customers_ca_keys_and_the_legacy_switch_from_the_access_page(
    client, admin_user, server, keys
):
    login(client, admin_user)
    url = reverse("ssh_trust", args=[server.pk])
    refused = client.post(url, {"trust-ca_keys": "ssh-ed25519 <script>"})
    assert refused.status_code == 400 and b"not a readable" in refused.content and b"<script>" not in refused.content
    line = keys[0].with_suffix(".pub").read_text()
    assert client.post(url, {"trust-ca_keys": line, "trust-allow_legacy": "on"}).status_code == 302
    server.refresh_from_db()
    server.customer.refresh_from_db()
    assert server.allow_legacy_ssh and server.customer.host_ca_keys == line.strip()
    assert {a.action for a in AuditEntry.objects.filter(actor=admin_user)} == {"host_ca_keys_set", "legacy_ssh_allowed"}
    page = client.get(reverse("server_access", args=[server.pk]))
    assert line.split()[1].encode() in page.content  # the stored settings come back for editing


# A throwaway host key for the in-process server below (generated for this test file, guards nothing).
_ED25519_FOR_TESTS = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACA8PP5UrUg+aJIaA8A89sut/5WTcuwBuOGBrAiVwJBUrQAAAIjDDFDDwwxQ
wwAAAAtzc2gtZWQyNTUxOQAAACA8PP5UrUg+aJIaA8A89sut/5WTcuwBuOGBrAiVwJBUrQ
AAAEAtQZbdhMrifF+nH/LRh95qD+KLrh0Kdw88VDh+3XrwqDw8/lStSD5okhoDwDz2y63/
lZNy7AG44YGsCJXAkFStAAAABHRlc3QB
-----END OPENSSH PRIVATE KEY-----
"""


class _KbdIntOnly(paramiko.ServerInterface):
    """A server that allows only keyboard-interactive and asks the given prompts."""

    def __init__(self, prompts, password):
        self.prompts, self.password = prompts, password

    def get_allowed_auths(self, username):
        return "keyboard-interactive"

    def check_auth_interactive(self, username, submethods):
        query = paramiko.InteractiveQuery("login", "")
        for prompt in self.prompts:
            query.add_prompt(prompt, echo=False)
        return query

    def check_auth_interactive_response(self, responses):
        ok = list(responses) == [self.password] * len(self.prompts)
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED


def _serve_once(prompts=None, password=None, *, interface=None):
    """A paramiko server on a real localhost port for one connection; returns (port, host key). It asks
    keyboard-interactive `prompts`, or is the server `interface(conn)` makes for the accepted socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(_ED25519_FOR_TESTS))

    def serve():
        conn, _ = listener.accept()
        transport = paramiko.Transport(conn)
        transport.add_server_key(key)
        server = interface(conn) if interface else _KbdIntOnly(prompts, password)
        with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
            transport.start_server(server=server)
            transport.join(10)
        transport.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], ssh.HostKey(key.get_name(), key.get_base64())


@pytest.mark.parametrize(
    ("prompts", "refused"), [(["Password: "], None), (["Password: ", "Verification code: "], "'Verification code:'")]
)
def test_a_password_answers_keyboard_interactive_password_prompts_and_nothing_else(prompts, refused):
    port, host_key = _serve_once(prompts, "s3cret")
    connect = functools.partial(
        ssh.connect,
        address="127.0.0.1",
        port=port,
        username="support",
        secret=ssh.Secret(password="s3cret"),
        pinned=[host_key],
        timeouts=ssh.Timeouts(connect=5, banner=10, handshake=10, auth=10),
    )
    if refused is None:
        with connect() as session:
            assert session.alive
        return
    with pytest.raises(ssh.SshError) as failed:
        connect()
    assert failed.value.kind == "auth_failed" and refused in failed.value.message, failed.value.message


class _HangsUpDuringAuth(paramiko.ServerInterface):
    """A server that closes the connection while it checks the password (sshd's child dying, or a
    connection limit hit mid-login): the client sees the transport end, not a refusal."""

    def __init__(self, conn):
        self.conn = conn

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        self.conn.shutdown(socket.SHUT_RDWR)
        return paramiko.AUTH_FAILED


def test_a_connection_closed_during_authentication_is_a_drop_not_a_refusal():
    port, host_key = _serve_once(interface=_HangsUpDuringAuth)
    with pytest.raises(ssh.SshError) as failed:
        ssh.connect(
            address="127.0.0.1",
            port=port,
            username="support",
            secret=ssh.Secret(password="s3cret"),
            pinned=[host_key],
            timeouts=ssh.Timeouts(connect=5, banner=10, handshake=10, auth=10),
        )
    assert failed.value.kind == "dropped", failed.value.message
    assert failed.value.transient and "during authentication" in failed.value.message
