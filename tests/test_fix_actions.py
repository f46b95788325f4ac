"""On a ticket's suggested fixes a tech can reject one (it does not apply here, optionally why) or
resolve the ticket with one in a single step; both are recorded once and counted per recipe."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from diagnostics.knowledge import outcomes
from diagnostics.knowledge import services as knowledge
from diagnostics.models import RecipeOutcome
from tests.conftest import login
from tests.diagnosing import diagnosed
from triage import services, workflow
from triage.models import EventKind, Status

KERNEL_LOG = (
    "Nov  8 16:49:42 drjmailgw kernel: [3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)\n"
    "Nov  8 16:49:45 drjmailgw kernel: [3018175.401877] bnx2: eth0 NIC Copper Link is Down\n"
)


@pytest.fixture
def recipes(admin_user):
    knowledge.symptom_save(
        data={
            "key": "irq-no-handler",
            "title": "Interrupts with no handler",
            "signature": {"probe": "kernel_log", "regex": "No irq handler for vector"},
        },
        by=admin_user,
    )
    firmware, _ = knowledge.recipe_save(
        data={
            "key": "irq-firmware",
            "title": "Update the NIC firmware",
            "fixes": ["irq-no-handler"],
            "steps": ["Flash it."],
        },
        by=admin_user,
    )
    msi, _ = knowledge.recipe_save(
        data={"key": "irq-msi", "title": "Boot with <pci=nomsi>", "fixes": ["irq-no-handler"], "steps": ["Edit grub."]},
        by=admin_user,
    )
    return firmware, msi


@pytest.fixture
def suggested(recipes, make_run):
    diagnosed(make_run({"kernel_log": KERNEL_LOG}))
    return recipes


def _fix_events(ticket):
    return list(ticket.events.filter(kind=EventKind.FIX).values_list("body", flat=True))


def _card(page: str, title: str) -> str:
    start = page.index(f"<h3>{title}</h3>")
    return page[start : page.find('<li class="fix">', start) if '<li class="fix">' in page[start:] else None]


def test_rejecting_a_fix_is_recorded_once_with_its_reason_and_shown_on_the_card(client, tech, ticket, suggested):
    firmware, _ = suggested
    login(client, tech)
    url = reverse("ticket_reject_fix", args=[ticket.pk])
    assert client.post(url, {"recipe": firmware.pk, "reason": "Card is <b>onboard</b>, no firmware"}).status_code == 302
    assert client.post(url, {"recipe": firmware.pk, "reason": "again"}).status_code == 302

    rejected = RecipeOutcome.objects.get(ticket=ticket, recipe=firmware, kind=RecipeOutcome.REJECTED)
    assert rejected.by == tech and rejected.note == "Card is <b>onboard</b>, no firmware"
    assert _fix_events(ticket) == [
        "Rejected suggested fix: Update the NIC firmware. Reason: Card is <b>onboard</b>, no firmware"
    ]
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    card = _card(page, "Update the NIC firmware")
    assert "Rejected: does not apply" in card
    assert "Card is &lt;b&gt;onboard&lt;/b&gt;, no firmware" in card and "<b>onboard</b>" not in page
    assert ">Accept</button>" not in card and "Resolve with this fix" not in card
    # The other fix is still offered, and ranks above the rejected one.
    assert page.index("<h3>Boot with &lt;pci=nomsi&gt;</h3>") < page.index("<h3>Update the NIC firmware</h3>")
    assert "Resolve with this fix" in _card(page, "Boot with &lt;pci=nomsi&gt;")


def test_rejections_are_counted_per_recipe_and_shown_in_the_knowledge_base(
    client, tech, admin_user, ticket, customer, suggested, make_run
):
    firmware, msi = suggested
    other = services.ticket_create(subject="NIC again", description="d", customer=customer, created_by=tech)
    diagnosed(make_run({"kernel_log": KERNEL_LOG}, on=other))
    assert outcomes.recipe_outcome_counts()[firmware.pk]["rejected"] == 0
    outcomes.outcome_record_rejected(ticket=ticket, recipe=firmware, by=tech)
    outcomes.outcome_record_rejected(ticket=other, recipe=firmware, by=tech, reason="no")
    outcomes.outcome_record_rejected(ticket=other, recipe=firmware, by=tech, reason="twice")
    counts = outcomes.recipe_outcome_counts()
    assert counts[firmware.pk] == {"suggested": 2, "accepted": 0, "fixed": 0, "rejected": 2, "verified": 0}
    assert counts[msi.pk]["rejected"] == 0

    login(client, admin_user)
    page = client.get(reverse("kb")).content.decode()
    row = page[page.index('id="recipe-irq-firmware"') :]
    assert '<td class="num outcome-fixed">0</td><td class="num outcome-rejected">2</td>' in row


def test_a_fix_that_was_not_suggested_cannot_be_rejected(client, tech, ticket, recipes):
    firmware, _ = recipes
    login(client, tech)
    response = client.post(reverse("ticket_reject_fix", args=[ticket.pk]), {"recipe": firmware.pk})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    with pytest.raises(ValidationError, match="was not suggested"):
        outcomes.outcome_record_rejected(ticket=ticket, recipe=firmware, by=tech)
    assert not RecipeOutcome.objects.exists() and _fix_events(ticket) == []


def test_a_fix_that_fixed_the_ticket_cannot_be_rejected_and_accepting_withdraws_a_rejection(tech, ticket, suggested):
    firmware, msi = suggested
    outcomes.outcome_record_rejected(ticket=ticket, recipe=msi, by=tech, reason="not this one")
    outcomes.outcome_record_accepted(ticket=ticket, recipe=msi, by=tech)
    assert not RecipeOutcome.objects.filter(kind=RecipeOutcome.REJECTED).exists()
    outcomes.outcome_record_fixed(ticket=ticket, recipe=firmware, by=tech)
    with pytest.raises(ValidationError, match="fixed this ticket"):
        outcomes.outcome_record_rejected(ticket=ticket, recipe=firmware, by=tech)
    assert not RecipeOutcome.objects.filter(kind=RecipeOutcome.REJECTED).exists()


def test_resolve_with_this_fix_resolves_and_records_the_fix_in_one_step(client, tech, ticket, suggested):
    firmware, _ = suggested
    login(client, tech)
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert page.count("Resolve with this fix</button>") == 2
    response = client.post(reverse("ticket_resolve_with_fix", args=[ticket.pk]), {"recipe": firmware.pk})
    assert response.status_code == 302

    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED and ticket.resolved_at is not None
    kinds = set(RecipeOutcome.objects.filter(ticket=ticket, recipe=firmware).values_list("kind", flat=True))
    assert kinds == {RecipeOutcome.SUGGESTED, RecipeOutcome.ACCEPTED, RecipeOutcome.FIXED}
    status = ticket.events.get(kind=EventKind.STATUS)
    assert status.data["to"] == Status.RESOLVED and status.body == "Resolved with fix: Update the NIC firmware"
    assert _fix_events(ticket) == ["Fixed by: Update the NIC firmware"]
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert "Fixed this ticket" in page and "Resolve with this fix</button>" not in page


def test_resolving_with_a_fix_is_refused_with_a_reason_when_the_workflow_does_not_allow_it(
    client, tech, ticket, suggested
):
    firmware, msi = suggested
    outcomes.ticket_resolve_with_fix(ticket=ticket, recipe=firmware, by=tech)
    services.ticket_change_status(ticket=ticket, status=Status.CLOSED, by=tech)
    events_before = ticket.events.count()
    login(client, tech)
    response = client.post(reverse("ticket_resolve_with_fix", args=[ticket.pk]), {"recipe": msi.pk})
    assert response.status_code == 200
    assert "This ticket is closed: it cannot be resolved with a fix. Reopen it first" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED and ticket.events.count() == events_before
    assert list(RecipeOutcome.objects.filter(kind=RecipeOutcome.FIXED).values_list("recipe", flat=True)) == [
        firmware.pk
    ]
    with pytest.raises(workflow.TransitionRefused):
        outcomes.ticket_resolve_with_fix(ticket=ticket, recipe=msi, by=tech)


def test_resolving_with_a_fix_from_a_stale_page_changes_nothing(tech, ticket, suggested):
    firmware, _ = suggested
    seen = ticket.version
    services.ticket_add_note(ticket=ticket, author=tech, body="Someone else was here")
    with pytest.raises(services.TicketChanged):
        outcomes.ticket_resolve_with_fix(ticket=ticket, recipe=firmware, by=tech, expected_version=seen)
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and not RecipeOutcome.objects.filter(kind=RecipeOutcome.FIXED).exists()


def test_the_status_form_resolves_with_a_fix_through_the_same_service(client, tech, ticket, suggested):
    firmware, _ = suggested
    login(client, tech)
    response = client.post(
        reverse("ticket_status", args=[ticket.pk]), {"status": Status.RESOLVED, "note": "", "fixed_by": firmware.pk}
    )
    assert response.status_code == 302
    status = ticket.events.get(kind=EventKind.STATUS)
    assert status.body == "Resolved with fix: Update the NIC firmware"
    assert _fix_events(ticket) == ["Fixed by: Update the NIC firmware"]


def test_resolving_with_a_fix_that_was_not_suggested_changes_nothing(tech, ticket, recipes):
    firmware, _ = recipes
    with pytest.raises(ValidationError, match="was not suggested"):
        outcomes.ticket_resolve_with_fix(ticket=ticket, recipe=firmware, by=tech)
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and not RecipeOutcome.objects.exists()
    assert not ticket.events.filter(kind=EventKind.STATUS).exists()


def test_a_manager_can_neither_reject_nor_resolve_with_a_fix(client, manager, ticket, suggested):
    firmware, _ = suggested
    login(client, manager)
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert "Resolve with this fix" not in page and "Reject this fix" not in page
    assert client.post(reverse("ticket_reject_fix", args=[ticket.pk]), {"recipe": firmware.pk}).status_code == 403
    assert client.post(reverse("ticket_resolve_with_fix", args=[ticket.pk]), {"recipe": firmware.pk}).status_code == 403
    assert not RecipeOutcome.objects.exclude(kind=RecipeOutcome.SUGGESTED).exists()


def test_verdicts_on_a_closed_ticket_are_refused_until_it_is_reopened(client, tech, ticket, suggested):
    firmware, msi = suggested
    services.ticket_change_status(ticket=ticket, status=Status.RESOLVED, by=tech)
    services.ticket_change_status(ticket=ticket, status=Status.CLOSED, by=tech)
    with pytest.raises(ValidationError, match="closed: reopen it"):
        outcomes.outcome_record_accepted(ticket=ticket, recipe=firmware, by=tech)  # a copy from before the close
    with pytest.raises(ValidationError, match="closed: reopen it"):
        outcomes.outcome_record_rejected(ticket=ticket, recipe=msi, by=tech, reason="no")
    page = login(client, tech).post(reverse("ticket_accept_fix", args=[ticket.pk]), {"recipe": firmware.pk})
    assert "closed: reopen it" in page.content.decode()
    assert not RecipeOutcome.objects.filter(kind__in=[RecipeOutcome.ACCEPTED, RecipeOutcome.REJECTED]).exists()

    services.ticket_change_status(ticket=ticket, status=Status.TRIAGING, by=tech)  # reopened
    assert outcomes.outcome_record_accepted(ticket=ticket, recipe=firmware, by=tech)
