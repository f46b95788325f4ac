"""Ticket views: the queue, filing a ticket, and the ticket page with its actions.

Each action is access -> form -> service -> fragments (htmx) or redirect. An
invalid form re-renders the ticket with the errors beside the field it belongs to.

The page is a desk a tech works in all day, so an action never costs them what
they are typing: htmx answers replace only the parts of the page the action
changed (tickets/_ticket_update.html), the composer's text is autosaved as a
draft of theirs, and a sidebar form posted from a page the ticket has moved on
from is refused (409) with what changed since, by whom, and a button to
re-apply the change on the ticket as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from triage import access, extensions, forms, merging, presence, selectors, services, workflow
from triage.contacts import forms as contact_forms
from triage.contacts import services as contact_services
from triage.htmx import HtmxHttpRequest
from triage.macros import selectors as macro_selectors
from triage.models import DraftKind, EventKind, Priority, Status, Ticket, TicketEvent
from triage.pagination import BadCursor
from triage.queue import selectors as queue_selectors


@login_required
@require_GET
def queue(request: HtmxHttpRequest) -> HttpResponse:
    access.ticket_access(user=request.user, action="view")
    context = _queue_context(request, request.GET)
    if not request.htmx:
        form = context["form"]
        # The customer filter as plain (pk, name) pairs: Django's widget renders each option
        # through a template, which cost 75 ms of a 100 ms page at 2,000 customers.
        context["customers"] = selectors.customer_choices()
        context["selected_customer"] = str(form.data.get("customer", ""))
        context["saved_views"] = queue_selectors.saved_views_with_counts(user=request.user)
    template = "tickets/_queue_results.html" if request.htmx else "tickets/queue.html"
    return render(request, template, context)


def _queue_context(request: HttpRequest, params: QueryDict) -> dict:
    form = forms.QueueFilterForm(params or None)
    page = None
    if not params or form.is_valid():
        filters = form.filters() if params else selectors.QueueFilters()
        try:
            page = selectors.ticket_queue(user=request.user, filters=filters, size=settings.TRIAGE_QUEUE_PAGE_SIZE)
        except BadCursor:
            form.add_error(None, "That page link is no longer valid; showing the first page.")
            filters.cursor = None
            page = selectors.ticket_queue(user=request.user, filters=filters, size=settings.TRIAGE_QUEUE_PAGE_SIZE)
    return {
        "form": form,
        "page": page,
        "query": _query_without_cursor(params),
        "assignees": selectors.assignable_users(),
        "can_work": access.can_work_tickets(request.user),
        "statuses": Status.choices,
        "priorities": Priority.choices,
    }


def queue_results(request: HttpRequest, *, query: str, **extra) -> HttpResponse:
    """The queue's results for ``query`` after an action taken from the queue (its htmx answer),
    with the saved views' counts swapped in out of band: the action may have changed them."""
    context = _queue_context(request, QueryDict(query))
    context.update(
        extra, saved_views=queue_selectors.saved_views_with_counts(user=request.user), views_out_of_band=True
    )
    return render(request, "tickets/_queue_results.html", context)


def _query_without_cursor(params: QueryDict) -> str:
    params = params.copy()
    params.pop("cursor", None)
    return params.urlencode()


@login_required
@require_http_methods(["GET", "POST"])
def ticket_new(request: HttpRequest) -> HttpResponse:
    access.ticket_access(user=request.user, action="work")
    initial = {"customer": request.GET.get("customer")} if request.GET.get("customer", "").isdigit() else {}
    form = forms.TicketCreateForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():  # the ticket and its files, or neither
                ticket = services.ticket_create(
                    subject=data["subject"],
                    description=data["description"],
                    customer=data["customer"],
                    priority=data["priority"],
                    servers=data["servers"],
                    tag_names=data["tags"],
                    created_by=request.user,
                    assignee=data["assignee"],
                    requester=data["requester"],
                )
                extensions.attachments_store(
                    event=ticket.events.get(kind=EventKind.CREATED), files=data["attachments"], by=request.user
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


# The sidebar's forms in page order: (action, url name, button label). Each is its own part of the
# page (id "action-<action>") and carries the ticket version it was rendered at.
SIDEBAR_ACTIONS = (
    ("status", "ticket_status", "Change status"),
    ("assign", "ticket_assign", "Assign"),
    ("priority", "ticket_priority", "Set priority"),
    ("tags", "ticket_tags", "Save tags"),
    ("servers", "ticket_servers", "Link servers"),
    ("people", "ticket_people", "Save people"),
)
# The composer's two forms: (action, draft kind, url name, draft url name, label, button label).
COMPOSERS = (
    ("reply", DraftKind.REPLY, "ticket_reply", "ticket_draft_reply", "Public reply to the customer", "Send reply"),
    ("note", DraftKind.NOTE, "ticket_note", "ticket_draft_note", "Internal note (techs only)", "Add note"),
)
# The actions of the suggested-fixes panel; verify and settle also start a collection.
FIX_ACTIONS = frozenset({"accept", "reject", "resolve_fix", "verify", "settle"})
# Actions whose answer swaps a part named otherwise: removing a link redraws the related tickets.
PART_OF = {"unlink": "links"}


@dataclass
class Conflict:
    """A sidebar change refused because the ticket changed after the form was rendered."""

    action: str
    changes: list[TicketEvent]


def _ticket_context(request: HttpRequest, ticket: Ticket, *, conflict: Conflict | None = None, **bound) -> dict:
    # A merged ticket is read, not worked: its work goes on on the survivor (the page says where).
    can_work = access.can_work_tickets(request.user) and ticket.merged_into_id is None
    requester, ccs = selectors.ticket_people(ticket=ticket)
    context = {
        "ticket": ticket,
        "requester": requester,
        "ccs": ccs,
        "merged_tickets": selectors.ticket_merged_tickets(ticket=ticket),
        "related": selectors.ticket_related(user=request.user, ticket=ticket),
        "merged_refused": bound.get("merged_refused", False),
        "timeline": selectors.ticket_timeline(ticket=ticket),
        "servers": list(ticket.servers.order_by("name")),
        "tag_names": sorted(ticket.tags.values_list("name", flat=True)),
        "can_work": can_work,
        "sla_state": ticket.sla_state(),
        "next_statuses": workflow.allowed_next(ticket.status),
        # Collections and suggested fixes (diagnostics), through the desk's extension point.
        **extensions.ticket_page_context(request=request, ticket=ticket, can_work=can_work),
    }
    if can_work:
        composers = selectors.ticket_composers(user=request.user, ticket=ticket)
        context.update(
            accept_form=bound.get("accept_form"),
            reject_form=bound.get("reject_form"),
            resolve_fix_form=bound.get("resolve_fix_form"),
            verify_form=bound.get("verify_form"),
            settle_form=bound.get("settle_form"),
            # "Resolve with this fix" is offered only where the workflow allows resolving.
            can_resolve=Status.RESOLVED in context["next_statuses"],
            # A tech coming back to the ticket finds what they had typed and not sent.
            reply_form=bound.get("reply_form")
            or forms.SendReplyForm(ticket=ticket, initial=_draft_initial(composers["reply"])),
            # "Send and set …" buttons (tickets/_reply_actions.html) and the macro picker (tickets/_macros.html).
            send_and_set=[(s, Status(s).label) for s in workflow.send_and_set_choices(ticket.status)],
            macros=macro_selectors.active_macros(),
            macro_outcome=bound.get("macro_outcome"),
            macro_form=bound.get("macro_form"),
            note_form=bound.get("note_form")
            or forms.ReplyForm(prefix="note", initial=_draft_initial(composers["note"])),
            assign_form=bound.get("assign_form") or forms.AssignForm(initial={"assignee": ticket.assignee_id}),
            status_form=bound.get("status_form") or forms.StatusForm(ticket=ticket, recipes=_fix_choices(ticket)),
            priority_form=bound.get("priority_form") or forms.PriorityForm(initial={"priority": ticket.priority}),
            tags_form=bound.get("tags_form") or forms.TagsForm(initial={"tags": ", ".join(context["tag_names"])}),
            servers_form=bound.get("servers_form")
            or forms.ServersForm(ticket=ticket, initial={"servers": [s.pk for s in context["servers"]]}),
            people_form=bound.get("people_form")
            or contact_forms.PeopleForm(
                ticket=ticket, initial={"requester": ticket.requester_id, "ccs": [c.pk for c in ccs]}
            ),
            links_form=bound.get("links_form") or forms.LinkForm(user=request.user),
            unlink_form=bound.get("unlink_form"),
            merge_form=bound.get("merge_form") or forms.MergeForm(user=request.user),
            merge_into=bound.get("merge_into"),
        )
        context["sidebar_actions"] = [
            {
                "name": name,
                "url_name": url_name,
                "label": label,
                "form": context[f"{name}_form"],
                "conflict": conflict if conflict is not None and conflict.action == name else None,
            }
            for name, url_name, label in SIDEBAR_ACTIONS
        ]
        context["composers"] = [
            {
                "name": name,
                "kind": kind,
                "url_name": url_name,
                "draft_url_name": draft_url_name,
                "label": label,
                "button": button,
                "form": context[f"{name}_form"],
                "state": composers[kind],
            }
            for name, kind, url_name, draft_url_name, label, button in COMPOSERS
        ]
    return context


def _draft_initial(composer: selectors.Composer) -> dict:
    return {"body": composer.draft.body} if composer.draft is not None else {}


def _fix_choices(ticket: Ticket) -> list[tuple[int, str]]:
    return extensions.fix_choices(ticket=ticket)


def _render_ticket(request: HtmxHttpRequest, ticket: Ticket, **bound) -> HttpResponse:
    template = "tickets/_ticket_main.html" if request.htmx else "tickets/detail.html"
    return render(request, template, _ticket_context(request, ticket, **bound))


@login_required
@require_GET
def ticket_detail(request: HtmxHttpRequest, ticket_id: int) -> HttpResponse:
    ticket = _load_ticket(request, ticket_id)
    return _render_ticket(request, ticket)


def _parts_to_swap(*, acted: str, status_changed: bool, conflict: bool) -> set[str]:
    """The parts of the ticket page an action's htmx answer replaces. Never the composer it was not
    sent from: a half-typed reply survives a status change, and a half-typed note a sent reply."""
    parts = {"head", "timeline", "facts", "versions"}
    parts |= {"fixes", "runs"} if acted in FIX_ACTIONS else {PART_OF.get(acted, acted)}
    if status_changed:
        parts |= {"status", "fixes"}  # the next statuses, and whether a fix may resolve the ticket
    if conflict:
        parts |= {name for name, _, _ in SIDEBAR_ACTIONS} | {"fixes"}  # the page was stale throughout
    return parts


def _answer(
    request: HtmxHttpRequest,
    ticket: Ticket,
    *,
    acted: str,
    status_before: str,
    status: int = 200,
    conflict: Conflict | None = None,
    **bound,
) -> HttpResponse:
    """The ticket after an action that was not simply done (form errors, a conflict), or after one
    done through htmx: htmx gets the changed parts, swapped out of band; a plain POST the page."""
    context = _ticket_context(request, ticket, conflict=conflict, **bound)
    if request.htmx:
        context["swap"] = _parts_to_swap(
            acted=acted, status_changed=ticket.status != status_before, conflict=conflict is not None
        )
        return render(request, "tickets/_ticket_update.html", context, status=status)
    return render(request, "tickets/detail.html", context, status=status)


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def ticket_action(name: str, form_factory, apply):
    """Build a POST view for one ticket action: load, check, validate, apply. Other apps build
    theirs on the ticket page with it too (diagnostics.knowledge.verdict_views).

    ``apply(request=, ticket=, data=, version=)`` gets the version the form was rendered at
    (None for forms that carry none) to pass on to the service as ``expected_version``.
    """

    @login_required
    @require_POST
    def view(request: HtmxHttpRequest, ticket_id: int) -> HttpResponse:
        ticket = _load_ticket(request, ticket_id)
        access.ticket_access(user=request.user, action="work")
        if ticket.merged_into_id is not None:
            return _merged_refusal(request, ticket)
        status_before = ticket.status
        form = form_factory(request, ticket)
        seen = forms.SeenVersionForm(request.POST).seen()
        try:
            if seen is not None and seen != ticket.version:
                # Stale even if invalid too: fixing the error must not then overwrite the change between.
                raise services.TicketChanged(seen=seen, current=ticket.version)
            if form.is_valid():
                try:
                    apply(request=request, ticket=ticket, data=form.cleaned_data, version=seen)
                except (ValidationError, workflow.TransitionRefused) as exc:
                    _add_errors(form, exc if isinstance(exc, ValidationError) else ValidationError(str(exc)))
                else:
                    if not request.htmx:
                        return redirect(reverse("ticket", args=[ticket_id]))
                    return _answer(request, _load_ticket(request, ticket_id), acted=name, status_before=status_before)
        except services.TicketChanged as changed:
            ticket = _load_ticket(request, ticket_id)
            conflict = Conflict(
                action=name, changes=selectors.ticket_changes_since(ticket=ticket, version=changed.seen)
            )
            return _answer(
                request,
                ticket,
                acted=name,
                status_before=status_before,
                status=409,
                conflict=conflict,
                **{f"{name}_form": form},
            )
        return _answer(request, ticket, acted=name, status_before=status_before, **{f"{name}_form": form})

    view.__name__ = f"ticket_{name}"
    return view


def _merged_refusal(request: HtmxHttpRequest, ticket: Ticket) -> HttpResponse:
    """An action posted on a ticket merged away (from a page loaded before the merge, or not):
    refused, and the page's head says where the ticket went. Nothing else is swapped, so what the
    tech typed stays in front of them to carry over."""
    context = _ticket_context(request, ticket, merged_refused=True)
    if request.htmx:
        context["swap"] = {"head"}
        return render(request, "tickets/_ticket_update.html", context, status=409)
    return render(request, "tickets/detail.html", context, status=409)


def _draft_autosave(kind: str, prefix: str | None):
    """Build the POST view a composer's textarea autosaves to as the tech types."""

    @login_required
    @require_POST
    def view(request: HtmxHttpRequest, ticket_id: int) -> HttpResponse:
        ticket = _load_ticket(request, ticket_id)
        access.ticket_access(user=request.user, action="work")
        form = forms.DraftForm(request.POST, prefix=prefix)
        draft = None
        presence.presence_report(
            ticket_id=ticket.pk,
            user=request.user,
            doing=presence.REPLYING if kind == DraftKind.REPLY else presence.NOTING,
        )
        if form.is_valid():
            draft = services.draft_save(
                user=request.user,
                ticket=ticket,
                kind=kind,
                body=form.cleaned_data["body"],
                last_sent=form.cleaned_data["last_sent"] or 0,
            )
        if not request.htmx:
            return redirect(reverse("ticket", args=[ticket_id]))
        # 200 even for a refused save (too long): htmx swaps only 2xx answers, and the tech must read why.
        return render(request, "tickets/_draft_state.html", {"draft": draft, "form": form})

    view.__name__ = f"ticket_draft_{kind}"
    return view


@login_required
@require_GET
def ticket_presence(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """Polled by the ticket page: reports this user viewing, answers who else is on the ticket."""
    ticket = _load_ticket(request, ticket_id)
    presence.presence_report(ticket_id=ticket.pk, user=request.user, doing=presence.VIEWING)
    others = presence.presence_others(ticket_id=ticket.pk, user=request.user)
    return render(
        request, "tickets/_presence.html", {"ticket": ticket, "others": others, "poll_seconds": presence.POLL_SECONDS}
    )


ticket_draft_reply = _draft_autosave(DraftKind.REPLY, None)
ticket_draft_note = _draft_autosave(DraftKind.NOTE, "note")


def _send(kind: str):
    """Send what was typed in the composer, and drop the author's draft of it with it."""

    def apply(*, request: HttpRequest, ticket: Ticket, data: dict, version: int | None) -> None:
        # One transaction: the entry and its files together (a reply's mail is planned after commit, with them).
        with transaction.atomic():
            if kind == DraftKind.REPLY:  # "Send and set …" sets the status in the same step
                event = services.ticket_reply(
                    ticket=ticket, author=request.user, body=data["body"], status=data.get("then_status") or None
                )
            else:
                event = services.ticket_add_note(ticket=ticket, author=request.user, body=data["body"])
            extensions.attachments_store(event=event, files=data["attachments"], by=request.user)
            services.draft_discard(user=request.user, ticket=ticket, kind=kind)

    return apply


ticket_reply = ticket_action(
    "reply",
    lambda request, ticket: forms.SendReplyForm(request.POST, request.FILES, ticket=ticket),
    _send(DraftKind.REPLY),
)
ticket_note = ticket_action(
    "note",
    lambda request, ticket: forms.ReplyForm(request.POST, request.FILES, prefix="note"),
    _send(DraftKind.NOTE),
)
ticket_assign = ticket_action(
    "assign",
    lambda request, ticket: forms.AssignForm(request.POST),
    lambda request, ticket, data, version: services.ticket_assign(
        ticket=ticket, assignee=data["assignee"], by=request.user, expected_version=version
    ),
)


def _change_status(*, request: HttpRequest, ticket: Ticket, data: dict, version: int | None) -> None:
    if data["status"] == ticket.status:  # the status it has, with a note: the note is all that changes
        services.ticket_add_note(ticket=ticket, author=request.user, body=data["note"])
    elif data.get("fixed_by") is not None:  # resolving, naming the fix that solved it (the form checks both)
        extensions.resolve_with_fix(
            ticket=ticket, fix_id=data["fixed_by"], by=request.user, note=data["note"], expected_version=version
        )
    else:
        services.ticket_change_status(
            ticket=ticket, status=data["status"], by=request.user, note=data["note"], expected_version=version
        )


ticket_status = ticket_action(
    "status",
    lambda request, ticket: forms.StatusForm(request.POST, ticket=ticket, recipes=_fix_choices(ticket)),
    _change_status,
)


ticket_priority = ticket_action(
    "priority",
    lambda request, ticket: forms.PriorityForm(request.POST),
    lambda request, ticket, data, version: services.ticket_change_priority(
        ticket=ticket, priority=data["priority"], by=request.user, expected_version=version
    ),
)
ticket_tags = ticket_action(
    "tags",
    lambda request, ticket: forms.TagsForm(request.POST),
    lambda request, ticket, data, version: services.ticket_set_tags(
        ticket=ticket, tag_names=data["tags"], by=request.user, expected_version=version
    ),
)
ticket_servers = ticket_action(
    "servers",
    lambda request, ticket: forms.ServersForm(request.POST, ticket=ticket),
    lambda request, ticket, data, version: services.ticket_set_servers(
        ticket=ticket, servers=data["servers"], by=request.user, expected_version=version
    ),
)


def _set_people(*, request: HttpRequest, ticket: Ticket, data: dict, version: int | None) -> None:
    # One transaction: a new contact typed here exists only if the ticket took it (a stale page keeps neither).
    with transaction.atomic():
        ccs = list(data["ccs"])
        if data["new_cc"]:
            try:
                ccs.append(
                    contact_services.contact_create(
                        customer=ticket.customer, email=data["new_cc"], name=data["new_cc_name"]
                    )
                )
            except ValidationError as exc:
                raise ValidationError({"new_cc": exc.messages}) from None
        services.ticket_set_people(
            ticket=ticket, requester=data["requester"], ccs=ccs, by=request.user, expected_version=version
        )


ticket_people = ticket_action(
    "people",
    lambda request, ticket: contact_forms.PeopleForm(request.POST, ticket=ticket),
    _set_people,
)


ticket_link = ticket_action(
    "links",
    lambda request, ticket: forms.LinkForm(request.POST, user=request.user),
    lambda request, ticket, data, version: merging.ticket_link(ticket=ticket, other=data["other"], by=request.user),
)
ticket_unlink = ticket_action(
    "unlink",
    lambda request, ticket: forms.UnlinkForm(request.POST),
    lambda request, ticket, data, version: merging.ticket_unlink(ticket=ticket, link_id=data["link"], by=request.user),
)


@login_required
@require_POST
def ticket_merge(request: HtmxHttpRequest, ticket_id: int) -> HttpResponse:
    """ "Merge into…": the first post names the survivor and is answered with both subjects to
    confirm (nothing changes yet); the confirming post merges and goes to the survivor."""
    ticket = _load_ticket(request, ticket_id)
    access.ticket_access(user=request.user, action="work")
    if ticket.merged_into_id is not None:
        return _merged_refusal(request, ticket)
    form = forms.MergeForm(request.POST, user=request.user)
    into = None
    if form.is_valid():
        into = form.cleaned_data["into"]
        refusal = merging.merge_refusal(source=ticket, into=into)
        if refusal:
            form.add_error("into", refusal)
            into = None
        elif form.cleaned_data["confirm"]:
            try:
                merging.tickets_merge(sources=[ticket], into=into, by=request.user)
            except ValidationError as exc:
                _add_errors(form, exc)
                into = None
            else:
                messages.success(request, f"Merged {ticket.reference} into {into.reference}.")
                url = reverse("ticket", args=[into.pk])
                if request.htmx:
                    # The survivor is another page: htmx follows this with a full page load.
                    return HttpResponse(status=204, headers={"HX-Redirect": url})
                return redirect(url)
    return _answer(request, ticket, acted="merge", status_before=ticket.status, merge_form=form, merge_into=into)
