"""Collection views: start a run from a ticket, watch it, read and download evidence;
admins' setup: credentials, host keys, jump hosts, playbooks and the audit log."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnostics import forms, selectors, services, step_forms
from diagnostics.models import CollectionRun, Evidence, HostKey, JumpHost, JumpHostKey, Playbook
from diagnostics.models.jump import JUMP_BOUNDS
from diagnostics.playbooks import MAX_STEPS
from triage import access
from triage import selectors as desk_selectors
from triage.htmx import HtmxHttpRequest
from triage.models import Server, Ticket


@login_required
@require_POST
def collect(request: HttpRequest, ticket_id: int) -> HttpResponse:
    access.run_access(user=request.user, action="run")
    try:
        ticket = desk_selectors.ticket_detail(user=request.user, ticket_id=ticket_id)
    except Ticket.DoesNotExist:
        raise Http404("No such ticket") from None
    form = forms.CollectForm(request.POST, ticket=ticket)
    if form.is_valid():
        try:
            run = services.run_request(
                ticket=ticket,
                server=form.cleaned_data["server"],
                playbook=form.cleaned_data["playbook"],
                by=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            return redirect("run", run_id=run.pk)
    return render(request, "diagnostics/collect_refused.html", {"ticket": ticket, "form": form}, status=400)


@login_required
@require_GET
def run_detail(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    """The run page; its htmx poll gets the run's state and only the steps that changed (``selectors.run_poll``)."""
    # A poll without its parameters comes from a page rendered before polls had them: it gets the whole section.
    if request.htmx and "shown" in request.GET:
        return _run_poll(request, run_id)
    try:
        run, steps = selectors.run_detail(user=request.user, run_id=run_id)
    except CollectionRun.DoesNotExist:
        raise Http404("No such run") from None
    context = {
        **_run_state_context(request, run),
        "steps": steps,
        "progress": selectors.run_progress(steps),
        "poll_query": selectors.poll_query(steps),
    }
    return render(request, "diagnostics/_run.html" if request.htmx else "diagnostics/run.html", context)


def _run_poll(request: HttpRequest, run_id: int) -> HttpResponse:
    try:
        pending, shown = selectors.parse_poll_query(request.GET)
    except ValueError as exc:
        return HttpResponse(f"Bad poll of run {run_id}: {exc}.", status=400, content_type="text/plain; charset=utf-8")
    try:
        poll = selectors.run_poll(user=request.user, run_id=run_id, pending=pending, shown=shown)
    except CollectionRun.DoesNotExist:
        raise Http404("No such run") from None
    context = {
        **_run_state_context(request, poll.run),
        "poll": poll,
        "progress": poll.progress,
        "poll_query": poll.query,
    }
    return render(request, "diagnostics/_run_poll.html", context)


def _run_state_context(request: HttpRequest, run: CollectionRun) -> dict:
    return {
        "run": run,
        "symptoms": selectors.run_symptoms(run=run),
        # Near-misses are for admins tuning signatures; nobody else gets them in the context.
        "near_misses": selectors.run_near_misses(run=run)
        if run.is_settled and access.has_role(request.user, access.ADMIN)
        else None,
    }


@login_required
@require_GET
def evidence_raw(request: HttpRequest, run_id: int, step: int) -> HttpResponse:
    try:
        evidence = selectors.evidence_for_download(user=request.user, run_id=run_id, step=step)
    except Evidence.DoesNotExist:
        raise Http404("No such evidence") from None
    if evidence.output_pruned_at:
        return HttpResponse(evidence.pruned_notice, status=410, content_type="text/plain; charset=utf-8")
    extension = "pcap" if evidence.binary else "txt"
    content_type = "application/vnd.tcpdump.pcap" if evidence.binary else "text/plain; charset=utf-8"
    response = HttpResponse(bytes(evidence.output), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="run{run_id}-{step}-{evidence.probe}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Admin setup ---------------------------------------------------------------------


def _server(request: HttpRequest, server_id: int) -> Server:
    access.collection_setup_access(user=request.user)
    return get_object_or_404(Server.objects.select_related("customer"), pk=server_id)


@login_required
@require_http_methods(["GET", "POST"])
def server_access_setup(request: HttpRequest, server_id: int) -> HttpResponse:
    """Credentials and host keys of one server."""
    server = _server(request, server_id)
    credential_form = forms.CredentialForm(request.POST or None, prefix="cred")
    known_hosts_form = forms.KnownHostsForm(prefix="kh")
    trust_form = _trust_form(server)
    if request.method == "POST" and credential_form.is_valid():
        data = credential_form.cleaned_data
        scope = {"customer": server.customer} if request.POST.get("scope") == "customer" else {"server": server}
        try:
            services.credential_set(
                kind=data["kind"],
                secret=data["secret"],
                passphrase=data["passphrase"],
                username=data["username"],
                sudo_password=data["sudo_password"],
                by=request.user,
                **scope,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                credential_form.add_error(field if field in credential_form.fields else None, errors)
        else:
            messages.success(request, "Credential stored (encrypted).")
            return redirect("server_access", server_id=server.pk)
    context = {
        "server": server,
        "credential_form": credential_form,
        "known_hosts_form": known_hosts_form,
        "trust_form": trust_form,
        **selectors.server_collection_setup(server=server),
    }
    return render(request, "diagnostics/server_access.html", context)


def _trust_form(server: Server, data=None) -> forms.SshTrustForm:
    initial = {"ca_keys": server.customer.host_ca_keys, "allow_legacy": server.allow_legacy_ssh}
    return forms.SshTrustForm(data, prefix="trust", initial=initial)


@login_required
@require_POST
def ssh_trust(request: HttpRequest, server_id: int) -> HttpResponse:
    """The customer's CA keys and this server's legacy-algorithm exception."""
    server = _server(request, server_id)
    form = _trust_form(server, request.POST)
    if form.is_valid():
        try:
            services.ssh_trust_set(
                server=server,
                ca_keys=form.cleaned_data["ca_keys"].strip(),
                allow_legacy=form.cleaned_data["allow_legacy"],
                by=request.user,
            )
        except ValidationError as exc:
            form.add_error("ca_keys", exc.message_dict.get("ca_keys", exc.messages))
        else:
            messages.success(request, "SSH trust settings saved.")
            return redirect("server_access", server_id=server.pk)
    context = {
        "server": server,
        "credential_form": forms.CredentialForm(prefix="cred"),
        "known_hosts_form": forms.KnownHostsForm(prefix="kh"),
        "trust_form": form,
        **selectors.server_collection_setup(server=server),
    }
    return render(request, "diagnostics/server_access.html", context, status=400)


@login_required
@require_POST
def host_keys_import(request: HttpRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    form = forms.KnownHostsForm(request.POST, prefix="kh")
    if form.is_valid():
        try:
            keys = services.host_keys_import(
                server=server, known_hosts=form.cleaned_data["known_hosts"], by=request.user
            )
        except ValidationError as exc:
            form.add_error("known_hosts", exc.message_dict.get("known_hosts", exc.messages))
        else:
            messages.success(request, f"Trusted {len(keys)} host key(s).")
            return redirect("server_access", server_id=server.pk)
    context = {
        "server": server,
        "credential_form": forms.CredentialForm(prefix="cred"),
        "known_hosts_form": form,
        "trust_form": _trust_form(server),
        **selectors.server_collection_setup(server=server),
    }
    return render(request, "diagnostics/server_access.html", context, status=400)


@login_required
@require_POST
def host_key_decide(request: HttpRequest, server_id: int, key_id: int) -> HttpResponse:
    server = _server(request, server_id)
    key = get_object_or_404(HostKey, pk=key_id, server=server)
    if request.POST.get("decision") == "trust":
        if key.status == HostKey.REVOKED:
            # A revoked key may be an impostor's: no button brings it back (a known_hosts import can, deliberately).
            return HttpResponse("A revoked host key cannot be trusted again.", status=400, content_type="text/plain")
        services.host_key_trust(host_key=key, by=request.user)
        messages.success(request, f"Trusted {key.fingerprint}.")
    else:
        services.host_key_revoke(host_key=key, by=request.user)
        messages.success(request, f"Revoked {key.fingerprint}.")
    return redirect("server_access", server_id=server.pk)


@login_required
@require_POST
def server_jump_chain(request: HttpRequest, server_id: int) -> HttpResponse:
    """The jump hosts a collection goes through to reach this server (or the customer's default chain)."""
    server = _server(request, server_id)
    form = forms.JumpChainForm(request.POST, customer=server.customer)
    if form.is_valid():
        scope = {"customer": server.customer} if form.cleaned_data["scope"] == "customer" else {"server": server}
        try:
            services.jump_chain_set(jump_hosts=form.cleaned_data["chain"], by=request.user, **scope)
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            path = ", ".join(hop.name for hop in form.cleaned_data["chain"]) or "none (direct)"
            messages.success(request, f"Jump chain saved: {path}.")
            return redirect("server_access", server_id=server.pk)
    context = {
        "server": server,
        "credential_form": forms.CredentialForm(prefix="cred"),
        "known_hosts_form": forms.KnownHostsForm(prefix="kh"),
        "trust_form": _trust_form(server),
        "jump_chain_form": form,
        **selectors.server_collection_setup(server=server),
    }
    return render(request, "diagnostics/server_access.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def jump_host_new(request: HttpRequest, server_id: int) -> HttpResponse:
    """A new jump host for the server's customer; its credential and keys are set on its own page next."""
    server = _server(request, server_id)
    form = forms.JumpHostForm(request.POST or None, prefix="jump")
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            jump_host = services.jump_host_save(
                customer=server.customer,
                name=data["name"],
                address=data["address"],
                ssh_port=data["ssh_port"],
                username=data["username"],
                bounds={b: data[f"{b}_timeout"] for b in JUMP_BOUNDS},
                by=request.user,
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Jump host {jump_host.name} added: now store its credential and pin its key.")
            return redirect("jump_host", jump_host_id=jump_host.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "diagnostics/jump_host.html",
        {"server": server, "customer": server.customer, "form": form},
        status=status,
    )


def _form_errors(form, exc: ValidationError) -> None:
    for field, errors in getattr(exc, "message_dict", {None: exc.messages}).items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
@require_http_methods(["GET", "POST"])
def jump_host_edit(request: HttpRequest, jump_host_id: int) -> HttpResponse:
    """One jump host: its settings, its credential (write-only) and its pinned keys. The POST's `action` says
    which of the three forms was sent."""
    access.collection_setup_access(user=request.user)
    jump_host = get_object_or_404(JumpHost.objects.select_related("customer"), pk=jump_host_id)
    action = request.POST.get("action") if request.method == "POST" else None
    data = request.POST if action else None
    form = forms.JumpHostForm(
        data if action == "settings" else None, prefix="jump", initial=forms.JumpHostForm.initial_for(jump_host)
    )
    secret_form = forms.SecretForm(data if action == "credential" else None, prefix="jcred")
    known_hosts_form = forms.KnownHostsForm(data if action == "known_hosts" else None, prefix="kh")
    try:
        if action == "settings" and form.is_valid():
            d = form.cleaned_data
            services.jump_host_save(
                customer=jump_host.customer,
                jump_host=jump_host,
                name=d["name"],
                address=d["address"],
                ssh_port=d["ssh_port"],
                username=d["username"],
                bounds={b: d[f"{b}_timeout"] for b in JUMP_BOUNDS},
                by=request.user,
            )
            messages.success(request, "Jump host saved.")
            return redirect("jump_host", jump_host_id=jump_host.pk)
        if action == "credential" and secret_form.is_valid():
            d = secret_form.cleaned_data
            services.jump_host_credential_set(
                jump_host=jump_host, kind=d["kind"], secret=d["secret"], passphrase=d["passphrase"], by=request.user
            )
            messages.success(request, "Credential stored (encrypted).")
            return redirect("jump_host", jump_host_id=jump_host.pk)
        if action == "known_hosts" and known_hosts_form.is_valid():
            keys = services.jump_host_keys_import(
                jump_host=jump_host, known_hosts=known_hosts_form.cleaned_data["known_hosts"], by=request.user
            )
            messages.success(request, f"Trusted {len(keys)} host key(s).")
            return redirect("jump_host", jump_host_id=jump_host.pk)
    except ValidationError as exc:
        assert action is not None  # only a named action reaches a service that refuses
        target = {"settings": form, "credential": secret_form, "known_hosts": known_hosts_form}[action]
        _form_errors(target, exc)
        jump_host.refresh_from_db()  # a failed full_clean left the edits on the instance
    context = {
        "jump_host": jump_host,
        "customer": jump_host.customer,
        "form": form,
        "secret_form": secret_form,
        "known_hosts_form": known_hosts_form,
        "host_keys": list(jump_host.host_keys.all()),
    }
    return render(request, "diagnostics/jump_host.html", context, status=400 if action else 200)


@login_required
@require_POST
def jump_host_key_decide(request: HttpRequest, jump_host_id: int, key_id: int) -> HttpResponse:
    access.collection_setup_access(user=request.user)
    key = get_object_or_404(JumpHostKey.objects.select_related("jump_host"), pk=key_id, jump_host_id=jump_host_id)
    trust = request.POST.get("decision") == "trust"
    if trust and key.status == HostKey.REVOKED:
        return HttpResponse("A revoked host key cannot be trusted again.", status=400, content_type="text/plain")
    services.jump_host_key_decide(key=key, trust=trust, by=request.user)
    messages.success(request, f"{'Trusted' if trust else 'Revoked'} {key.fingerprint}.")
    return redirect("jump_host", jump_host_id=jump_host_id)


@login_required
@require_GET
def playbook_list(request: HttpRequest) -> HttpResponse:
    access.collection_setup_access(user=request.user)
    return render(request, "diagnostics/playbooks.html", {"playbooks": Playbook.objects.order_by("name")})


@login_required
@require_http_methods(["GET", "POST"])
def playbook_edit(request: HttpRequest, playbook_id: int | None = None) -> HttpResponse:
    """A playbook's name and description, and its steps as rows (diagnostics/step_forms.py). A row button
    (``edit``) re-renders what was typed, rearranged, and saves nothing; Save checks every row."""
    access.collection_setup_access(user=request.user)
    playbook = get_object_or_404(Playbook, pk=playbook_id) if playbook_id else None
    if request.method == "GET":
        rows = step_forms.step_rows(initial=step_forms.rows_for(playbook.steps if playbook else []))
        return _playbook_page(request, playbook, forms.PlaybookForm(instance=playbook), rows)
    form = forms.PlaybookForm(request.POST, instance=playbook)
    rows = step_forms.step_rows(request.POST)
    if edit := request.POST.get("edit"):
        # Unbound copies of what was typed, so nothing is flagged before Save; the seen time typed is kept,
        # so a conflict is still caught at Save.
        form = forms.PlaybookForm(instance=playbook, initial=form.typed())
        rows = step_forms.step_rows(initial=step_forms.edited(rows.typed_rows(), edit))
        return _playbook_page(request, playbook, form, rows)
    valid = form.is_valid() & rows.is_valid()  # both, so every row's errors show at once
    if valid and form.stale():
        # Saved by someone else since this editor opened it: theirs beside yours, nothing saved; saving
        # again (the form now carries their save's time) puts yours over theirs, knowingly.
        assert playbook is not None  # only an existing playbook can be stale
        conflict = {
            "by": playbook.updated_by,
            "at": playbook.updated_at,
            "name": playbook.name,
            "description": playbook.description,
            "steps": step_forms.described(playbook.steps),
        }
        form = forms.PlaybookForm(request.POST, instance=playbook)
        form.data["seen_updated_at"] = playbook.updated_at.isoformat()  # type: ignore[index]  # a mutable copy
        form.is_valid()
        return _playbook_page(request, playbook, form, rows, conflict=conflict, status=409)
    if valid:
        data = form.cleaned_data
        try:
            saved = services.playbook_save(
                playbook=playbook or Playbook(),
                name=data["name"],
                description=data["description"],
                steps=rows.steps(),
                enabled=data["enabled"],
                by=request.user,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                if field == "steps":
                    rows.non_form_errors().extend(errors)
                else:
                    form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Playbook {saved.name} saved.")
            return redirect("playbooks")
    return _playbook_page(request, playbook, form, rows, status=400)


def _playbook_page(request, playbook, form, rows, *, conflict=None, status=200) -> HttpResponse:
    context = {
        "form": form,
        "rows": rows,
        "playbook": playbook,
        "conflict": conflict,
        "params_templates": step_forms.params_templates(),
        "max_steps": MAX_STEPS,
        # Read-only: the stored steps as data, for copying into the API or a ticket.
        "steps_json": json.dumps(playbook.steps, indent=2) if playbook else "",
    }
    return render(request, "diagnostics/playbook_edit.html", context, status=status)


@login_required
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    server_id = request.GET.get("server", "")
    entries = selectors.audit_log(user=request.user, server_id=int(server_id) if server_id.isdigit() else None)
    return render(request, "diagnostics/audit.html", {"entries": entries})


@login_required
@require_GET
def ticket_collections(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """The ticket page's collections table, polled while a run is going. The poll that finds
    every run finished also brings the ticket's suggested fixes (swapped out of band)."""
    access.ticket_access(user=request.user, action="view")
    ticket = get_object_or_404(Ticket, pk=ticket_id)
    runs = selectors.ticket_runs(ticket=ticket)
    live = selectors.ticket_live_runs(runs=runs)
    context = {"ticket": ticket, "runs": runs, "live": live}
    if not live:
        context.update(
            **selectors.ticket_fixes_panel(ticket=ticket),
            can_work=access.can_work_tickets(request.user),
            fixes_out_of_band=True,
        )
    return render(request, "diagnostics/_ticket_runs_table.html", context)
