"""Least privilege without a lab: the login user and sudo password on a credential (encrypted at rest, never
rendered back), the sudoers lines the Access page generates from the probe registry, and the command wrapping."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from diagnostics import probes, services, ssh
from diagnostics.models import AuditEntry, Credential
from diagnostics.probes import privilege
from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_the_sudo_password_is_stored_only_encrypted_and_rotates_with_the_other_secrets(settings, server, admin_user):
    credential = services.credential_set(
        server=server,
        kind="password",
        secret="login-pw",
        username="support",
        sudo_password="sudo-pw-7731",
        by=admin_user,
    )
    stored = Credential.objects.get(pk=credential.pk)
    assert b"sudo-pw-7731" not in bytes(stored.sudo_password_token)
    assert services.credential_sudo_password(stored) == "sudo-pw-7731"
    assert stored.login_user(server) == "support"
    detail = AuditEntry.objects.get(action="credential_set").detail
    assert detail["sudo_password"] is True and "sudo-pw-7731" not in str(detail)
    new = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [new, settings.CREDENTIALS_KEYS[0]]
    call_command("rotate_credentials", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.CREDENTIALS_KEYS = [new]
    assert services.credential_sudo_password(Credential.objects.get(pk=credential.pk)) == "sudo-pw-7731"


def test_without_a_username_the_credential_logs_in_as_the_servers_ssh_user(server, admin_user):
    credential = services.credential_set(server=server, kind="password", secret="x", by=admin_user)
    assert credential.login_user(server) == server.ssh_user
    assert services.credential_sudo_password(credential) is None


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("username", {"username": "Root; rm -rf /"}),
        ("sudo_password", {"sudo_password": "two\nlines"}),
    ],
)
def test_a_bad_username_or_a_multi_line_sudo_password_is_refused(server, admin_user, field, values):
    with pytest.raises(ValidationError) as caught:
        services.credential_set(server=server, kind="password", secret="x", by=admin_user, **values)
    assert field in caught.value.message_dict
    assert not Credential.objects.exists()


def test_the_access_form_stores_the_login_user_and_sudo_password_and_never_shows_the_password(
    client, admin_user, server
):
    login(client, admin_user)
    response = client.post(
        reverse("server_access", args=[server.pk]),
        {
            "cred-kind": "password",
            "cred-secret": "login-pw",
            "cred-username": "support",
            "cred-sudo_password": "typed-sudo-pw",
            "scope": "server",
        },
    )
    assert response.status_code == 302
    credential = Credential.objects.get()
    assert credential.username == "support"
    assert b"typed-sudo-pw" not in bytes(credential.sudo_password_token)
    page = client.get(reverse("server_access", args=[server.pk])).content.decode()
    assert "typed-sudo-pw" not in page
    # The sudoers lines for this login user, PASSWD because sudo asks it for one; escaped as text.
    assert "support ALL=(root) PASSWD: TRIAGE_PROBES" in page
    assert "^(/usr/bin/strace)$ ^-f -tt -T -e trace\\=" in page
    assert "&lt;&gt;&amp;|" in page  # the tcpdump filter's characters, as text


def test_a_root_login_needs_no_sudoers_lines(client, admin_user, server):
    services.credential_set(server=server, kind="password", secret="x", by=admin_user)
    login(client, admin_user)
    page = client.get(reverse("server_access", args=[server.pk])).content.decode()
    assert "Collections log in as root" in page and "TRIAGE_PROBES" not in page


def test_the_sudoers_lines_cover_every_root_tool_of_the_registry_and_visudo_accepts_them(tmp_path):
    tools = probes.root_tools()
    assert set(tools) == {"strace", "tcpdump", "sshd", "find", "tail"}
    assert set(tools) == {t for p in probes.REGISTRY.values() for t in p.root_tools}
    text = "\n".join(privilege.sudoers_lines(user="support", tools=tools)) + "\n"
    # Path and arguments anchored regular expressions, one command per tool (older sudo refuses a path like that).
    specs = [line.strip().rstrip(", \\") for line in text.splitlines() if line.strip().startswith(("^", "Cmnd_Alias"))]
    specs[0] = specs[0].split(" = ", 1)[1]
    assert len(specs) == len(tools)
    assert all(spec.startswith("^(/usr/") and spec.endswith("$") and "$ ^" in spec for spec in specs), specs
    assert "support ALL=(root) NOPASSWD: TRIAGE_PROBES" in text
    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    path = tmp_path / "sudoers"
    path.write_text(text)
    checked = subprocess.run([visudo, "-c", "-f", str(path)], capture_output=True, text=True, timeout=10)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_only_root_probes_read_a_sudo_password_and_their_spec_never_shows_it():
    strace = probes.build("strace", {"process": "tcpserver"})
    load = probes.build("load")
    assert strace.needs_root and not load.needs_root
    wrapped = privilege.reading_sudo_password(strace.command)
    assert wrapped.startswith(f"{privilege.PASSWORD_VARIABLE}=; IFS= read -r {privilege.PASSWORD_VARIABLE} || :; ")
    spec = ssh.CommandSpec(key="0", command=wrapped, timeout=5, stdin=b"hunter2\n")
    assert "hunter2" not in repr(spec)


def test_a_needs_root_note_is_read_back_from_the_evidence():
    output = "probe: tracing 1 process(es) named x\nprobe: needs root: strace must run as root and bob may not\n"
    assert privilege.needs_root_note(output) == "strace must run as root and bob may not"
    assert privilege.needs_root_note("probe: strace not installed\n") == ""


def test_a_near_miss_that_needed_a_probe_refused_root_says_so(client, tech, admin_user, make_run, ticket):
    from html import unescape

    from diagnostics.knowledge import services as knowledge
    from diagnostics.knowledge.diagnosis import ticket_findings
    from diagnostics.models import Evidence
    from tests.diagnosing import diagnosed

    # Half of the symptom holds (the load); the trace that would settle it needed root.
    knowledge.symptom_save(
        data={
            "key": "slow-connects",
            "title": "Slow connects",
            "threshold": 0.9,
            "signature": {"all": [{"probe": "load", "regex": "load average"}, {"probe": "strace", "regex": "connect"}]},
        },
        by=admin_user,
    )
    note = "probe: needs root: strace must run as root and support may not run it through sudo (sudo: nope)\n"
    run = make_run({"load": "up 3 days, load average: 9.10, 9.20, 9.30\n", "strace": note})
    Evidence.objects.filter(run=run, probe="strace").update(exit_status=privilege.NEEDS_ROOT)
    diagnosed(run)
    (possible,) = [p for p in ticket_findings(ticket=ticket).possible if p.match.symptom.key == "slow-connects"]
    assert possible.missing_probes == ["strace"] and possible.needs_root_probes == ["strace"]
    page = unescape(login(client, tech).get(reverse("ticket", args=[ticket.pk])).content.decode())
    assert "Needs root: strace ran but the login user's sudo does not allow it" in page
    run_page = unescape(client.get(reverse("run", args=[run.pk])).content.decode())
    assert "Needs root: strace must run as root and support may not" in run_page
