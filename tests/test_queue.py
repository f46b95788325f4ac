"""The ticket queue: filters, search, sorting and keyset pagination."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import login
from triage import selectors, services
from triage.models import Status, Ticket
from triage.pagination import BadCursor

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _fill(customer, tech, n, *, seed=1):
    """n tickets with ties in created_at and priority, and a mix of open and paused clocks."""
    rng = random.Random(seed)
    tickets = []
    for i in range(n):
        at = T0 + timedelta(minutes=rng.choice([0, 0, 5, 10, 15]) + i // 3)
        t = services.ticket_create(
            subject=f"Problem {i}",
            description="details",
            customer=customer,
            priority=rng.randint(1, 4),
            created_by=tech,
            now=at,
        )
        if rng.random() < 0.3:
            t = services.ticket_change_status(ticket=t, status=Status.WAITING, by=tech, now=at)
        tickets.append(t)
    return tickets


def _walk(user, filters, size):
    """All pages forwards, then all pages backwards from the last one."""
    forward, pages = [], []
    page = selectors.ticket_queue(user=user, filters=filters, size=size)
    while True:
        pages.append(page)
        forward.extend(t.pk for t in page.items)
        if not page.next_cursor:
            break
        filters.cursor = page.next_cursor
        page = selectors.ticket_queue(user=user, filters=filters, size=size)
    backward = list(pages[-1].items)
    page = pages[-1]
    while page.prev_cursor:
        filters.cursor = page.prev_cursor
        page = selectors.ticket_queue(user=user, filters=filters, size=size)
        backward = list(page.items) + backward
    return forward, [t.pk for t in backward]


def _expected(sort, tickets):
    rows = list(Ticket.objects.filter(pk__in=[t.pk for t in tickets]))
    far = datetime.max.replace(tzinfo=UTC)
    keys = {
        "due": lambda t: (t.next_due_at or far, t.pk),
        "newest": lambda t: (-t.created_at.timestamp(), -t.pk),
        "oldest": lambda t: (t.created_at, t.pk),
        "updated": lambda t: (-t.updated_at.timestamp(), -t.pk),
        "priority": lambda t: (t.priority, t.created_at, t.pk),
    }
    return [t.pk for t in sorted(rows, key=keys[sort])]


@pytest.mark.parametrize("sort", list(selectors.SORTS))
@pytest.mark.parametrize("size", [1, 4, 7])
def test_keyset_pages_cover_every_ticket_once_in_order_both_ways(customer, tech, sort, size):
    tickets = _fill(customer, tech, 23)
    forward, backward = _walk(tech, selectors.QueueFilters(status="all", sort=sort), size)
    assert forward == _expected(sort, tickets)
    assert backward == forward


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(0, 18),
    size=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    sort=st.sampled_from(list(selectors.SORTS)),
)
def test_keyset_pagination_holds_for_any_mix_of_tickets(customer, tech, n, size, seed, sort):
    Ticket.objects.all().delete()
    tickets = _fill(customer, tech, n, seed=seed)
    forward, backward = _walk(tech, selectors.QueueFilters(status="all", sort=sort), size)
    assert forward == _expected(sort, tickets)
    assert backward == forward


def test_a_tampered_cursor_is_refused_not_crashed(tech):
    with pytest.raises(BadCursor):
        selectors.ticket_queue(user=tech, filters=selectors.QueueFilters(cursor="n.bm90LWpzb24"), size=5)


def test_filters_narrow_the_queue(customer, server, tech, admin_user):
    mine = services.ticket_create(
        subject="Mail slow",
        description="30 s",
        customer=customer,
        priority=1,
        created_by=tech,
        assignee=tech,
        tag_names=["mail"],
    )
    other = services.ticket_create(
        subject="Disk full",
        description="/var",
        customer=customer,
        priority=3,
        created_by=tech,
        assignee=admin_user,
        tag_names=["disk"],
    )
    unassigned = services.ticket_create(
        subject="Load high", description="load 30", customer=customer, priority=3, created_by=tech
    )
    done = services.ticket_create(subject="Old", description="fixed", customer=customer, created_by=tech)
    services.ticket_change_status(ticket=done, status=Status.RESOLVED, by=tech)

    def ids(**filters):
        page = selectors.ticket_queue(user=tech, filters=selectors.QueueFilters(**filters), size=50)
        return {t.pk for t in page.items}

    assert ids() == {mine.pk, other.pk, unassigned.pk}
    assert ids(status="all") == {mine.pk, other.pk, unassigned.pk, done.pk}
    assert ids(status="resolved") == {done.pk}
    assert ids(assignee="me") == {mine.pk}
    assert ids(assignee="none") == {unassigned.pk}
    assert ids(assignee=str(admin_user.pk)) == {other.pk}
    assert ids(priority=1) == {mine.pk}
    assert ids(tag="disk") == {other.pk}
    assert ids(customer=customer.pk + 99) == set()


def test_sla_at_risk_shows_breached_and_nearly_due_tickets(customer, tech):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    # Gold P1: first response due 30 min after filing.
    breached = services.ticket_create(
        subject="a", description="a", customer=customer, priority=1, created_by=tech, now=now - timedelta(hours=1)
    )
    nearly = services.ticket_create(
        subject="b", description="b", customer=customer, priority=1, created_by=tech, now=now - timedelta(minutes=10)
    )
    services.ticket_create(subject="c", description="c", customer=customer, priority=4, created_by=tech, now=now)
    page = selectors.ticket_queue(user=tech, filters=selectors.QueueFilters(at_risk=True), size=50, now=now)
    assert {t.pk for t in page.items} == {breached.pk, nearly.pk}


def test_search_finds_words_in_subject_and_description_and_ticket_numbers(customer, tech):
    ident = services.ticket_create(
        subject="Mail delayed", description="tcpserver ident lookups to port 113", customer=customer, created_by=tech
    )
    services.ticket_create(subject="Disk full", description="inodes exhausted", customer=customer, created_by=tech)

    def found(text):
        page = selectors.ticket_queue(user=tech, filters=selectors.QueueFilters(q=text, status="all"), size=50)
        return [t.pk for t in page.items]

    assert found("tcpserver") == [ident.pk]
    assert found("delayed") == [ident.pk]
    assert found(f"#{ident.pk}") == [ident.pk]
    assert found("nothing-like-this") == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the full-text index exists on PostgreSQL only")
def test_search_uses_the_full_text_index_on_postgresql(customer, tech):
    services.ticket_create(subject="Mail delayed", description="ident", customer=customer, created_by=tech)
    qs = selectors.ticket_search(Ticket.objects.all(), text="ident")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        plan = qs.explain()
        cursor.execute("RESET enable_seqscan")
    assert "ticket_fulltext" in plan


QUEUE_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        name: st.text(max_size=30)
        for name in ("status", "priority", "assignee", "customer", "tag", "at_risk", "q", "sort", "cursor")
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=QUEUE_PARAMS)
def test_any_query_string_gets_a_page_never_a_server_error(client, tech, ticket, params):
    login(client, tech)
    params = {k: v.replace("\x00", "") for k, v in params.items()}
    response = client.get(reverse("queue"), params)
    assert response.status_code == 200


def test_an_invalid_filter_is_explained_above_the_queue(client, tech):
    login(client, tech)
    page = client.get(reverse("queue"), {"priority": "9"}).content.decode()
    assert "Select a valid choice" in page


def test_the_queue_swaps_only_its_results_for_htmx(client, tech, ticket):
    login(client, tech)
    response = client.get(reverse("queue"), {"q": "Mail"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<table" in body and "<html" not in body and ticket.subject in body


def test_output_and_user_text_are_escaped(client, tech, customer):
    login(client, tech)
    t = services.ticket_create(
        subject="<script>alert(1)</script>",
        description="<img src=x onerror=alert(1)>",
        customer=customer,
        created_by=tech,
    )
    for url in (reverse("queue"), reverse("ticket", args=[t.pk])):
        body = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_the_customer_filter_lists_every_customer_escaped_and_keeps_the_choice(client, tech, customer):
    from triage.models import Customer

    odd = Customer.objects.create(name="<b>Acme & Sons</b>", sla_tier=customer.sla_tier)
    login(client, tech)
    page = client.get(reverse("queue"), {"customer": odd.pk}).content.decode()
    picker = page[page.index('<select name="customer"') :]
    picker = picker[: picker.index("</select>")]
    assert f'<option value="{odd.pk}" selected>&lt;b&gt;Acme &amp; Sons&lt;/b&gt;</option>' in picker
    assert f'<option value="{customer.pk}">' in picker and picker.count(" selected") == 1
    page = client.get(reverse("queue")).content.decode()
    assert " selected>" not in page[page.index('<select name="customer"') :].split("</select>")[0]
