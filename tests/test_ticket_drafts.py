"""Composer drafts: what a tech types in a ticket's reply or note box is saved as theirs while they type,
put back when they come back to the ticket, and dropped when they send it. Nobody else sees it."""

from __future__ import annotations

from html import unescape

import pytest
from django.db import IntegrityError
from django.urls import reverse

from tests.conftest import login, make_user
from triage import access, selectors, services
from triage.models import DraftKind, EventKind, TicketDraft

HTMX = {"HX-Request": "true"}


@pytest.fixture
def other_tech(roles):
    return make_user("tom", access.TECH)


def _textarea(page: str, name: str) -> str:
    """The text inside the textarea called ``name`` (the browser drops the newline after the tag)."""
    start = page.index(f'<textarea name="{name}"')
    opened = page.index(">", start) + 1
    return unescape(page[opened : page.index("</textarea>", opened)]).removeprefix("\n")


def test_a_draft_keeps_lf_line_endings_and_is_one_per_user_ticket_and_kind(ticket, tech):
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="Dear customer,\r\n\r\nwe see\rit")
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="Dear customer,\r\n\r\nwe see it.")
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.NOTE, body="strace next")
    drafts = dict(TicketDraft.objects.filter(user=tech, ticket=ticket).values_list("kind", "body"))
    assert drafts == {DraftKind.REPLY: "Dear customer,\n\nwe see it.", DraftKind.NOTE: "strace next"}
    with pytest.raises(IntegrityError):
        TicketDraft.objects.create(user=tech, ticket=ticket, kind=DraftKind.NOTE, body="twice")


def test_a_blank_draft_is_discarded(ticket, tech):
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="Half a thought")
    assert services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body=" \r\n ") is None
    assert not TicketDraft.objects.exists()


def test_an_autosave_of_text_already_sent_does_not_bring_the_draft_back(ticket, tech):
    composer = selectors.ticket_composers(user=tech, ticket=ticket)[DraftKind.REPLY]
    assert composer.last_sent == 0
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="On it.")
    sent = services.ticket_reply(ticket=ticket, author=tech, body="On it.")
    services.draft_discard(user=tech, ticket=ticket, kind=DraftKind.REPLY)
    # The autosave that was in flight when Send was pressed arrives last, from the composer rendered before.
    assert services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="On it.", last_sent=0) is None
    assert not TicketDraft.objects.exists()
    # The fresh composer knows the reply was sent, and saves the next one.
    composer = selectors.ticket_composers(user=tech, ticket=ticket)[DraftKind.REPLY]
    assert composer.last_sent == sent.pk
    assert services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="Next", last_sent=sent.pk)


def test_each_tech_sees_only_their_own_drafts(client, ticket, tech, other_tech):
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.NOTE, body="Tess's private <b>theory</b>")
    assert selectors.ticket_composers(user=other_tech, ticket=ticket)[DraftKind.NOTE].draft is None
    page = login(client, other_tech).get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert "theory" not in page and _textarea(page, "note-body") == ""


def test_coming_back_to_the_ticket_puts_the_drafts_back_escaped(client, ticket, tech):
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="\nLine one\n<script>alert(1)</script>")
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.NOTE, body="strace next")
    page = login(client, tech).get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert _textarea(page, "body") == "\nLine one\n<script>alert(1)</script>"
    assert "<script>alert(1)" not in page
    assert _textarea(page, "note-body") == "strace next"
    assert "Draft restored" in page


def test_the_composer_autosaves_through_htmx(client, ticket, tech):
    login(client, tech)
    response = client.post(
        reverse("ticket_draft_reply", args=[ticket.pk]), {"body": "We are\r\nlooking", "last_sent": "0"}, headers=HTMX
    )
    assert response.status_code == 200 and "Draft saved" in response.content.decode()
    assert "HX-Request" in response["Vary"]
    response = client.post(
        reverse("ticket_draft_note", args=[ticket.pk]), {"note-body": "mx1 queue is 4k"}, headers=HTMX
    )
    assert response.status_code == 200
    assert dict(TicketDraft.objects.values_list("kind", "body")) == {
        DraftKind.REPLY: "We are\nlooking",
        DraftKind.NOTE: "mx1 queue is 4k",
    }
    # Without JavaScript the same endpoint is a plain POST and a redirect back to the ticket.
    plain = client.post(reverse("ticket_draft_note", args=[ticket.pk]), {"note-body": "mx1 queue is 5k"})
    assert plain.status_code == 302 and plain["Location"] == reverse("ticket", args=[ticket.pk])


def test_a_draft_too_long_to_keep_says_so(client, ticket, tech):
    response = login(client, tech).post(
        reverse("ticket_draft_reply", args=[ticket.pk]), {"body": "x" * 100_001}, headers=HTMX
    )
    assert "Not saved as a draft" in response.content.decode()
    assert not TicketDraft.objects.exists()


def test_sending_drops_that_draft_and_keeps_the_other(client, ticket, tech):
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="On it.")
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.NOTE, body="strace next")
    response = login(client, tech).post(reverse("ticket_reply", args=[ticket.pk]), {"body": "On it."})
    assert response.status_code == 302
    assert ticket.events.filter(kind=EventKind.REPLY, body="On it.").exists()
    assert list(TicketDraft.objects.values_list("kind", flat=True)) == [DraftKind.NOTE]
    client.post(reverse("ticket_note", args=[ticket.pk]), {"note-body": "strace next"})
    assert not TicketDraft.objects.exists()


def test_a_refused_send_keeps_the_draft(client, ticket, tech):
    services.draft_save(user=tech, ticket=ticket, kind=DraftKind.REPLY, body="   draft   ")
    login(client, tech).post(reverse("ticket_reply", args=[ticket.pk]), {"body": "  "})
    assert TicketDraft.objects.filter(kind=DraftKind.REPLY).exists()


def test_a_manager_has_no_composer_and_cannot_save_a_draft(client, ticket, manager):
    login(client, manager)
    assert client.post(reverse("ticket_draft_reply", args=[ticket.pk]), {"body": "x"}).status_code == 403
    assert not TicketDraft.objects.exists()
