"""Bulk changes from the queue: one POST changes every selected ticket through the desk's own
services (timeline, version, webhooks), and a ticket the workflow refuses is reported by
reference while the others are changed. A ticket changed since the queue page was rendered (its
row's version) is left alone and reported with who changed it."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from tests.conftest import login
from triage import services
from triage.models import EventKind, Status, Ticket
from triage.queue import services as queue_services
from webhooks import services as webhooks
from webhooks.models import Delivery


@pytest.fixture
def three(customer, tech):
    """Two new tickets and one closed one (closed -> waiting is refused by the workflow)."""
    tickets = [
        services.ticket_create(
            subject=f"Problem {i}",
            description="details",
            customer=customer,
            priority=3,
            created_by=tech,
            now=timezone.now(),
        )
        for i in range(3)
    ]
    services.ticket_change_status(ticket=tickets[2], status=Status.RESOLVED, by=tech)
    services.ticket_change_status(ticket=tickets[2], status=Status.CLOSED, by=tech)
    return [Ticket.objects.get(pk=t.pk) for t in tickets]


def test_a_refused_transition_on_one_ticket_does_not_stop_the_others(three, tech):
    first, second, closed = three
    outcome = queue_services.tickets_bulk_change(
        tickets=three, by=tech, assignee=tech, status=Status.WAITING, add_tags=["vip"]
    )
    assert outcome.changed == [first.reference, second.reference]
    assert outcome.refused == [(closed.reference, "A ticket that is closed cannot become waiting on customer.")]
    for ticket in (first, second):
        fresh = Ticket.objects.get(pk=ticket.pk)
        assert (fresh.status, fresh.assignee, fresh.version) == (Status.WAITING, tech, ticket.version + 3)
        assert list(fresh.tags.values_list("name", flat=True)) == ["vip"]
        assert list(fresh.events.filter(version__gt=ticket.version).values_list("kind", "version")) == [
            (EventKind.STATUS, ticket.version + 1),
            (EventKind.ASSIGNMENT, ticket.version + 2),
            (EventKind.TAGS, ticket.version + 3),
        ]
    # The refused ticket keeps everything, its assignee and tags included: nothing half-applied.
    fresh = Ticket.objects.get(pk=closed.pk)
    assert (fresh.status, fresh.assignee, fresh.version) == (Status.CLOSED, None, closed.version)
    assert not fresh.tags.exists()


def test_tags_are_added_to_those_a_ticket_has(ticket, tech):
    queue_services.tickets_bulk_change(tickets=[ticket], by=tech, add_tags=["urgent"])
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["mail", "urgent"]


def test_a_ticket_already_so_is_left_alone_and_not_refused(three, tech):
    first, second, _ = three
    services.ticket_change_status(ticket=first, status=Status.TRIAGING, by=tech)
    version = Ticket.objects.get(pk=first.pk).version
    outcome = queue_services.tickets_bulk_change(tickets=[first, second], by=tech, status=Status.TRIAGING)
    assert (outcome.changed, outcome.unchanged, outcome.refused) == ([second.reference], [first.reference], [])
    assert Ticket.objects.get(pk=first.pk).version == version


def test_assigning_to_nobody_unassigns(three, tech):
    first, second, _ = three
    services.ticket_assign(ticket=first, assignee=tech, by=tech)
    outcome = queue_services.tickets_bulk_change(tickets=[first, second], by=tech, assignee=None)
    assert outcome.changed == [first.reference] and outcome.unchanged == [second.reference]
    assert Ticket.objects.get(pk=first.pk).assignee is None


def test_each_changed_ticket_sends_its_webhooks_and_the_refused_one_none(three, tech):
    endpoint, _ = webhooks.endpoint_create(
        name="Portal", url="https://portal.test/hook", event_types=["ticket.updated"]
    )
    queue_services.tickets_bulk_change(tickets=three, by=tech, assignee=tech, status=Status.WAITING)
    sent_for = sorted(d.payload["data"]["ticket"]["id"] for d in Delivery.objects.filter(endpoint=endpoint))
    assert sent_for == sorted([three[0].pk, three[0].pk, three[1].pk, three[1].pk])


def _post(client, tickets, *, htmx=False, **data):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(
        reverse("queue_bulk"), {"tickets": [t.pk for t in tickets], "query": "status=all", **data}, **headers
    )


def test_the_htmx_answer_lists_what_was_done_and_each_refusal_with_its_reason(client, three, tech):
    login(client, tech)
    response = _post(client, three, htmx=True, assignee="me", status=Status.WAITING)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Changed {three[0].reference}, {three[1].reference}." in html
    assert f"{three[2].reference} not changed: A ticket that is closed cannot become waiting on customer." in html
    assert 'id="saved-views" hx-swap-oob="true"' in html


def test_without_htmx_it_returns_to_the_same_queue_with_the_outcome_in_messages(client, three, tech):
    login(client, tech)
    response = _post(client, three, assignee="me", status=Status.WAITING)
    assert response.status_code == 302 and response["Location"] == reverse("queue") + "?status=all"
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == [
        f"Changed {three[0].reference}, {three[1].reference}.",
        f"{three[2].reference} not changed: A ticket that is closed cannot become waiting on customer.",
    ]


@pytest.mark.parametrize("who", ["manager", "outsider"])
def test_a_manager_or_an_outsider_cannot_bulk_change(client, three, request, who):
    login(client, request.getfixturevalue(who))
    response = _post(client, three[:2], assignee="none", status=Status.RESOLVED)
    assert response.status_code == 403
    assert list(Ticket.objects.filter(pk__in=[three[0].pk, three[1].pk]).values_list("status", flat=True)) == [
        Status.NEW,
        Status.NEW,
    ]


def test_only_techs_and_admins_can_be_assigned(client, three, tech, manager):
    login(client, tech)
    response = _post(client, three[:1], htmx=True, assignee=str(manager.pk))
    assert "Tickets can only be assigned to techs or admins." in response.content.decode()
    assert Ticket.objects.get(pk=three[0].pk).assignee is None


def test_a_change_must_be_chosen_and_tickets_selected(client, three, tech):
    login(client, tech)
    assert (
        "Choose what to change: the assignee, the status, the priority or tags to add."
        in _post(client, three[:1], htmx=True).content.decode()
    )
    assert "Select the tickets to change." in _post(client, [], htmx=True, status=Status.TRIAGING).content.decode()


def test_the_queue_offers_row_boxes_to_techs_only(client, three, tech, manager):
    login(client, tech)
    html = client.get(reverse("queue")).content.decode()
    assert f'name="tickets" value="{three[0].pk}"' in html and 'id="select-page"' in html
    client.logout()
    login(client, manager)
    html = client.get(reverse("queue")).content.decode()
    assert 'name="tickets"' not in html and 'id="select-page"' not in html


def test_a_refused_form_keeps_the_selection(client, three, tech):
    login(client, tech)
    html = _post(client, three[:2], htmx=True).content.decode()
    assert "Choose what to change" in html
    assert f'value="{three[0].pk}" aria-label="Select {three[0].reference}" checked' in html
    assert f'value="{three[2].pk}" aria-label="Select {three[2].reference}">' in html


def test_the_priority_is_set_through_its_service_with_a_new_deadline(three, tech):
    first, second, _ = three
    services.ticket_change_priority(ticket=second, priority=1, by=tech)
    before = Ticket.objects.get(pk=first.pk)
    outcome = queue_services.tickets_bulk_change(tickets=[first, second], by=tech, priority=1)
    assert (outcome.changed, outcome.unchanged) == ([first.reference], [second.reference])
    fresh = Ticket.objects.get(pk=first.pk)
    assert (fresh.priority, fresh.version) == (1, before.version + 1)
    assert fresh.resolution_due < before.resolution_due  # P1's target is shorter than P3's
    assert fresh.events.get(kind=EventKind.PRIORITY).data == {"from": 3, "to": 1}


def _versions(tickets) -> dict[str, int]:
    return {f"version-{t.pk}": Ticket.objects.get(pk=t.pk).version for t in tickets}


def test_a_ticket_changed_since_the_queue_was_loaded_is_skipped_and_the_others_applied(client, three, tech, admin_user):
    first, second, _ = three
    seen = _versions([first, second])  # the queue as the tech loaded it
    services.ticket_assign(ticket=second, assignee=admin_user, by=admin_user)
    login(client, tech)

    response = _post(client, [first, second], htmx=True, priority="1", assignee="me", **seen)

    html = response.content.decode()
    assert f"Changed {first.reference}." in html
    assert f"{second.reference} was changed by ada since you loaded the queue; not changed." in html
    fresh = Ticket.objects.get(pk=second.pk)
    assert (fresh.assignee, fresh.priority) == (admin_user, 3)  # ada's change stands, nothing of the tech's
    assert (Ticket.objects.get(pk=first.pk).assignee, Ticket.objects.get(pk=first.pk).priority) == (tech, 1)
    # The queue comes back with the versions as they are now, so the tech can apply it again knowingly.
    assert f'name="version-{second.pk}" value="{fresh.version}"' in html


def test_a_stale_ticket_is_reported_in_the_messages_without_htmx(client, three, tech, admin_user):
    first, _, _ = three
    seen = _versions([first])
    services.ticket_add_note(ticket=first, author=admin_user, body="on it")
    services.ticket_set_tags(ticket=first, tag_names=["x"], by=tech)
    login(client, tech)
    response = _post(client, [first], status=Status.TRIAGING, **seen)
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == [f"{first.reference} was changed by ada, tess since you loaded the queue; not changed."]
    assert Ticket.objects.get(pk=first.pk).status == Status.NEW


def test_the_queue_renders_each_rows_version(client, three, tech):
    services.ticket_add_note(ticket=three[0], author=tech, body="x")
    login(client, tech)
    html = client.get(reverse("queue"), {"status": "all"}).content.decode()
    for ticket in three:
        assert f'name="version-{ticket.pk}" value="{Ticket.objects.get(pk=ticket.pk).version}"' in html


def test_a_version_that_is_not_a_number_is_refused_and_changes_nothing(client, three, tech):
    login(client, tech)
    html = _post(client, three[:1], htmx=True, priority="1", **{f"version-{three[0].pk}": "abc"}).content.decode()
    assert f"The queue sent a version for {three[0].reference} that is not a number" in html
    assert Ticket.objects.get(pk=three[0].pk).priority == 3
