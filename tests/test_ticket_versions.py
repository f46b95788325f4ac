"""A ticket's version: every change through the services moves it on by one and is recorded on its
timeline entry; a sidebar form posted from a page the ticket has moved on from is refused (409) with
what changed since and by whom, and can be re-applied on the ticket as it is now. The htmx answer to
an action replaces only the parts of the page it changed, never the composer."""

from __future__ import annotations

import pytest
from django.urls import reverse

from diagnostics.knowledge import outcomes
from tests.conftest import login, make_user
from tests.test_fix_actions import recipes, suggested  # noqa: F401 - fixtures: a fix suggested on the ticket
from triage import access, selectors, services
from triage.models import EventKind, Status, TicketEvent

HTMX = {"HX-Request": "true"}


@pytest.fixture
def other_tech(roles):
    return make_user("tom", access.TECH)


def _versions(ticket) -> list[tuple[str, int | None]]:
    return list(ticket.events.order_by("id").values_list("kind", "version"))


def test_every_change_moves_the_version_on_by_one_and_its_entry_records_it(ticket, tech, other_tech, server):
    assert ticket.version == 1
    services.ticket_reply(ticket=ticket, author=tech, body="Looking.")  # the first reply moves New to Triaging
    services.ticket_add_note(ticket=ticket, author=tech, body="strace next")
    services.ticket_assign(ticket=ticket, assignee=other_tech, by=tech)
    services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=tech)
    services.ticket_change_priority(ticket=ticket, priority=1, by=tech)
    services.ticket_set_tags(ticket=ticket, tag_names=["mail", "urgent"], by=tech)
    services.ticket_set_servers(ticket=ticket, servers=[], by=tech)
    ticket.refresh_from_db()
    assert ticket.version == 9
    assert _versions(ticket) == [
        (EventKind.CREATED, 1),
        (EventKind.REPLY, 2),
        (EventKind.STATUS, 3),
        (EventKind.NOTE, 4),
        (EventKind.ASSIGNMENT, 5),
        (EventKind.STATUS, 6),
        (EventKind.PRIORITY, 7),
        (EventKind.TAGS, 8),
        (EventKind.SERVERS, 9),
    ]


def test_a_change_to_what_already_is_moves_nothing(ticket, tech):
    services.ticket_change_priority(ticket=ticket, priority=ticket.priority, by=tech)
    services.ticket_set_tags(ticket=ticket, tag_names=["mail"], by=tech)
    ticket.refresh_from_db()
    assert ticket.version == 1 and ticket.events.count() == 1


def test_people_and_customers_move_the_version_the_machines_own_records_do_not(ticket, tech):
    services.ticket_record_event(ticket=ticket, kind=EventKind.COLLECTION, body="Collection succeeded.")
    services.ticket_record_event(ticket=ticket, kind=EventKind.SLA, body="Resolution target missed.")
    services.ticket_record_event(ticket=ticket, kind=EventKind.FIX, body="Verified: the symptom is gone.")
    ticket.refresh_from_db()
    assert ticket.version == 1
    services.ticket_record_event(ticket=ticket, kind=EventKind.REPLY, body="Still slow.", data={"via": "email"})
    services.ticket_record_event(ticket=ticket, kind=EventKind.COLLECTION, actor=tech, body="Collection requested.")
    ticket.refresh_from_db()
    assert ticket.version == 3
    assert _versions(ticket)[1:] == [
        (EventKind.COLLECTION, None),
        (EventKind.SLA, None),
        (EventKind.FIX, None),
        (EventKind.REPLY, 2),
        (EventKind.COLLECTION, 3),
    ]


def test_a_fix_verdict_moves_the_version(ticket, tech, suggested):  # noqa: F811
    firmware, msi = suggested
    ticket.refresh_from_db()
    before = ticket.version
    outcomes.outcome_record_accepted(ticket=ticket, recipe=firmware, by=tech)
    outcomes.outcome_record_rejected(ticket=ticket, recipe=msi, by=tech, reason="no MSI here")
    ticket.refresh_from_db()
    assert ticket.version == before + 2


def test_a_change_from_a_stale_version_is_refused_and_changes_nothing(ticket, tech, other_tech):
    seen = ticket.version
    services.ticket_set_tags(ticket=ticket, tag_names=["mail", "urgent"], by=tech, expected_version=seen)
    with pytest.raises(services.TicketChanged) as refused:
        services.ticket_assign(ticket=ticket, assignee=other_tech, by=other_tech, expected_version=seen)
    assert (refused.value.seen, refused.value.current) == (1, 2)
    ticket.refresh_from_db()
    assert ticket.assignee is None and ticket.version == 2
    assert not ticket.events.filter(kind=EventKind.ASSIGNMENT).exists()
    for change in (
        lambda: services.ticket_change_status(ticket=ticket, status=Status.TRIAGING, by=tech, expected_version=seen),
        lambda: services.ticket_change_priority(ticket=ticket, priority=4, by=tech, expected_version=seen),
        lambda: services.ticket_set_tags(ticket=ticket, tag_names=[], by=tech, expected_version=seen),
        lambda: services.ticket_set_servers(ticket=ticket, servers=[], by=tech, expected_version=seen),
    ):
        with pytest.raises(services.TicketChanged):
            change()
    ticket.refresh_from_db()
    assert ticket.version == 2 and ticket.status == Status.NEW and ticket.priority == 2


def test_the_changes_since_a_version_say_what_and_who(ticket, tech, other_tech):
    services.ticket_set_tags(ticket=ticket, tag_names=["urgent"], by=tech)
    services.ticket_change_priority(ticket=ticket, priority=1, by=other_tech)
    changes = selectors.ticket_changes_since(ticket=ticket, version=1)
    assert [(e.kind, e.actor, e.data["to"]) for e in changes] == [
        (EventKind.TAGS, tech, ["urgent"]),
        (EventKind.PRIORITY, other_tech, 1),
    ]
    assert selectors.ticket_changes_since(ticket=ticket, version=3) == []


# --- Through the page -------------------------------------------------------------


def test_a_second_tab_is_told_what_changed_and_by_whom_and_can_re_apply(client, ticket, tech, other_tech):
    seen = ticket.version
    login(client, tech).post(
        reverse("ticket_tags", args=[ticket.pk]), {"tags": "mail, urgent", "version": seen}, headers=HTMX
    )

    login(client, other_tech)
    response = client.post(
        reverse("ticket_assign", args=[ticket.pk]), {"assignee": other_tech.pk, "version": seen}, headers=HTMX
    )
    assert response.status_code == 409
    page = response.content.decode()
    conflict = page[page.index('id="action-assign"') :]
    conflict = conflict[: conflict.index("</form>")]
    assert "Not saved: this ticket changed after you loaded it." in conflict
    assert "Tags changed" in conflict and "by tess" in conflict and "mail → mail, urgent" in conflict
    assert "Re-apply my change" in conflict
    assert f'name="version" value="{seen + 1}"' in conflict  # re-applying is against the ticket as it is now
    assert f'<option value="{other_tech.pk}" selected>' in conflict  # the change the tech asked for, kept
    ticket.refresh_from_db()
    assert ticket.assignee is None and ticket.version == seen + 1

    again = client.post(
        reverse("ticket_assign", args=[ticket.pk]), {"assignee": other_tech.pk, "version": seen + 1}, headers=HTMX
    )
    assert again.status_code == 200 and "Not saved" not in again.content.decode()
    ticket.refresh_from_db()
    assert ticket.assignee == other_tech
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["mail", "urgent"]  # the first tab's change stands


def test_a_stale_plain_post_gets_the_whole_page_with_the_conflict(client, ticket, tech):
    services.ticket_change_priority(ticket=ticket, priority=1, by=tech)
    response = login(client, tech).post(reverse("ticket_tags", args=[ticket.pk]), {"tags": "web", "version": 1})
    assert response.status_code == 409
    page = response.content.decode()
    assert "<html" in page and "Priority change" in page and "P2 → P1" in page
    assert list(ticket.tags.values_list("name", flat=True)) == ["mail"]


def test_a_stale_form_with_an_error_is_still_told_it_is_stale(client, ticket, tech):
    services.ticket_change_priority(ticket=ticket, priority=1, by=tech)
    response = login(client, tech).post(
        reverse("ticket_tags", args=[ticket.pk]), {"tags": "no;way", "version": 1}, headers=HTMX
    )
    assert response.status_code == 409
    page = response.content.decode()
    assert "Not saved: this ticket changed" in page and "Not a valid tag" in page


def test_a_form_without_a_version_is_applied_as_before(client, ticket, tech):
    # Scripts and older pages post no version: nothing to compare, the change is made.
    services.ticket_change_priority(ticket=ticket, priority=1, by=tech)
    response = login(client, tech).post(reverse("ticket_tags", args=[ticket.pk]), {"tags": "web"})
    assert response.status_code == 302
    assert list(ticket.tags.values_list("name", flat=True)) == ["web"]


def test_a_sidebar_action_answers_htmx_with_its_own_parts_and_never_the_composer(client, ticket, tech):
    response = login(client, tech).post(
        reverse("ticket_priority", args=[ticket.pk]), {"priority": 1, "version": ticket.version}, headers=HTMX
    )
    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    page = response.content.decode()
    for part in (
        'id="ticket-head" hx-swap-oob="true"',
        'id="timeline" hx-swap-oob="true"',
        'id="ticket-facts" hx-swap-oob="true"',
        'id="action-priority"',
    ):
        assert part in page, part
    assert "<textarea" not in page and "composer" not in page and 'id="ticket"' not in page
    assert 'id="action-tags"' not in page  # what the tech may be typing in another sidebar form stays
    # Every other sidebar form is brought to the new version, in place.
    assert (
        '<input type="hidden" name="version" value="2" class="ticket-version" '
        'hx-swap-oob="outerHTML:input.ticket-version">'
    ) in page


def test_a_status_change_also_brings_the_next_statuses_and_the_fixes(client, ticket, tech):
    response = login(client, tech).post(
        reverse("ticket_status", args=[ticket.pk]), {"status": Status.TRIAGING, "note": "", "version": 1}, headers=HTMX
    )
    page = response.content.decode()
    assert 'id="action-status"' in page and 'id="fixes" hx-swap-oob="true"' in page
    assert "<textarea" not in page


def test_a_sent_reply_brings_back_its_own_composer_only(client, ticket, tech):
    response = login(client, tech).post(reverse("ticket_reply", args=[ticket.pk]), {"body": "On it."}, headers=HTMX)
    page = response.content.decode()
    assert 'id="reply-composer"' in page and 'id="note-composer"' not in page
    assert TicketEvent.objects.filter(ticket=ticket, kind=EventKind.REPLY, body="On it.").exists()


def test_the_ticket_page_varies_on_htmx(client, ticket, tech):
    response = login(client, tech).get(reverse("ticket", args=[ticket.pk]))
    assert "HX-Request" in response["Vary"]
    assert 'name="version" value="1" class="ticket-version"' in response.content.decode()


def test_a_fix_verdict_answers_with_the_fixes_and_collections_and_never_the_composer(client, ticket, tech, suggested):  # noqa: F811
    firmware, _ = suggested
    response = login(client, tech).post(
        reverse("ticket_accept_fix", args=[ticket.pk]), {"recipe": firmware.pk}, headers=HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200 and "Accepted: being applied" in page
    assert 'id="fixes" hx-swap-oob="true"' in page and 'id="ticket-runs" hx-swap-oob="true"' in page
    assert "<textarea" not in page and 'id="action-assign"' not in page
    ticket.refresh_from_db()
    assert f'name="version" value="{ticket.version}" class="ticket-version" hx-swap-oob' in page
