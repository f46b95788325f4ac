"""Collect proposes the playbook that fits the ticket's words and what similar resolved tickets needed."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnostics.knowledge import outcomes
from diagnostics.knowledge.proposal import playbook_proposal
from diagnostics.models import FixRecipe, Playbook
from diagnostics.services.playbooks import playbooks_ensure
from tests.conftest import login
from tests.diagnosing import diagnosed
from tests.genlab import bnx2, close_wait, ident, resolvers, tmp_noexec, upstream
from tests.test_fixes_view import KERNEL_LOG
from triage import services


@pytest.fixture
def books(kb):
    return {p.name: p for p in playbooks_ensure()}


def ticket_saying(customer, tech, subject: str, description: str = ""):
    return services.ticket_create(
        subject=subject,
        description=description or subject,
        customer=customer,
        priority=3,
        servers=[],
        tag_names=[],
        created_by=tech,
        now=timezone.now(),
    )


@pytest.mark.parametrize(
    ("complaint", "expected"),
    [
        ("Mail sits 30 seconds before sending", "Mail is slow to send"),
        ("Outlook users wait half a minute after pressing Send", "Mail is slow to send"),
        ("SSH logins take 20 seconds before the password prompt", "Slow logins"),
        ("The inner network interface stops answering ping every few days", "Network interface down"),
        ("Thousands of messages stuck in the mail queue", "Mail queue growing"),
    ],
)
def test_the_words_of_the_complaint_propose_the_playbook(books, customer, tech, complaint, expected):
    proposal = playbook_proposal(ticket=ticket_saying(customer, tech, complaint))
    assert proposal is not None and proposal.playbook.name == expected, proposal and proposal.reasons
    assert proposal.reasons


def test_a_complaint_with_nothing_to_go_on_proposes_nothing(books, customer, tech):
    assert playbook_proposal(ticket=ticket_saying(customer, tech, "Hello", "Thanks for the update.")) is None


def test_similar_resolved_tickets_vote_for_the_playbook_that_diagnosed_them(books, customer, tech, make_run):
    # Words no playbook or symptom title uses; a past ticket like it was diagnosed by "Network interface down".
    past = ticket_saying(customer, tech, "Frobnicator appliance vanishes nightly", "Frobnicator appliance vanishes")
    run = make_run({"kernel_log": KERNEL_LOG}, on=past)
    run.playbook = books["Network interface down"]
    run.save(update_fields=["playbook"])
    diagnosed(run)
    recipe = FixRecipe.objects.get(key="bnx2-disable-msi")
    outcomes.outcome_record_fixed(ticket=past, recipe=recipe, by=tech)

    now = ticket_saying(customer, tech, "Frobnicator appliance vanishes again", "The frobnicator appliance vanishes")
    proposal = playbook_proposal(ticket=now)
    assert proposal.playbook.name == "Network interface down"
    assert f"similar ticket #{past.pk} was diagnosed with it" in proposal.reasons
    unlike = ticket_saying(customer, tech, "Invoice question about last month", "Billing")
    assert playbook_proposal(ticket=unlike) is None


def test_the_ticket_page_preselects_the_proposal_and_says_why(client, books, customer, tech):
    ticket = ticket_saying(customer, tech, "Mail sits 30 seconds before sending")
    page = login(client, tech).get(reverse("ticket", args=[ticket.pk])).content.decode()
    chosen = Playbook.objects.get(name="Mail is slow to send").pk
    assert f'<option value="{chosen}" selected>' in page
    assert "Proposed: <strong>Mail is slow to send</strong>, because" in page


# The playbooks under which the lab (tests/test_generalisation_lab.py, bench/diagnosis.py) puts each war
# story's right fix first: the proposal must be one of them.
@pytest.mark.parametrize(
    ("subject", "acceptable"),
    [
        (bnx2.SUBJECT, {"Network interface down"}),
        (close_wait.SUBJECT, {"Connections piling up"}),
        (ident.SUBJECT, {"Mail is slow to send"}),
        (resolvers.SUBJECT, {"Slow logins"}),
        (tmp_noexec.SUBJECT, {"Mail scanner broken"}),
        (upstream.SUBJECT, {"Mail queue growing", "Connections piling up"}),
    ],
)
def test_the_generalisation_labs_complaints_propose_a_playbook_that_finds_their_fix_first(
    books, customer, tech, subject, acceptable
):
    proposal = playbook_proposal(ticket=ticket_saying(customer, tech, subject))
    assert proposal is not None and proposal.playbook.name in acceptable, proposal and proposal.reasons
