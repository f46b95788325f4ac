"""The verdicts a tech gives on the fixes suggested on a ticket: accept, reject, verify, resolve
with one, and settle a possible symptom. Their forms, services and URLs are this app's; the ticket
page they answer with is the desk's, so each is built with triage's ticket_action (load, access,
stale-version check, form, service, the changed parts of the page)."""

from __future__ import annotations

from diagnostics.knowledge import followups, outcomes, verification
from diagnostics.knowledge.forms import AcceptFixForm, RejectFixForm, SettlePossibleForm
from triage.views.tickets import ticket_action


def _suggested_recipe_form(form_class):
    return lambda request, ticket: form_class(request.POST, recipes=outcomes.ticket_suggested_recipes(ticket=ticket))


ticket_accept_fix = ticket_action(
    "accept",
    _suggested_recipe_form(AcceptFixForm),
    lambda request, ticket, data, version: outcomes.outcome_record_accepted(
        ticket=ticket, recipe=data["recipe"], by=request.user
    ),
)
ticket_reject_fix = ticket_action(
    "reject",
    _suggested_recipe_form(RejectFixForm),
    lambda request, ticket, data, version: outcomes.outcome_record_rejected(
        ticket=ticket, recipe=data["recipe"], by=request.user, reason=data["reason"]
    ),
)
ticket_resolve_with_fix = ticket_action(
    "resolve_fix",
    _suggested_recipe_form(AcceptFixForm),
    lambda request, ticket, data, version: outcomes.ticket_resolve_with_fix(
        ticket=ticket, recipe=data["recipe"], by=request.user, expected_version=version
    ),
)
ticket_verify_fix = ticket_action(
    "verify",
    _suggested_recipe_form(AcceptFixForm),
    lambda request, ticket, data, version: verification.verify_request(
        ticket=ticket, recipe=data["recipe"], by=request.user
    ),
)
ticket_settle_possible = ticket_action(
    "settle",
    lambda request, ticket: SettlePossibleForm(request.POST),
    lambda request, ticket, data, version: followups.settle_request(
        ticket=ticket, symptom_key=data["symptom"], server_id=data["server"], by=request.user
    ),
)
