"""Macros and "Send and set …": placeholders filled without a template engine, actions through the
ticket services (the workflow's refusals reported), drafts kept, and the first reply moving a new ticket."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse

from diagnostics.knowledge import outcomes
from diagnostics.models import FixRecipe
from mailgate.models import InboundMessage, Outcome
from tests.conftest import login, make_user
from tests.diagnosing import diagnosed
from tests.test_fixes_view import KERNEL_LOG
from triage import access, services, users, workflow
from triage.macros import placeholders
from triage.macros import services as macros
from triage.models import DraftKind, EventKind, Macro, Status, TicketDraft

VALUES = {"customer": "Northwind Hosting", "ticket": "#7", "requester": None, "top_fix": None, "me": "Tess"}


# --- Placeholders ---------------------------------------------------------------


def test_known_placeholders_are_filled_and_spaces_inside_the_braces_are_allowed():
    filled = placeholders.fill("Hi {{customer}}, about {{ ticket }}. {{me}}", VALUES)
    assert filled.text == "Hi Northwind Hosting, about #7. Tess"
    assert filled.unfilled == []


def test_unknown_placeholders_and_template_syntax_stay_as_typed():
    body = "{{custmer}} {{ settings.SECRET_KEY }} {% debug %} {{customer|upper}} {{ticket}}"
    filled = placeholders.fill(body, VALUES)
    assert filled.text == "{{custmer}} {{ settings.SECRET_KEY }} {% debug %} {{customer|upper}} #7"
    assert placeholders.unknown_in(body) == ["{{custmer}}", "{{ settings.SECRET_KEY }}", "{{customer|upper}}"]


def test_a_value_that_looks_like_a_placeholder_is_not_filled_again():
    filled = placeholders.fill("Dear {{customer}}", {**VALUES, "customer": "{{me}} {% now 'Y' %}"})
    assert filled.text == "Dear {{me}} {% now 'Y' %}"


def test_a_known_placeholder_without_a_value_stays_visible_and_is_reported():
    filled = placeholders.fill("Hello {{requester}}, try {{top_fix}}. {{requester}}", VALUES)
    assert filled.text == "Hello {{requester}}, try {{top_fix}}. {{requester}}"
    assert filled.unfilled == ["requester", "top_fix"]


# --- Applying a macro -------------------------------------------------------------


def _macro(**fields) -> Macro:
    fields = {"name": "Ask for logs", "body": "Hello {{customer}}, about {{ticket}}.", **fields}
    return macros.macro_save(**fields)[0]


def test_applying_a_macro_fills_the_ticket_and_the_tech(ticket, tech):
    tech.first_name, tech.last_name = "Tess", "Tech"
    tech.save()
    outcome = macros.macro_apply(macro=_macro(body="{{customer}} {{ticket}} — {{me}}"), ticket=ticket, by=tech)
    assert outcome.text == f"Northwind Hosting #{ticket.pk} — Tess Tech"
    assert outcome.refused == [] and outcome.unfilled == []


def test_the_requester_is_who_opened_the_ticket_by_mail(ticket, tech):
    macro = _macro(body="Hello {{requester}}")
    assert macros.macro_apply(macro=macro, ticket=ticket, by=tech).unfilled == [
        "{{requester}}: this ticket was not opened by mail"
    ]
    InboundMessage.objects.create(outcome=Outcome.CREATED, ticket=ticket, from_address="ops@northwind.test")
    assert macros.macro_apply(macro=macro, ticket=ticket, by=tech).text == "Hello ops@northwind.test"
    InboundMessage.objects.filter(ticket=ticket).update(from_name="Olga Ops")
    assert macros.macro_apply(macro=macro, ticket=ticket, by=tech).text == "Hello Olga Ops"


def _first_fix_on_the_page(client, ticket) -> str:
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    panel = page[page.index('id="fixes"') :]
    return unescape(re.search(r"<h3>(.*?)</h3>", panel).group(1))


def test_top_fix_is_the_first_fix_the_ticket_page_shows(client, ticket, tech, kb, make_run):
    macro = _macro(body="Try: {{top_fix}}")
    assert macros.macro_apply(macro=macro, ticket=ticket, by=tech).unfilled == [
        "{{top_fix}}: no fix is suggested on this ticket"
    ]
    diagnosed(make_run({"kernel_log": KERNEL_LOG}))
    login(client, tech)
    top = _first_fix_on_the_page(client, ticket)
    assert macros.macro_apply(macro=macro, ticket=ticket, by=tech).text == f"Try: {top}"

    # A fix the tech rejected is nobody's top fix (the page moves it last).
    outcomes.outcome_record_rejected(ticket=ticket, recipe=FixRecipe.objects.get(title=top), by=tech)
    assert macros.macro_apply(macro=macro, ticket=ticket, by=tech).text != f"Try: {top}"


def test_a_macros_actions_go_through_the_ticket_services_and_reach_the_timeline(ticket, tech):
    macro = _macro(set_status=Status.WAITING, assign_to_me=True, add_tags=["logs"])
    outcome = macros.macro_apply(macro=macro, ticket=ticket, by=tech)
    ticket.refresh_from_db()
    assert ticket.status == Status.WAITING and ticket.waiting_since is not None
    assert ticket.assignee == tech
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["logs", "mail"]  # added, not replaced
    assert outcome.done == ["status set to Waiting on customer", "assigned to tess", "tags added: logs"]
    status = ticket.events.get(kind=EventKind.STATUS)
    assert (status.data["to"], status.body, status.actor) == (Status.WAITING, "Macro: Ask for logs", tech)
    assert ticket.events.filter(kind=EventKind.ASSIGNMENT, actor=tech).exists()


def test_a_named_assignee_is_assigned_whoever_applies_it(ticket, tech, admin_user):
    outcome = macros.macro_apply(macro=_macro(assign_to=admin_user), ticket=ticket, by=tech)
    ticket.refresh_from_db()
    assert ticket.assignee == admin_user and outcome.done == ["assigned to ada"]


def test_a_refused_transition_is_reported_and_the_other_actions_still_apply(ticket, tech):
    services.ticket_change_status(ticket=ticket, status=Status.TRIAGING, by=tech)
    services.ticket_change_status(ticket=ticket, status=Status.RESOLVED, by=tech)
    services.ticket_change_status(ticket=ticket, status=Status.CLOSED, by=tech)
    outcome = macros.macro_apply(macro=_macro(set_status=Status.WAITING, add_tags=["logs"]), ticket=ticket, by=tech)
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    assert outcome.refused == [
        "Status not changed to Waiting on customer: A ticket that is closed cannot become waiting on customer."
    ]
    assert outcome.done == ["tags added: logs"]
    assert "logs" in ticket.tags.values_list("name", flat=True)


def test_an_assignee_who_lost_the_tech_role_is_reported_not_assigned(ticket, tech, roles):
    former = make_user("fred", access.TECH)
    macro = _macro(assign_to=former)
    users.user_set_roles(user=former, roles=[])
    outcome = macros.macro_apply(macro=macro, ticket=ticket, by=tech)
    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert outcome.refused == ["Not assigned to fred: Tickets can only be assigned to techs or admins."]


def test_a_macro_in_the_status_it_sets_changes_nothing(ticket, tech):
    services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=tech)
    outcome = macros.macro_apply(macro=_macro(set_status=Status.WAITING), ticket=ticket, by=tech)
    assert outcome.done == ["status already Waiting on customer"] and outcome.refused == []
    assert ticket.events.filter(kind=EventKind.STATUS).count() == 1


def test_saving_reports_unknown_placeholders_and_refuses_an_empty_macro(tech):
    macro, unknown = macros.macro_save(name="Typo", body="Hi {{custmer}}, {{ticket}}")
    assert unknown == ["{{custmer}}"] and macro.body == "Hi {{custmer}}, {{ticket}}"
    with pytest.raises(ValidationError, match="body or at least one action"):
        macros.macro_save(name="Nothing", body="  ")
    with pytest.raises(ValidationError, match="not both"):
        macros.macro_save(name="Both", body="x", assign_to=tech, assign_to_me=True)


# --- Replies --------------------------------------------------------------------


def test_the_first_public_reply_moves_a_new_ticket_to_triaging(ticket, tech):
    services.ticket_reply(ticket=ticket, author=tech, body="On it.")
    ticket.refresh_from_db()
    assert ticket.status == Status.TRIAGING and ticket.first_response_at is not None
    kinds = list(ticket.events.values_list("kind", flat=True))
    assert kinds[-2:] == [EventKind.REPLY, EventKind.STATUS]
    assert ticket.events.get(kind=EventKind.STATUS).body == "First public reply."

    services.ticket_reply(ticket=ticket, author=tech, body="Still on it.")
    assert ticket.events.filter(kind=EventKind.STATUS).count() == 1  # only a new ticket moves


def test_an_internal_note_does_not_move_a_new_ticket(ticket, tech):
    services.ticket_add_note(ticket=ticket, author=tech, body="looking")
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW


@pytest.mark.parametrize("target", [Status.WAITING, Status.RESOLVED])
def test_send_and_set_moves_a_new_ticket_straight_to_the_chosen_status(ticket, tech, target):
    services.ticket_reply(ticket=ticket, author=tech, body="Please send the logs.", status=target)
    ticket.refresh_from_db()
    assert ticket.status == target
    assert [e.data["to"] for e in ticket.events.filter(kind=EventKind.STATUS)] == [target]


def test_a_refused_send_and_set_writes_nothing_not_even_the_reply(ticket, tech):
    before = ticket.events.count()
    with pytest.raises(workflow.TransitionRefused, match="cannot become closed"):
        services.ticket_reply(ticket=ticket, author=tech, body="Bye.", status=Status.CLOSED)
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and ticket.first_response_at is None
    assert ticket.events.count() == before


def test_send_and_set_offers_only_what_the_workflow_allows():
    assert workflow.send_and_set_choices(Status.NEW) == [Status.WAITING, Status.RESOLVED]
    assert workflow.send_and_set_choices(Status.TRIAGING) == [Status.WAITING, Status.RESOLVED]
    assert workflow.send_and_set_choices(Status.RESOLVED) == [Status.TRIAGING, Status.CLOSED]
    assert workflow.send_and_set_choices(Status.CLOSED) == [Status.TRIAGING]


# --- Pages ----------------------------------------------------------------------


def test_the_ticket_page_offers_send_and_set_for_the_current_status(client, tech, ticket):
    page = login(client, tech).get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert 'name="then_status" value="waiting">Send and set Waiting on customer</button>' in page
    assert 'value="resolved">Send and set Resolved</button>' in page
    assert 'value="closed">' not in page.split('class="reply-actions"', 1)[1].split("</div>", 1)[0]


def test_send_and_set_through_the_page(client, tech, ticket):
    response = login(client, tech).post(
        reverse("ticket_reply", args=[ticket.pk]), {"body": "Logs please.", "then_status": "waiting"}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.WAITING
    assert ticket.events.filter(kind=EventKind.REPLY, body="Logs please.").exists()


def test_a_send_and_set_the_workflow_refuses_keeps_the_draft_and_says_why(client, tech, ticket):
    response = login(client, tech).post(
        reverse("ticket_reply", args=[ticket.pk]), {"body": "My long draft.", "then_status": "closed"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "A ticket that is new cannot become closed." in page and "My long draft.</textarea>" in page
    assert not ticket.events.filter(kind=EventKind.REPLY).exists()


def test_applying_a_macro_appends_to_the_draft_and_keeps_the_note(client, tech, ticket):
    macro = _macro(set_status=Status.TRIAGING)
    response = login(client, tech).post(
        reverse("ticket_apply_macro", args=[ticket.pk]),
        {"macro": macro.pk, "body": "Thanks for the <b>logs</b>.", "note-body": "half a note"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert f"Thanks for the &lt;b&gt;logs&lt;/b&gt;.\n\nHello Northwind Hosting, about #{ticket.pk}.</textarea>" in page
    assert "half a note</textarea>" in page
    assert "Applied “Ask for logs”: status set to Triaging." in page
    ticket.refresh_from_db()
    assert ticket.status == Status.TRIAGING
    assert not ticket.events.filter(kind=EventKind.REPLY).exists()  # inserted, not sent


def test_a_macro_on_an_empty_composer_gives_just_its_text(client, tech, ticket):
    page = (
        login(client, tech)
        .post(reverse("ticket_apply_macro", args=[ticket.pk]), {"macro": _macro().pk, "body": ""})
        .content.decode()
    )
    assert f">\nHello Northwind Hosting, about #{ticket.pk}.</textarea>" in page


def test_the_reply_with_the_macros_text_is_kept_as_the_techs_draft_at_once(client, tech, ticket):
    services.ticket_reply(ticket=ticket, author=tech, body="An earlier reply.")  # a reply sent before
    login(client, tech).post(
        reverse("ticket_apply_macro", args=[ticket.pk]), {"macro": _macro().pk, "body": "Typed first."}
    )
    draft = TicketDraft.objects.get(user=tech, ticket=ticket, kind=DraftKind.REPLY)
    assert draft.body == f"Typed first.\n\nHello Northwind Hosting, about #{ticket.pk}."
    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()  # a reload keeps it
    assert f"Hello Northwind Hosting, about #{ticket.pk}.</textarea>" in page


def test_the_page_reports_a_refused_transition_and_still_inserts_the_text(client, tech, ticket):
    services.ticket_change_status(ticket=ticket, status=Status.RESOLVED, by=tech)
    macro = _macro(set_status=Status.WAITING)
    page = (
        login(client, tech)
        .post(reverse("ticket_apply_macro", args=[ticket.pk]), {"macro": macro.pk, "body": "draft"})
        .content.decode()
    )
    assert (
        'role="alert">Status not changed to Waiting on customer: '
        "A ticket that is resolved cannot become waiting on customer.</p>"
    ) in page
    assert f"draft\n\nHello Northwind Hosting, about #{ticket.pk}.</textarea>" in page


def test_a_disabled_macro_is_neither_offered_nor_applied_and_the_draft_survives(client, tech, ticket):
    macro = _macro()
    macros.macro_set_active(macro=macro, active=False)
    login(client, tech)
    assert "Ask for logs" not in client.get(reverse("ticket", args=[ticket.pk])).content.decode()
    page = client.post(
        reverse("ticket_apply_macro", args=[ticket.pk]), {"macro": macro.pk, "body": "keep me"}
    ).content.decode()
    assert "That macro is no longer active." in page and "keep me</textarea>" in page


def test_an_admin_saving_a_macro_hears_about_unknown_placeholders(client, admin_user, tech):
    response = login(client, admin_user).post(
        reverse("macro_new"),
        {
            "name": "Waiting",
            "body": "Hi {{customer}}, {{custmer}}",
            "set_status": "waiting",
            "assignee": str(tech.pk),
            "add_tags": "logs, vendor",
            "active": "on",
        },
    )
    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Unknown placeholders in “Waiting”, left as typed: {{custmer}}" in t for t in texts)
    macro = Macro.objects.get(name="Waiting")
    assert (macro.set_status, macro.assign_to, macro.add_tags) == (Status.WAITING, tech, ["logs", "vendor"])
    listing = client.get(reverse("macros")).content.decode()
    assert "Unknown placeholders: {{custmer}}" in listing


def test_an_admin_edits_disables_and_enables_a_macro(client, admin_user):
    macro = _macro()
    login(client, admin_user)
    response = client.post(
        reverse("macro_edit", args=[macro.pk]),
        {"name": "Ask for logs", "body": "New text", "set_status": "", "assignee": "me", "add_tags": ""},
    )
    assert response.status_code == 302
    macro.refresh_from_db()
    assert (macro.body, macro.assign_to_me, macro.active) == ("New text", True, False)  # unticked: disabled
    client.post(reverse("macro_set_active", args=[macro.pk]), {"active": "1"})
    macro.refresh_from_db()
    assert macro.active


def test_macro_text_is_escaped_on_the_admin_pages(client, admin_user):
    _macro(name="<script>x</script>", body="<img src=x onerror=alert(1)>")
    page = login(client, admin_user).get(reverse("macros")).content.decode()
    assert "<script>x</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
