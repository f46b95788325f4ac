"""The admins' Mailboxes page through Django's test client: adding and editing a mailbox, its password
write-only, plain text refused for a remote host, and Test connection against a real dovecot."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailgate.models import Mailbox, Security
from tests.conftest import login
from tests.imap_server import PASSWORD
from tests.mailgate_support import mail

pytest_plugins = ["tests.imap_fixtures"]


def form(**overrides) -> dict:
    data = {
        "name": "Support inbox",
        "host": "localhost",
        "security": Security.IMAPS,
        "port": "",
        "username": "desk",
        "password": PASSWORD,
        "folder": "INBOX",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_an_admin_adds_a_mailbox_whose_password_is_never_shown_back(client, admin_user):
    login(client, admin_user)

    response = client.post(reverse("mailbox_new"), form())

    assert response.status_code == 302 and response["Location"] == reverse("mailboxes")
    mailbox = Mailbox.objects.get()
    assert (mailbox.host, mailbox.port, mailbox.security, mailbox.created_by) == ("localhost", 993, "imaps", admin_user)
    assert mailbox.password() == PASSWORD and PASSWORD.encode() not in bytes(mailbox.password_token)
    for url in (reverse("mailboxes"), reverse("mailbox_edit", args=[mailbox.pk])):
        page = client.get(url)
        assert page.status_code == 200 and PASSWORD not in page.content.decode()


def test_saving_with_a_blank_password_keeps_the_stored_one_and_unticking_enabled_disables(client, admin_user):
    login(client, admin_user)
    client.post(reverse("mailbox_new"), form())
    mailbox = Mailbox.objects.get()

    response = client.post(
        reverse("mailbox_edit", args=[mailbox.pk]), form(password="", security=Security.STARTTLS, enabled="")
    )

    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.enabled, mailbox.port, mailbox.password()) == (False, 143, PASSWORD)


def test_a_new_mailbox_needs_a_password_and_plain_text_only_to_this_machine(client, admin_user):
    login(client, admin_user)

    no_password = client.post(reverse("mailbox_new"), form(password=""))
    remote_plain = client.post(reverse("mailbox_new"), form(host="imap.example.com", security=Security.PLAIN))

    assert no_password.status_code == 400 and remote_plain.status_code == 400
    assert "only for a server on this machine" in remote_plain.content.decode()
    assert not Mailbox.objects.exists()


def test_the_last_error_is_shown_as_text(client, admin_user):
    login(client, admin_user)
    client.post(reverse("mailbox_new"), form())
    Mailbox.objects.update(last_error="imap.example.com answered <script>alert(1)</script>")

    page = client.get(reverse("mailboxes")).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


@pytest.mark.django_db(transaction=True)
def test_test_connection_says_what_it_found_or_why_it_failed(client, settings, admin_user, dovecot):
    settings.TRIAGE_IMAP_CA_FILE, settings.TRIAGE_IMAP_TIMEOUT = str(dovecot.cert), 5
    user = dovecot.add_user()
    dovecot.deliver(user, mail(subject="Waiting"))
    login(client, admin_user)
    client.post(reverse("mailbox_new"), form(username=user, port=dovecot.imaps_port))
    client.post(reverse("mailbox_new"), form(name="Typo", username=user, password="wrong", port=dovecot.imaps_port))
    good, typo = Mailbox.objects.get(name="Support inbox"), Mailbox.objects.get(name="Typo")

    connected = client.post(reverse("mailbox_test", args=[good.pk]), follow=True).content.decode()
    refused = client.post(reverse("mailbox_test", args=[typo.pk]), follow=True).content.decode()

    assert f"Connected to localhost:{dovecot.imaps_port} as {user}: 1 unread in INBOX." in connected
    assert "Typo: localhost:" in refused and f"refused the login of {user}" in refused
