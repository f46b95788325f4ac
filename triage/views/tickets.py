"""Ticket views: the queue, filing a ticket, and the ticket page with its actions.

Each action is access -> form -> service -> fragment (htmx) or redirect. An
invalid form re-renders the ticket with the errors beside the field it belongs to.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnostics import selectors as collection_selectors
from diagnostics.forms import CollectForm
from diagnostics.knowledge import followups, outcomes, verification
from diagnostics.knowledge.forms import AcceptFixForm, RejectFixForm, SettlePossibleForm
from diagnostics.knowledge.proposal import playbook_proposal
from triage import access, forms, selectors, services, workflow
from triage.macros import selectors as macro_selectors
from triage.models import Status, Ticket
from triage.pagination import BadCursor


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    access.ticket_access(user=request.user, action="view")
    form = forms.QueueFilterForm(request.GET or None)
    page = None
    if not request.GET or form.is_valid():
        filters = form.filters() if request.GET else selectors.QueueFilters()
        try:
            page = selectors.ticket_queue(user=request.user, filters=filters, size=settings.TRIAGE_QUEUE_PAGE_SIZE)
        except BadCursor:
            form.add_error(None, "That page link is no longer valid; showing the first page.")
            filters.cursor = None
            page = selectors.ticket_queue(user=request.user, filters=filters, size=settings.TRIAGE_QUEUE_PAGE_SIZE)
    context = {"form": form, "page": page, "query": _query_without_cursor(request),
               "assignees": selectors.assignable_users()}
    if not request.htmx:
        # The customer filter as plain (pk, name) pairs: Django's widget renders each option
        # through a template, which cost 75 ms of a 100 ms page at 2,000 customers.
        context["customers"] = selectors.customer_choices()
        context["selected_customer"] = str(form.data.get("customer", ""))
    template = "tickets/_queue_results.html" if request.htmx else "tickets/queue.html"
    return render(request, template, context)


def _query_without_cursor(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("cursor", None)
    return params.urlencode()


@login_required
@require_http_methods(["GET", "POST"])
def ticket_new(request: HttpRequest) -> HttpResponse:
    access.ticket_access(user=request.user, action="work")
    initial = {"customer": request.GET.get("customer")} if request.GET.get("customer", "").isdigit() else {}
    form = forms.TicketCreateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = services.ticket_create(
                subject=data["subject"], description=data["description"], customer=data["customer"],
                priority=data["priority"], servers=data["servers"], tag_names=data["tags"],
                created_by=request.user, assignee=data["assignee"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Ticket {ticket.reference} filed.")
            return redirect("ticket", ticket_id=ticket.pk)
    return render(request, "tickets/new.html", {"form": form})


def _load_ticket(request: HttpRequest, ticket_id: int) -> Ticket:
    try:
        return selectors.ticket_detail(user=request.user, ticket_id=ticket_id)
    except Ticket.DoesNotExist:
        raise Http404("No such ticket") from None


def _ticket_context(request: HttpRequest, ticket: Ticket, **bound) -> dict:
    can_work = access.can_work_tickets(request.user)
    context = {
        "ticket": ticket,
        "timeline": selectors.ticket_timeline(ticket=ticket),
        "servers": list(ticket.servers.order_by("name")),
        "tag_names": sorted(ticket.tags.values_list("name", flat=True)),
        "can_work": can_work,
        "sla_state": ticket.sla_state(),
        "next_statuses": workflow.allowed_next(ticket.status),
        "runs": (runs := collection_selectors.ticket_runs(ticket=ticket)),
        "live": collection_selectors.ticket_live_runs(runs=runs),
        **collection_selectors.ticket_fixes_panel(ticket=ticket),
    }
    if can_work:
        proposal = playbook_proposal(ticket=ticket)
        context.update(
            accept_form=bound.get("accept_form"),
            reject_form=bound.get("reject_form"),
            resolve_fix_form=bound.get("resolve_fix_form"),
            verify_form=bound.get("verify_form"),
            settle_form=bound.get("settle_form"),
            # "Resolve with this fix" is offered only where the workflow allows resolving.
            can_resolve=Status.RESOLVED in context["next_statuses"],
            reply_form=bound.get("reply_form") or forms.SendReplyForm(ticket=ticket),
            # "Send and set …" buttons (tickets/_reply_actions.html) and the macro picker (tickets/_macros.html).
            send_and_set=[(s, Status(s).label) for s in workflow.send_and_set_choices(ticket.status)],
            macros=macro_selectors.active_macros(),
            macro_outcome=bound.get("macro_outcome"),
            macro_form=bound.get("macro_form"),
            note_form=bound.get("note_form") or forms.ReplyForm(prefix="note"),
            assign_form=bound.get("assign_form") or forms.AssignForm(initial={"assignee": ticket.assignee_id}),
            status_form=bound.get("status_form") or forms.StatusForm(ticket=ticket, recipes=_fix_choices(ticket)),
            priority_form=bound.get("priority_form") or forms.PriorityForm(initial={"priority": ticket.priority}),
            tags_form=bound.get("tags_form") or forms.TagsForm(initial={"tags": ", ".join(context["tag_names"])}),
            servers_form=bound.get("servers_form")
            or forms.ServersForm(ticket=ticket, initial={"servers": [s.pk for s in context["servers"]]}),
            collect_form=CollectForm(
                ticket=ticket, initial={"playbook": proposal.playbook.pk} if proposal is not None else None
            ),
            proposal=proposal,
        )
    return context


def _fix_choices(ticket: Ticket) -> list[tuple[int, str]]:
    return [(r.pk, r.title) for r in outcomes.ticket_suggested_recipes(ticket=ticket)]


def _render_ticket(request: HttpRequest, ticket: Ticket, **bound) -> HttpResponse:
    template = "tickets/_ticket_main.html" if request.htmx else "tickets/detail.html"
    return render(request, template, _ticket_context(request, ticket, **bound))


@login_required
@require_GET
def ticket_detail(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = _load_ticket(request, ticket_id)
    return _render_ticket(request, ticket)


def _after_action(request: HttpRequest, ticket_id: int) -> HttpResponse:
    if request.htmx:
        return _render_ticket(request, _load_ticket(request, ticket_id))
    return redirect(reverse("ticket", args=[ticket_id]))


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _ticket_action(name: str, form_factory, apply):
    """Build a POST view for one ticket action: load, check, validate, apply."""

    @login_required
    @require_POST
    def view(request: HttpRequest, ticket_id: int) -> HttpResponse:
        ticket = _load_ticket(request, ticket_id)
        access.ticket_access(user=request.user, action="work")
        form = form_factory(request, ticket)
        if form.is_valid():
            try:
                apply(request=request, ticket=ticket, data=form.cleaned_data)
            except (ValidationError, workflow.TransitionRefused) as exc:
                _add_errors(form, exc if isinstance(exc, ValidationError) else ValidationError(str(exc)))
            else:
                return _after_action(request, ticket_id)
        return _render_ticket(request, ticket, **{f"{name}_form": form})

    view.__name__ = f"ticket_{name}"
    return view


ticket_reply = _ticket_action(
    "reply",
    lambda request, ticket: forms.SendReplyForm(request.POST, ticket=ticket),
    lambda request, ticket, data: services.ticket_reply(
        ticket=ticket, author=request.user, body=data["body"], status=data["then_status"] or None
    ),
)
ticket_note = _ticket_action(
    "note",
    lambda request, ticket: forms.ReplyForm(request.POST, prefix="note"),
    lambda request, ticket, data: services.ticket_add_note(ticket=ticket, author=request.user, body=data["body"]),
)
ticket_assign = _ticket_action(
    "assign",
    lambda request, ticket: forms.AssignForm(request.POST),
    lambda request, ticket, data: services.ticket_assign(ticket=ticket, assignee=data["assignee"], by=request.user),
)


def _change_status(*, request: HttpRequest, ticket: Ticket, data: dict) -> None:
    # One transaction: a resolution and the fix named for it are recorded together or not at all.
    with transaction.atomic():
        services.ticket_change_status(ticket=ticket, status=data["status"], by=request.user, note=data["note"])
        if data.get("fixed_by") is not None:
            recipe = outcomes.ticket_suggested_recipes(ticket=ticket).get(pk=data["fixed_by"])
            outcomes.outcome_record_fixed(ticket=ticket, recipe=recipe, by=request.user)


ticket_status = _ticket_action(
    "status",
    lambda request, ticket: forms.StatusForm(request.POST, ticket=ticket, recipes=_fix_choices(ticket)),
    _change_status,
)


ticket_accept_fix = _ticket_action(
    "accept",
    lambda request, ticket: AcceptFixForm(request.POST, recipes=outcomes.ticket_suggested_recipes(ticket=ticket)),
    lambda request, ticket, data: outcomes.outcome_record_accepted(
        ticket=ticket, recipe=data["recipe"], by=request.user
    ),
)
ticket_reject_fix = _ticket_action(
    "reject",
    lambda request, ticket: RejectFixForm(request.POST, recipes=outcomes.ticket_suggested_recipes(ticket=ticket)),
    lambda request, ticket, data: outcomes.outcome_record_rejected(
        ticket=ticket, recipe=data["recipe"], by=request.user, reason=data["reason"]
    ),
)
ticket_resolve_with_fix = _ticket_action(
    "resolve_fix",
    lambda request, ticket: AcceptFixForm(request.POST, recipes=outcomes.ticket_suggested_recipes(ticket=ticket)),
    lambda request, ticket, data: outcomes.ticket_resolve_with_fix(
        ticket=ticket, recipe=data["recipe"], by=request.user
    ),
)
ticket_verify_fix = _ticket_action(
    "verify",
    lambda request, ticket: AcceptFixForm(request.POST, recipes=outcomes.ticket_suggested_recipes(ticket=ticket)),
    lambda request, ticket, data: verification.verify_request(ticket=ticket, recipe=data["recipe"], by=request.user),
)
ticket_settle_possible = _ticket_action(
    "settle",
    lambda request, ticket: SettlePossibleForm(request.POST),
    lambda request, ticket, data: followups.settle_request(
        ticket=ticket, symptom_key=data["symptom"], server_id=data["server"], by=request.user
    ),
)
ticket_priority = _ticket_action(
    "priority",
    lambda request, ticket: forms.PriorityForm(request.POST),
    lambda request, ticket, data: services.ticket_change_priority(
        ticket=ticket, priority=data["priority"], by=request.user
    ),
)
ticket_tags = _ticket_action(
    "tags",
    lambda request, ticket: forms.TagsForm(request.POST),
    lambda request, ticket, data: services.ticket_set_tags(ticket=ticket, tag_names=data["tags"], by=request.user),
)
ticket_servers = _ticket_action(
    "servers",
    lambda request, ticket: forms.ServersForm(request.POST, ticket=ticket),
    lambda request, ticket, data: services.ticket_set_servers(
        ticket=ticket, servers=data["servers"], by=request.user
    ),
)
