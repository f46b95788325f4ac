"""Writes for macros: saving one, and applying one to a ticket.

Applying goes through the desk's own ticket services, so every action is checked
(the workflow, who may be assigned) and leaves its timeline entry like a tech's click.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from triage import access, services, workflow
from triage.macros import placeholders, selectors
from triage.models import Macro, Status, Ticket, slug_token


@transaction.atomic
def macro_save(
    *,
    macro: Macro | None = None,
    name: str,
    body: str,
    set_status: str = "",
    assign_to=None,
    assign_to_me: bool = False,
    add_tags: Iterable[str] = (),
    active: bool = True,
) -> tuple[Macro, list[str]]:
    """Create or update a macro; returns it with the unknown placeholders in its body, which are
    saved as typed (the admin is told; a tech applying it sees them in the reply)."""
    if assign_to is not None and assign_to_me:
        raise ValidationError({"assignee": "Assign to a person or to the tech applying it, not both."})
    if assign_to is not None and not access.can_work_tickets(assign_to):
        raise ValidationError({"assignee": "Tickets can only be assigned to techs or admins."})
    tags = sorted(set(add_tags))
    bad = [tag for tag in tags if not _is_tag_name(tag)]
    if bad:
        raise ValidationError({"add_tags": f"Not a valid tag: {', '.join(bad)}."})
    if not body.strip() and not (set_status or assign_to is not None or assign_to_me or tags):
        raise ValidationError("A macro needs a body or at least one action.")
    macro = macro or Macro()
    macro.name = name.strip()
    macro.body = body
    macro.set_status = set_status
    macro.assign_to = assign_to
    macro.assign_to_me = assign_to_me
    macro.add_tags = tags
    macro.active = active
    macro.updated_at = timezone.now()
    macro.full_clean()
    macro.save()
    return macro, placeholders.unknown_in(body)


def _is_tag_name(name: str) -> bool:
    try:
        slug_token(name)
    except ValidationError:
        return False
    return True


def macro_set_active(*, macro: Macro, active: bool) -> Macro:
    Macro.objects.filter(pk=macro.pk).update(active=active, updated_at=timezone.now())
    macro.active = active
    return macro


@dataclass
class MacroOutcome:
    """What applying a macro did, for the tech: the reply text and each action's fate."""

    macro_name: str
    text: str
    done: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # an action the desk refused, with its reason
    unfilled: list[str] = field(default_factory=list)  # "{{requester}}: this ticket was not opened by mail"


def macro_apply(*, macro: Macro, ticket: Ticket, by) -> MacroOutcome:
    """Fill the macro's body for ``ticket`` and apply its actions as ``by``.

    Each action is its own ticket service call: one the desk refuses (a transition the
    workflow does not allow, an assignee who may not work tickets) is reported in
    ``refused`` and the others still apply, so the tech sees exactly what happened.
    """
    filled = placeholders.fill(macro.body, selectors.placeholder_values(ticket=ticket, user=by))
    outcome = MacroOutcome(
        macro_name=macro.name,
        text=filled.text,
        unfilled=[
            f"{placeholders.token(name)}: {placeholders.MISSING_BECAUSE.get(name, 'no value')}"
            for name in filled.unfilled
        ],
    )
    if macro.set_status:
        _apply_status(ticket=ticket, status=macro.set_status, by=by, outcome=outcome)
    assignee = by if macro.assign_to_me else macro.assign_to
    if assignee is not None:
        try:
            services.ticket_assign(ticket=ticket, assignee=assignee, by=by)
        except ValidationError as exc:
            outcome.refused.append(f"Not assigned to {assignee.get_username()}: {' '.join(exc.messages)}")
        else:
            outcome.done.append(f"assigned to {assignee.get_username()}")
    if macro.add_tags:
        with transaction.atomic():
            # Read and write the tags under the ticket's lock: a tag another tech adds meanwhile is kept.
            Ticket.objects.select_for_update().filter(pk=ticket.pk).first()
            current = set(ticket.tags.values_list("name", flat=True))
            services.ticket_set_tags(ticket=ticket, tag_names=current | set(macro.add_tags), by=by)
        outcome.done.append(f"tags added: {', '.join(macro.add_tags)}")
    return outcome


def _apply_status(*, ticket: Ticket, status: str, by, outcome: MacroOutcome) -> None:
    label = Status(status).label
    current = Ticket.objects.values_list("status", flat=True).get(pk=ticket.pk)
    if current == status:
        outcome.done.append(f"status already {label}")
        return
    try:
        services.ticket_change_status(ticket=ticket, status=status, by=by, note=f"Macro: {outcome.macro_name}")
    except workflow.TransitionRefused as exc:
        outcome.refused.append(f"Status not changed to {label}: {exc}")
    else:
        outcome.done.append(f"status set to {label}")
