"""Files a tech attaches in the desk to a reply, a note or a new ticket: kept on the entry, shown on
it with name and size, downloaded (never rendered), within the per-file and per-message limits, and
a reply's files mailed to the customer with it."""

from __future__ import annotations

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from composition import retention
from mailgate import tasks, upload_services
from mailgate.models import Attachment
from tests.conftest import login
from triage import extensions, services
from triage.models import DraftKind, EventKind, Ticket, TicketDraft

pytest_plugins = ["tests.mailgate_fixtures"]

HTMX = {"HTTP_HX_REQUEST": "true"}
EVIL_HTML = b"<script>alert(document.cookie)</script>"


def _file(name: str, content: bytes, content_type: str = "text/plain") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def _note(client, ticket, *files, body="Queue on mx1 is 4k deep; log attached."):
    return client.post(
        reverse("ticket_note", args=[ticket.pk]), {"note-body": body, "note-attachments": list(files)}, **HTMX
    )


def test_a_note_keeps_its_files_and_shows_them_on_its_entry_with_name_and_size(client, tech, ticket):
    response = _note(
        login(client, tech), ticket, _file("maillog.txt", b"x" * 2048), _file('../../etc/pass"wd', b"root:x:0:0")
    )

    assert response.status_code == 200
    note = ticket.events.get(kind=EventKind.NOTE)
    files = {a.filename: a for a in Attachment.objects.filter(event=note)}
    assert set(files) == {"maillog.txt", "passwd"}  # the path and the quote are gone
    assert files["maillog.txt"].ticket_id == ticket.pk and files["maillog.txt"].uploaded_by == tech
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    link = reverse("mail_attachment", args=[files["maillog.txt"].pk])
    assert f'href="{link}" download>maillog.txt</a>' in page
    assert "2.0\xa0KB" in page
    # Files attached in the desk are on their entry, not in the list of mail attachments.
    assert "Mail attachments" not in page


def test_a_notes_file_downloads_as_an_attachment_never_as_a_page(client, tech, ticket):
    _note(login(client, tech), ticket, _file("<img src=x onerror=alert(1)>.html", EVIL_HTML, "text/html"))
    attachment = Attachment.objects.get()

    response = client.get(reverse("mail_attachment", args=[attachment.pk]))

    assert response.status_code == 200 and response.content == EVIL_HTML
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    # The name is escaped on the page, never markup.
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;.html" in page and "<img src=x" not in page


def test_someone_who_cannot_see_the_ticket_cannot_download_its_files(client, tech, outsider, ticket):
    _note(login(client, tech), ticket, _file("maillog.txt", b"secret queue contents"))
    attachment = Attachment.objects.get()

    response = login(client, outsider).get(reverse("mail_attachment", args=[attachment.pk]))

    assert response.status_code == 403 and b"secret queue contents" not in response.content
    client.logout()
    assert client.get(reverse("mail_attachment", args=[attachment.pk])).status_code == 302  # to the login page


def test_a_file_over_the_per_file_limit_stores_nothing_and_keeps_the_typed_text(client, tech, ticket, settings):
    settings.TRIAGE_UPLOAD_MAX_FILE_BYTES = 1024
    login(client, tech)
    client.post(reverse("ticket_draft_note", args=[ticket.pk]), {"note-body": "Queue is 4k <deep>"}, **HTMX)

    response = _note(
        client, ticket, _file("small.txt", b"ok"), _file("core.dump", b"\0" * 1025), body="Queue is 4k <deep>"
    )

    page = response.content.decode()
    assert "core.dump is 1.0\xa0KB; each file may be at most 1.0\xa0KB." in page
    assert "your text is kept" in page
    assert "Queue is 4k &lt;deep&gt;</textarea>" in page  # the composer comes back with what was typed
    assert not ticket.events.filter(kind=EventKind.NOTE).exists()
    assert not Attachment.objects.exists()
    assert TicketDraft.objects.filter(user=tech, ticket=ticket, kind=DraftKind.NOTE).exists()


def test_files_over_the_per_message_limit_together_are_refused_though_each_fits(client, tech, ticket, settings):
    settings.TRIAGE_UPLOAD_MAX_FILE_BYTES = 2048
    settings.TRIAGE_MAIL_MAX_BYTES = 3000

    response = login(client, tech).post(
        reverse("ticket_reply", args=[ticket.pk]),
        {"body": "Logs attached.", "attachments": [_file("a.log", b"a" * 2000), _file("b.log", b"b" * 2000)]},
        **HTMX,
    )

    assert "one message&#x27;s files may be at most" in response.content.decode()
    assert not ticket.events.filter(kind=EventKind.REPLY).exists() and not Attachment.objects.exists()


def test_a_new_ticket_keeps_its_files_on_its_opening_entry(client, tech, customer):
    response = login(client, tech).post(
        reverse("ticket_new"),
        {
            "customer": customer.pk,
            "priority": 3,
            "subject": "Bounces from mx2",
            "description": "See the attached bounce.",
            "attachments": [_file("bounce.eml", b"From: x")],
        },
    )

    ticket = Ticket.objects.get(subject="Bounces from mx2")
    assert response.status_code == 302
    (attachment,) = Attachment.objects.all()
    assert attachment.event == ticket.events.get(kind=EventKind.CREATED) and attachment.ticket == ticket


def test_a_new_ticket_over_the_limit_is_not_filed_and_keeps_its_text(client, tech, customer, settings):
    settings.TRIAGE_UPLOAD_MAX_FILE_BYTES = 1024
    response = login(client, tech).post(
        reverse("ticket_new"),
        {
            "customer": customer.pk,
            "priority": 3,
            "subject": "Bounces from mx2",
            "description": "See the attached bounce.",
            "attachments": [_file("bounce.eml", b"x" * 2000)],
        },
    )

    page = response.content.decode()
    assert response.status_code == 200 and "each file may be at most" in page
    assert 'value="Bounces from mx2"' in page and "See the attached bounce.</textarea>" in page
    assert not Ticket.objects.exists() and not Attachment.objects.exists()


def test_a_replys_files_are_mailed_to_the_customer_with_it_and_a_notes_never(client, sink, tech, ticket):
    login(client, tech)
    _note(client, ticket, _file("internal.txt", b"tech eyes only"))
    client.post(
        reverse("ticket_reply", args=[ticket.pk]),
        {"body": "The queue log you asked for.", "attachments": [_file("queue.log", b"mx1 queue: 4012")]},
        **HTMX,
    )
    reply = ticket.events.get(kind=EventKind.REPLY)

    assert tasks.notify_event(reply.pk) == {"customer": "sent"}

    (sent,) = sink.messages
    files = {part.get_filename(): part.get_content() for part in sent.iter_attachments()}
    assert files == {"queue.log": "mx1 queue: 4012"}
    assert "The queue log you asked for." in sent.get_body(("plain",)).get_content()


def test_files_attached_in_the_desk_are_pruned_by_the_attachments_retention_by_their_entrys_age(
    client, tech, ticket, settings
):
    settings.TRIAGE_RETAIN_ATTACHMENT_DAYS = 60
    old = services.ticket_add_note(
        ticket=ticket, author=tech, body="Old note.", now=timezone.now() - timedelta(days=90)
    )
    upload_services.attachments_store(event=old, files=[_file("old.log", b"old")], by=tech)
    _note(login(client, tech), ticket, _file("new.log", b"new"), body="New note.")

    retention.prune(now=timezone.now())

    pruned = {a.filename: (bytes(a.content), a.content_pruned_at is not None) for a in Attachment.objects.all()}
    assert pruned == {"old.log": (b"", True), "new.log": (b"new", False)}


def test_without_an_app_that_keeps_files_the_desk_refuses_them_and_keeps_the_typed_text(
    client, tech, ticket, monkeypatch
):
    # The desk as it would run without mailgate's extension (triage.extensions): files have nowhere to go.
    monkeypatch.delitem(extensions._extensions, "mailgate")

    response = _note(login(client, tech), ticket, _file("maillog.txt", b"queue"), body="Queue is deep.")

    assert "This desk has no app that keeps files, so none can be attached." in response.content.decode()
    assert "Queue is deep.</textarea>" in response.content.decode()
    assert not ticket.events.filter(kind=EventKind.NOTE).exists() and not Attachment.objects.exists()
    # Without files the desk works as ever.
    _note(client, ticket, body="Queue drained.")
    assert ticket.events.get(kind=EventKind.NOTE).body == "Queue drained."
