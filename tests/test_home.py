"""A tech's home: my open tickets by next deadline, SLA at risk (mine and unassigned), my recent
collections; each count comes from the same query as its list, so it moves with the data."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from composition import home
from diagnostics.models import CollectionRun, RunState
from tests.conftest import login, make_user
from triage import access, services
from triage.models import Status


def _count(page: str, section: str) -> int:
    match = re.search(rf'id="{section}">\s*<h2>[^<]*<span class="muted count">(\d+)</span>', page)
    assert match, section
    return int(match.group(1))


def _section(page: str, section: str) -> str:
    start = page.index(f'id="{section}"')
    return page[start : page.index("</section>", start)]


@pytest.fixture
def desk(customer, server, tech):
    """Tickets due at different times: two of mine, one unassigned, one of a colleague's."""
    colleague = make_user("cole", access.TECH)
    now = timezone.now()

    def ticket(subject, *, assignee, age_hours, priority=3):
        return services.ticket_create(
            subject=subject,
            description="d",
            customer=customer,
            priority=priority,
            servers=[server],
            created_by=tech,
            assignee=assignee,
            now=now - timedelta(hours=age_hours),
        )

    return {
        "mine_late": ticket("Mine, nearly due <script>", assignee=tech, age_hours=3.9, priority=3),  # Gold P3: 4 h
        "mine_later": ticket("Mine, later", assignee=tech, age_hours=0, priority=4),
        "nobody": ticket("Nobody's, overdue", assignee=None, age_hours=10, priority=3),
        "theirs": ticket("Colleague's, overdue", assignee=colleague, age_hours=10, priority=3),
        "colleague": colleague,
    }


def test_a_tech_sees_their_open_tickets_by_next_deadline_and_what_is_at_risk(client, tech, desk):
    login(client, tech)
    page = client.get(reverse("home")).content.decode()
    mine = _section(page, "my-tickets")
    assert _count(page, "my-tickets") == 2
    assert mine.index("Mine, nearly due") < mine.index("Mine, later")
    assert "Nobody" not in mine and "Colleague" not in mine
    at_risk = _section(page, "at-risk")
    assert _count(page, "at-risk") == 2
    assert at_risk.index("Nobody&#x27;s, overdue") < at_risk.index("Mine, nearly due")
    assert "Colleague" not in at_risk and "Mine, later" not in at_risk
    assert "&lt;script&gt;" in page and "<script>" not in mine


def test_the_counts_move_when_the_work_changes(client, tech, desk):
    login(client, tech)
    url = reverse("home")
    services.ticket_assign(ticket=desk["nobody"], assignee=tech, by=tech)
    page = client.get(url).content.decode()
    assert (_count(page, "my-tickets"), _count(page, "at-risk")) == (3, 2)

    services.ticket_change_status(ticket=desk["mine_late"], status=Status.RESOLVED, by=tech)
    page = client.get(url).content.decode()
    assert (_count(page, "my-tickets"), _count(page, "at-risk")) == (2, 1)
    assert "Mine, nearly due" not in page

    services.ticket_assign(ticket=desk["theirs"], assignee=None, by=tech)
    page = client.get(url).content.decode()
    assert _count(page, "at-risk") == 2 and "Colleague&#x27;s, overdue" in _section(page, "at-risk")

    # Waiting on the customer pauses the clock: still mine, no longer at risk.
    services.ticket_change_status(ticket=desk["nobody"], status=Status.WAITING, by=tech)
    page = client.get(url).content.decode()
    assert (_count(page, "my-tickets"), _count(page, "at-risk")) == (2, 1)


def test_counts_are_of_the_whole_query_while_the_list_is_cut(tech, customer):
    for n in range(home.LIST_LIMIT + 3):
        services.ticket_create(subject=f"t{n}", description="d", customer=customer, created_by=tech, assignee=tech)
    section = home.tech_home(user=tech)["mine"]
    assert section.count == home.LIST_LIMIT + 3 and len(section.items) == home.LIST_LIMIT and section.more == 3


def test_my_recent_collections_are_the_last_ten_i_ran_with_their_state(client, tech, ticket, server, desk):
    def run(by, state, minutes_ago):
        return CollectionRun.objects.create(
            ticket=ticket,
            server=server,
            playbook_name="Host health",
            requested_by=by,
            state=state,
            created_at=timezone.now() - timedelta(minutes=minutes_ago),
        )

    for n in range(11):
        run(tech, RunState.SUCCEEDED, 100 + n)
    failed = run(tech, RunState.FAILED, 5)
    run(desk["colleague"], RunState.RUNNING, 1)
    login(client, tech)
    page = client.get(reverse("home")).content.decode()
    runs = _section(page, "my-runs")
    assert _count(page, "my-runs") == 12
    assert runs.count("<tr>") == 1 + 10  # header + the last ten
    assert runs.index(f'href="{reverse("run", args=[failed.pk])}"') < runs.index("Succeeded")
    assert 'class="runstate state-failed"' in runs
    assert 'id="count-runs" href="#my-runs"><span class="big">0</span>' in page
    run(tech, RunState.RUNNING, 0)
    page = client.get(reverse("home")).content.decode()
    assert _count(page, "my-runs") == 13
    assert 'id="count-runs" href="#my-runs"><span class="big">1</span>' in page


def test_managers_still_go_to_their_overview_and_outsiders_are_refused(client, manager, outsider):
    login(client, manager)
    assert client.get(reverse("home"))["Location"] == reverse("overview")
    login(client, outsider)
    assert client.get(reverse("home")).status_code == 403


def test_every_count_on_the_overview_opens_the_queue_of_exactly_those_tickets(client, manager, customer, tech):
    for n, (status, priority) in enumerate(
        [(Status.NEW, 1), (Status.NEW, 3), (Status.TRIAGING, 3), (Status.WAITING, 2), (Status.RESOLVED, 1)]
    ):
        ticket = services.ticket_create(
            subject=f"t{n}", description="d", customer=customer, created_by=tech, priority=priority
        )
        for step in {
            Status.NEW: [],
            Status.TRIAGING: [Status.TRIAGING],
            Status.WAITING: [Status.WAITING],
            Status.RESOLVED: [Status.RESOLVED],
        }[status]:
            services.ticket_change_status(ticket=ticket, status=step, by=tech)
    page = unescape(login(client, manager).get(reverse("overview")).content.decode())
    counts = re.findall(r'<td class="num"><a href="(/tickets/\?[^"]+)">(\d+)</a></td>', page)
    assert len(counts) == 3 + 4  # the open statuses and the four priorities
    for url, shown in counts:
        listed = client.get(url).content.decode().count('<tr class="p')
        assert listed == int(shown), url
    assert dict((u.split("?")[1], int(n)) for u, n in counts) == {
        "status=new": 2,
        "status=triaging": 1,
        "status=waiting": 1,
        "status=open&priority=1": 1,
        "status=open&priority=2": 1,
        "status=open&priority=3": 2,
        "status=open&priority=4": 0,
    }
