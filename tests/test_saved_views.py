"""Saved views: a user's named queue filters, listed beside the queue with a live count."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from tests.conftest import login, make_user
from triage import access, services
from triage.models import SavedView, Status
from triage.queue import selectors as queue_selectors
from triage.queue.services import SAVED_VIEW_LIMIT


@pytest.fixture
def tickets(customer, tech):
    made = [
        services.ticket_create(
            subject=f"Problem {i}",
            description="details",
            customer=customer,
            priority=1 if i < 2 else 3,
            created_by=tech,
            now=timezone.now(),
        )
        for i in range(4)
    ]
    services.ticket_assign(ticket=made[0], assignee=tech, by=tech)
    services.ticket_change_status(ticket=made[3], status=Status.RESOLVED, by=tech)
    return made


def _save(client, name, query):
    return client.post(reverse("saved_view_save"), {"name": name, "query": query})


def test_a_saved_view_counts_the_tickets_its_filters_match_now(client, tickets, tech):
    login(client, tech)
    _save(client, "P1s", "priority=1")
    _save(client, "Mine", "assignee=me&sort=newest")
    _save(client, "Everything", "status=all")
    counts = {row.view.name: row.count for row in queue_selectors.saved_views_with_counts(user=tech)}
    assert counts == {"P1s": 2, "Mine": 1, "Everything": 4}
    services.ticket_assign(ticket=tickets[1], assignee=tech, by=tech)
    assert [row.count for row in queue_selectors.saved_views_with_counts(user=tech) if row.view.name == "Mine"] == [2]


def test_the_queue_lists_only_the_users_own_views(client, tickets, tech):
    other = make_user("tom", access.TECH)
    SavedView.objects.create(user=other, name="Tom's secret list", query="priority=1")
    login(client, tech)
    _save(client, "P1s", "priority=1")
    html = client.get(reverse("queue")).content.decode()
    assert 'href="/tickets/?priority=1">P1s</a>' in html
    assert "Tom&#x27;s secret list" not in html and "Tom's secret list" not in html
    assert [row.view.name for row in queue_selectors.saved_views_with_counts(user=tech)] == ["P1s"]


def test_the_query_is_validated_and_stored_without_the_page_cursor(client, tech):
    login(client, tech)
    _save(client, "Mine", "?assignee=me&cursor=abc&q=&bogus=1")
    assert SavedView.objects.get(user=tech).query == "assignee=me"
    response = _save(client, "Broken", "priority=9")
    assert not SavedView.objects.filter(name="Broken").exists()
    assert any("View not saved" in str(m) for m in get_messages(response.wsgi_request))


def test_saving_under_a_name_again_replaces_that_view(client, tech):
    login(client, tech)
    _save(client, "Mine", "assignee=me")
    _save(client, "Mine", "assignee=me&priority=1")
    assert list(SavedView.objects.filter(user=tech).values_list("name", "query")) == [
        ("Mine", "assignee=me&priority=1")
    ]


def test_a_user_deletes_their_own_view_and_not_anothers(client, tech):
    other = make_user("tom", access.TECH)
    theirs = SavedView.objects.create(user=other, name="Tom's", query="")
    mine = SavedView.objects.create(user=tech, name="Mine", query="assignee=me")
    login(client, tech)
    client.post(reverse("saved_view_delete", args=[theirs.pk]))
    client.post(reverse("saved_view_delete", args=[mine.pk]))
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Tom's"]


def test_a_view_whose_filters_no_longer_validate_shows_no_count(tech, customer):
    SavedView.objects.create(user=tech, name="Gone customer", query=f"customer={customer.pk + 99}")
    assert [row.count for row in queue_selectors.saved_views_with_counts(user=tech)] == [None]


def test_a_user_keeps_at_most_the_limit_of_views_and_may_still_overwrite_one(client, tech):
    SavedView.objects.bulk_create(SavedView(user=tech, name=f"View {i}", query="") for i in range(SAVED_VIEW_LIMIT))
    login(client, tech)
    response = _save(client, "One more", "priority=1")
    assert not SavedView.objects.filter(name="One more").exists()
    assert any(f"At most {SAVED_VIEW_LIMIT} saved views" in str(m) for m in get_messages(response.wsgi_request))
    _save(client, "View 0", "priority=1")
    assert SavedView.objects.get(user=tech, name="View 0").query == "priority=1"
