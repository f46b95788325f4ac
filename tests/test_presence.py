"""Who else is on a ticket: viewing from the page's poll, replying or writing a note from the draft
autosaves; a report older than presence.FRESH is gone."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from tests.conftest import login, make_user
from triage import access, presence, services


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


@pytest.fixture
def ada(roles):
    return make_user("ada", access.TECH)


def test_others_viewing_or_typing_are_shown_and_the_user_is_not(client, ticket, tech, ada):
    login(client, ada).post(
        reverse("ticket_draft_reply", args=[ticket.pk]), {"body": "Hello", "last_sent": "0"}, HTTP_HX_REQUEST="true"
    )
    page = login(client, tech).get(reverse("ticket_presence", args=[ticket.pk]), HTTP_HX_REQUEST="true")
    assert "<strong>ada</strong> is replying" in page.content.decode()
    assert "<strong>" + tech.get_username() not in page.content.decode()

    # Ada's page polls while her reply is fresh: she is still replying, not just viewing.
    login(client, ada).get(reverse("ticket_presence", args=[ticket.pk]))
    assert [(p.name, p.doing) for p in presence.presence_others(ticket_id=ticket.pk, user=tech)] == [
        ("ada", presence.REPLYING)
    ]
    # The tech shows up for Ada as viewing.
    assert [(p.name, p.doing) for p in presence.presence_others(ticket_id=ticket.pk, user=ada)] == [
        (tech.get_username(), presence.VIEWING)
    ]


def test_a_report_older_than_fresh_is_gone(ticket, tech, ada):
    presence.presence_report(ticket_id=ticket.pk, user=ada, doing=presence.NOTING, now=1000.0)
    assert presence.presence_others(ticket_id=ticket.pk, user=tech, now=1000.0 + presence.FRESH - 1)
    assert presence.presence_others(ticket_id=ticket.pk, user=tech, now=1000.0 + presence.FRESH) == []
    # Once typing is stale, a poll reports viewing again.
    presence.presence_report(ticket_id=ticket.pk, user=ada, doing=presence.VIEWING, now=1000.0 + presence.FRESH)
    assert [p.doing for p in presence.presence_others(ticket_id=ticket.pk, user=tech, now=1000.0 + presence.FRESH)] == [
        presence.VIEWING
    ]


def test_names_are_escaped_and_another_tickets_presence_is_separate(client, ticket, tech, customer):
    mallory = make_user("mallory", access.TECH)
    mallory.first_name = "<img src=x onerror=alert(1)>"
    mallory.save()
    presence.presence_report(ticket_id=ticket.pk, user=mallory, doing=presence.VIEWING)
    page = login(client, tech).get(reverse("ticket_presence", args=[ticket.pk])).content.decode()
    assert "<img" not in page and "&lt;img" in page
    other = services.ticket_create(subject="Other", description="d", customer=customer, created_by=tech)
    assert presence.presence_others(ticket_id=other.pk, user=tech) == []
