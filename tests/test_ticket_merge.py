"""Merging duplicate tickets into one, and relating tickets: the services, the ticket page's
actions, the queue's bulk merge and the API (the browser walk is tests/test_browser_ticket_merge.py)."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from api.services import token_create
from diagnostics.knowledge import outcomes
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import RecipeOutcome
from diagnostics.services import run_request
from tests.conftest import login
from tests.diagnosing import diagnosed
from tests.test_knowledge_ranking import IDENT_SOCKETS, IDENT_STRACE
from triage import merging, selectors, services, workflow
from triage.models import Customer, EventKind, Server, SlaTier, Status, Ticket, TicketLink
from triage.queue import services as queue_services


def file(customer, subject: str, **kwargs) -> Ticket:
    return services.ticket_create(
        subject=subject, description=f"{subject}.", customer=customer, now=timezone.now(), **kwargs
    )


@pytest.fixture
def survivor(customer, tech):
    return file(customer, "Mail is slow for everyone", created_by=tech, tag_names=["mail"])


@pytest.fixture
def duplicate(customer, tech):
    second = Server.objects.create(customer=customer, name="mx2", address="192.0.2.11")
    dup = file(customer, "Outlook waits after Send", created_by=tech, servers=[second], tag_names=["outlook"])
    services.ticket_add_note(ticket=dup, author=tech, body="Seen on mx2 too.")
    return dup


@pytest.fixture
def contoso(roles):
    customer = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Standard"))
    customer.contacts.create(email="it@contoso.test")
    return customer


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


# --- The merge service ------------------------------------------------------------------------


def test_the_survivor_shows_both_timelines_each_entry_marked_with_its_ticket(survivor, duplicate, tech):
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)

    timeline = selectors.ticket_timeline(ticket=survivor)
    note = next(e for e in timeline if e.body == "Seen on mx2 too.")
    assert note.merged_from == duplicate.pk
    assert [e.merged_from for e in timeline if e.kind == EventKind.CREATED] == [None, duplicate.pk]
    own = [e for e in timeline if e.ticket_id == survivor.pk and e.kind == EventKind.MERGE]
    assert [e.body for e in own] == [f"Merged #{duplicate.pk} into this ticket."]
    assert [(e.created_at, e.pk) for e in timeline] == sorted((e.created_at, e.pk) for e in timeline)


def test_the_source_is_closed_points_at_the_survivor_and_says_so(survivor, duplicate, tech):
    versions = (survivor.version, fresh(duplicate).version)
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)

    source = fresh(duplicate)
    assert source.status == Status.CLOSED and source.closed_at is not None
    assert source.merged_into_id == survivor.pk
    assert source.events.filter(kind=EventKind.MERGE).get().body == f"Merged into #{survivor.pk}."
    status = source.events.filter(kind=EventKind.STATUS).get()
    assert (status.data["from"], status.data["to"], status.data["merged_into"]) == ("new", "closed", survivor.pk)
    assert fresh(survivor).version > versions[0] and source.version > versions[1]
    # its own timeline stays its own: the survivor's entries do not show on it
    assert {e.ticket_id for e in selectors.ticket_timeline(ticket=source)} == {duplicate.pk}


def test_servers_and_tags_are_unioned_onto_the_survivor(survivor, duplicate, server, tech):
    services.ticket_set_servers(ticket=survivor, servers=[server], by=tech)
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)
    assert sorted(survivor.servers.values_list("name", flat=True)) == ["mx1", "mx2"]
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["mail", "outlook"]
    assert survivor.events.filter(kind=EventKind.TAGS).latest("id").data == {
        "from": ["mail"],
        "to": ["mail", "outlook"],
    }


def test_the_merged_tickets_people_are_copied_on_the_survivor_which_keeps_its_requester(
    customer, survivor, duplicate, tech
):
    ada, bo, cy, di = (customer.contacts.create(email=f"{n}@northwind.test", name=n) for n in ("ada", "bo", "cy", "di"))
    services.ticket_set_people(ticket=survivor, requester=ada, ccs=[bo], by=tech)
    services.ticket_set_people(ticket=duplicate, requester=cy, ccs=[di, ada], by=tech)

    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)

    survivor = fresh(survivor)
    assert survivor.requester == ada
    assert sorted(survivor.ccs.values_list("email", flat=True)) == [
        "bo@northwind.test",
        "cy@northwind.test",
        "di@northwind.test",
    ]
    entry = survivor.events.filter(kind=EventKind.PEOPLE).latest("id")
    assert entry.data["ccs"] == {
        "from": ["bo@northwind.test"],
        "to": ["bo@northwind.test", "cy@northwind.test", "di@northwind.test"],
    }


def test_a_survivor_without_a_requester_takes_the_merged_tickets_and_copies_stay_bounded(
    customer, survivor, duplicate, tech
):
    people = [customer.contacts.create(email=f"p{n:02}@northwind.test") for n in range(services.MAX_CCS + 3)]
    services.ticket_set_people(ticket=survivor, requester=None, ccs=people[1:6], by=tech)
    services.ticket_set_people(ticket=duplicate, requester=people[0], ccs=people[6:], by=tech)

    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)

    survivor = fresh(survivor)
    assert survivor.requester == people[0]
    assert survivor.ccs.count() == services.MAX_CCS
    assert set(people[1:6]) <= set(survivor.ccs.all())  # its own copies come first
    entry = survivor.events.filter(kind=EventKind.PEOPLE).latest("id")
    assert entry.body.startswith(f"Not copied (at most {services.MAX_CCS} in copy): ")


def test_the_evidence_of_the_merged_ticket_ranks_fixes_on_the_survivor(kb, make_run, ticket, survivor, tech):
    diagnosed(make_run({"sockets": IDENT_SOCKETS, "strace": IDENT_STRACE}, on=ticket))
    assert ranked_fixes(ticket=survivor) == []
    recipe = outcomes.ticket_suggested_recipes(ticket=ticket).get(key="tcpserver-disable-ident")
    outcomes.outcome_record_rejected(ticket=ticket, recipe=recipe, by=tech, reason="Ident is already off.")

    merging.tickets_merge(sources=[ticket], into=survivor, by=tech)

    assert [f.recipe.key for f in ranked_fixes(ticket=survivor)][:1] == ["tcpserver-disable-ident"]
    assert list(survivor.collection_runs.values_list("ticket", flat=True)) == [survivor.pk]
    # what a tech may pick as "what fixed it", and the rejection already given, came along
    assert recipe in outcomes.ticket_suggested_recipes(ticket=survivor)
    assert RecipeOutcome.objects.get(ticket=survivor, recipe=recipe, kind=RecipeOutcome.REJECTED).note == (
        "Ident is already off."
    )


def test_several_tickets_merge_in_one_step(customer, survivor, duplicate, tech):
    third = file(customer, "Send button hangs")
    merging.tickets_merge(sources=[third, duplicate], into=survivor, by=tech)
    assert sorted(Ticket.objects.filter(merged_into=survivor).values_list("pk", flat=True)) == sorted(
        [duplicate.pk, third.pk]
    )
    assert [t.pk for t in selectors.ticket_merged_tickets(ticket=survivor)] == sorted([duplicate.pk, third.pk])


@pytest.mark.parametrize(
    "case", ["itself", "other customer", "into merged", "chain", "closed survivor", "already merged"]
)
def test_a_refused_merge_says_why_and_changes_nothing(case, customer, contoso, survivor, duplicate, tech):
    into, source = survivor, duplicate
    if case == "itself":
        source, expected = survivor, f"#{survivor.pk} cannot be merged into itself."
    elif case == "other customer":
        source = file(contoso, "Contoso mail")
        expected = (
            f"#{source.pk} is for Contoso and #{survivor.pk} for Northwind Hosting: "
            "only tickets of the same customer can be merged."
        )
    elif case == "into merged":
        other = file(customer, "Third")
        merging.tickets_merge(sources=[survivor], into=other, by=tech)
        expected = f"#{survivor.pk} was itself merged into #{other.pk}: merge into #{other.pk}."
    elif case == "chain":
        earlier = file(customer, "Earlier duplicate")
        merging.tickets_merge(sources=[earlier], into=duplicate, by=tech)
        expected = (
            f"Tickets were merged into #{duplicate.pk}, so it cannot be merged in turn: "
            f"merge #{survivor.pk} into #{duplicate.pk} instead."
        )
    elif case == "closed survivor":
        for status in (Status.RESOLVED, Status.CLOSED):
            services.ticket_change_status(ticket=survivor, status=status, by=tech)
        expected = f"#{survivor.pk} is closed: reopen it first, or merge into an open ticket."
    else:
        other = file(customer, "Third")
        merging.tickets_merge(sources=[duplicate], into=other, by=tech)
        expected = f"#{duplicate.pk} is already merged into #{other.pk}."
    into, source = fresh(into), fresh(source)
    before = {t.pk: (t.version, t.status, t.merged_into_id) for t in Ticket.objects.all()}

    with pytest.raises(ValidationError) as refused:
        merging.tickets_merge(sources=[source], into=into, by=tech)

    assert refused.value.messages == [expected]
    assert {t.pk: (t.version, t.status, t.merged_into_id) for t in Ticket.objects.all()} == before


def test_one_refused_source_refuses_the_whole_merge(contoso, survivor, duplicate, tech):
    foreign = file(contoso, "Contoso mail")
    with pytest.raises(ValidationError):
        merging.tickets_merge(sources=[duplicate, foreign], into=survivor, by=tech)
    assert fresh(duplicate).merged_into_id is None and fresh(duplicate).status == Status.NEW


def test_a_merged_ticket_takes_no_more_changes(survivor, duplicate, tech, server):
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)
    for change in (
        lambda: services.ticket_reply(ticket=duplicate, author=tech, body="Hello"),
        lambda: services.ticket_add_note(ticket=duplicate, author=tech, body="Hm"),
        lambda: services.ticket_change_status(ticket=duplicate, status=Status.TRIAGING, by=tech),
        lambda: services.ticket_set_tags(ticket=duplicate, tag_names=["x"], by=tech),
        lambda: run_request(
            ticket=fresh(duplicate),
            server=duplicate.servers.get(),
            by=tech,
            steps=[{"probe": "load", "params": {}}],
            name="Load",
            enqueue=False,
        ),
    ):
        with pytest.raises(ValidationError, match=f"merged into #{survivor.pk}"):
            change()


def test_the_normal_workflow_still_refuses_closing_a_new_ticket(survivor, tech):
    with pytest.raises(workflow.TransitionRefused):
        services.ticket_change_status(ticket=survivor, status=Status.CLOSED, by=tech)


def test_a_merge_reopens_nothing_and_a_closed_source_stays_closed(customer, survivor, tech):
    old = file(customer, "Old duplicate")
    for status in (Status.RESOLVED, Status.CLOSED):
        services.ticket_change_status(ticket=old, status=status, by=tech)
    merging.tickets_merge(sources=[old], into=survivor, by=tech)
    old = fresh(old)
    assert old.status == Status.CLOSED and old.merged_into_id == survivor.pk
    assert old.events.filter(kind=EventKind.STATUS).count() == 2  # no extra closing entry


# --- Links ------------------------------------------------------------------------------------


def test_a_link_is_one_row_both_ways_and_reads_from_either_side(survivor, contoso, tech):
    outage = file(contoso, "Upstream mail relay down")
    merging.ticket_link(ticket=outage, other=survivor, by=tech)
    assert TicketLink.objects.get().low_id == min(outage.pk, survivor.pk)
    assert [r.ticket.pk for r in selectors.ticket_related(user=tech, ticket=survivor)] == [outage.pk]
    assert [r.ticket.pk for r in selectors.ticket_related(user=tech, ticket=outage)] == [survivor.pk]
    assert survivor.events.get(kind=EventKind.LINK).data == {"other": outage.pk, "added": True}
    with pytest.raises(ValidationError, match="already related"):
        merging.ticket_link(ticket=survivor, other=outage, by=tech)
    with pytest.raises(ValidationError, match="cannot be related to itself"):
        merging.ticket_link(ticket=survivor, other=survivor, by=tech)

    merging.ticket_unlink(ticket=survivor, link_id=TicketLink.objects.get().pk, by=tech)
    assert not TicketLink.objects.exists()
    assert outage.events.filter(kind=EventKind.LINK).latest("id").data == {"other": survivor.pk, "added": False}


def test_a_merged_tickets_links_move_to_the_survivor(customer, contoso, survivor, duplicate, tech):
    outage = file(contoso, "Upstream mail relay down")
    merging.ticket_link(ticket=duplicate, other=outage, by=tech)
    merging.ticket_link(ticket=duplicate, other=survivor, by=tech)
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)
    assert [r.ticket.pk for r in selectors.ticket_related(user=tech, ticket=survivor)] == [outage.pk]


# --- The ticket page ------------------------------------------------------------------------


def test_merge_into_asks_to_confirm_with_both_subjects_then_lands_on_the_survivor(client, tech, survivor, duplicate):
    login(client, tech)
    url = reverse("ticket_merge", args=[duplicate.pk])
    asked = client.post(url, {"into": f"#{survivor.pk}"})
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Outlook waits after Send" in page and "Mail is slow for everyone" in page
    assert f"Merge #{duplicate.pk} into #{survivor.pk}" in page
    assert fresh(duplicate).merged_into_id is None  # nothing happens before the confirmation

    done = client.post(url, {"into": survivor.pk, "confirm": "1"})
    assert done.status_code == 302 and done["Location"] == reverse("ticket", args=[survivor.pk])
    assert fresh(duplicate).merged_into_id == survivor.pk
    page = client.get(done["Location"]).content.decode()
    assert "Seen on mx2 too." in page and f"on #{duplicate.pk}" in page


def test_the_merged_tickets_page_says_where_it_went_and_refuses_its_actions(client, tech, survivor, duplicate):
    page_version = fresh(duplicate).version
    merging.tickets_merge(sources=[duplicate], into=survivor, by=tech)
    login(client, tech)
    page = client.get(reverse("ticket", args=[duplicate.pk])).content.decode()
    assert 'id="merged-banner"' in page and f'href="/tickets/{survivor.pk}/">#{survivor.pk}</a>' in page
    assert 'id="reply-composer"' not in page and 'id="action-status"' not in page

    for name, data in (
        ("ticket_priority", {"priority": "1", "version": page_version}),  # stale
        ("ticket_priority", {"priority": "1", "version": fresh(duplicate).version}),  # not stale
        ("ticket_reply", {"body": "Hello"}),
        ("ticket_link", {"other": survivor.pk}),
        ("ticket_merge", {"into": survivor.pk, "confirm": "1"}),
    ):
        refused = client.post(reverse(name, args=[duplicate.pk]), data, HTTP_HX_REQUEST="true")
        assert refused.status_code == 409, name
        assert "Not done: this ticket takes no more changes." in refused.content.decode()
    assert fresh(duplicate).priority == duplicate.priority


def test_the_related_part_adds_and_removes_links_by_number(client, tech, survivor, contoso):
    outage = file(contoso, "Upstream relay down")
    login(client, tech)
    answer = client.post(reverse("ticket_link", args=[survivor.pk]), {"other": f"#{outage.pk}"}, HTTP_HX_REQUEST="true")
    body = answer.content.decode()
    assert answer.status_code == 200 and 'id="ticket-links"' in body and "Upstream relay down" in body
    assert 'id="reply-composer"' not in body  # the composer is never swapped
    missing = client.post(reverse("ticket_link", args=[survivor.pk]), {"other": "999999"}, HTTP_HX_REQUEST="true")
    assert "There is no ticket #999999." in missing.content.decode()
    client.post(reverse("ticket_unlink", args=[survivor.pk]), {"link": TicketLink.objects.get().pk})
    assert not TicketLink.objects.exists()


# --- The queue's bulk merge -------------------------------------------------------------------


def test_a_bulk_merge_merges_into_the_oldest_selected(client, tech, customer, survivor, duplicate):
    third = file(customer, "Send button hangs")
    login(client, tech)
    answer = client.post(
        reverse("queue_bulk"),
        {"tickets": [third.pk, duplicate.pk, survivor.pk], "action": "merge"},
        HTTP_HX_REQUEST="true",
    )
    assert f"Merged #{duplicate.pk}, #{third.pk} into #{survivor.pk}." in answer.content.decode()
    assert set(Ticket.objects.filter(merged_into=survivor).values_list("pk", flat=True)) == {duplicate.pk, third.pk}


def test_a_bulk_merge_of_mixed_customers_is_refused_whole(client, tech, contoso, survivor, duplicate):
    foreign = file(contoso, "Contoso mail")
    login(client, tech)
    answer = client.post(
        reverse("queue_bulk"),
        {"tickets": [survivor.pk, duplicate.pk, foreign.pk], "action": "merge"},
        HTTP_HX_REQUEST="true",
    )
    assert (
        "Only tickets of one customer can be merged; these are for Contoso, Northwind Hosting. Nothing was merged."
    ) in answer.content.decode()
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()


def test_a_bulk_merge_reports_a_ticket_it_could_not_merge_and_merges_the_rest(customer, survivor, duplicate, tech):
    chosen = file(customer, "The one to keep")
    merging.tickets_merge(sources=[file(customer, "Older dup")], into=duplicate, by=tech)
    outcome = queue_services.tickets_bulk_merge(tickets=[survivor, duplicate], into=chosen, by=tech)
    assert outcome.changed == [survivor.reference]
    assert outcome.refused == [
        (
            duplicate.reference,
            f"Tickets were merged into {duplicate.reference}, so it cannot "
            f"be merged in turn: merge {chosen.reference} into {duplicate.reference} instead.",
        )
    ]


# --- The API ------------------------------------------------------------------------------------


def test_the_api_merges_and_shows_merged_into_and_links(tech, survivor, duplicate, contoso):
    outage = file(contoso, "Upstream relay down")
    merging.ticket_link(ticket=survivor, other=outage, by=tech)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=tech, name='t')[1]}")
    merged = client.post(reverse("api:ticket_merge", args=[duplicate.pk]), {"into": survivor.pk}, format="json")
    assert merged.status_code == 200
    body = merged.json()
    assert body["id"] == survivor.pk and body["merged_tickets"] == [duplicate.pk]
    assert [(link["id"], link["subject"]) for link in body["links"]] == [(outage.pk, "Upstream relay down")]
    assert {e["ticket"] for e in body["timeline"]} == {survivor.pk, duplicate.pk}
    assert client.get(reverse("api:ticket", args=[duplicate.pk])).json()["merged_into"] == survivor.pk
    again = client.post(reverse("api:ticket_merge", args=[duplicate.pk]), {"into": survivor.pk}, format="json")
    assert again.status_code == 400 and f"already merged into #{survivor.pk}" in str(again.json())


# --- Two merges at once -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL; SQLite locks the file")
def test_two_merges_of_the_same_pair_at_once_never_deadlock_and_one_is_refused(customer, tech):
    first, second = file(customer, "First"), file(customer, "Second")
    start = threading.Barrier(2)
    results: dict[str, str] = {}

    def merge(name: str, source: Ticket, into: Ticket) -> None:
        try:
            start.wait()
            merging.tickets_merge(sources=[source], into=into, by=tech)
            results[name] = "merged"
        except ValidationError as exc:
            results[name] = " ".join(exc.messages)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=merge, args=("a", first, second)),
        threading.Thread(target=merge, args=("b", second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results.values())[1] == "merged", results  # no deadlock error: one won
    refusal = sorted(results.values())[0]
    assert "was itself merged into" in refusal or "already merged into" in refusal, results
    assert Ticket.objects.filter(merged_into__isnull=False).count() == 1
