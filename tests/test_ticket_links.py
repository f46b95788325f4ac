"""'#123' in a reply or note links to that ticket; the rest of the text shows exactly as typed."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import reverse

from tests.conftest import login
from triage import services


def _render(text: str) -> str:
    return Template("{% load desk %}{{ text|with_ticket_links }}").render(Context({"text": text}))


def test_a_ticket_reference_becomes_a_link_and_the_line_breaks_stay():
    first, second = reverse("ticket", args=[398]), reverse("ticket", args=[12])
    assert _render("Same as #398.\nSee #12") == (
        f'Same as <a href="{first}">#398</a>.<br>See <a href="{second}">#12</a>'
    )


@pytest.mark.parametrize(
    "text",
    [
        "issue#12",  # inside a word
        "http://mx1.example/#12",  # a URL's fragment
        "##12",  # a heading-like run of hashes
        "&#39; and &#60;",  # character references typed as text
        "#0 and #",  # no ticket number
    ],
)
def test_what_is_not_a_reference_stays_text(text):
    assert "<a " not in _render(text)


def test_markup_in_the_text_is_escaped_around_the_links():
    rendered = _render('<script>alert(1)</script> see #7 "quoted"')
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered
    assert f'<a href="{reverse("ticket", args=[7])}">#7</a>' in rendered and "&quot;quoted&quot;" in rendered


def test_a_note_on_the_ticket_page_links_the_ticket_it_names(client, tech, ticket, customer):
    other = services.ticket_create(
        subject="Same symptom", description="Mail waits 30 s.", customer=customer, created_by=tech
    )
    services.ticket_add_note(ticket=ticket, author=tech, body=f"Duplicate of #{other.pk}?")
    page = login(client, tech).get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert f'Duplicate of <a href="/tickets/{other.pk}/">#{other.pk}</a>?' in page
