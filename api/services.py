"""Writes for the API: tokens, and the monitoring one-call alert."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from api.models import AlertKey, ApiToken, hash_key
from diagnostics.models import CollectionRun, Playbook
from diagnostics.services import run_request
from triage import services as desk
from triage.models import OPEN_STATUSES, Customer, Server, Ticket

KEY_PREFIX = "tri_"
# last_used_at is a hint for people reviewing their tokens, not an audit log: one write a minute at most.
TOUCH_EVERY = timedelta(minutes=1)


def token_create(*, user, name: str, now: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token and its key; the key is not stored and cannot be shown again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip(), key_hash=hash_key(key), prefix=key[:12], created_at=now or timezone.now()
    )
    return token, key


def token_revoke(*, token: ApiToken, now: datetime | None = None) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = now or timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_authenticate(*, key: str, now: datetime | None = None) -> ApiToken | None:
    """The active token of an active user for ``key``, or None."""
    now = now or timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is not None and (token.last_used_at is None or token.last_used_at < now - TOUCH_EVERY):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@dataclass
class AlertOutcome:
    ticket: Ticket
    run: CollectionRun | None
    repeated: bool
    collection_error: str = ""


def _find_server(*, customer: Customer, server: str) -> Server:
    servers = customer.servers.all()
    found = servers.filter(name=server).first() or servers.filter(address__iexact=server).first()
    if found is None:
        raise ValidationError({"server": f"{customer.name} has no server named or addressed {server!r}."})
    return found


def _find_customer(value: str) -> Customer:
    customer = Customer.objects.filter(name__iexact=value.strip()).first()
    if customer is None and value.strip().isdigit():
        customer = Customer.objects.filter(pk=int(value)).first()
    if customer is None:
        raise ValidationError({"customer": f"No customer named {value!r}."})
    return customer


def _find_playbook(name: str | None) -> tuple[Playbook | None, str]:
    """The named playbook (an error if unusable), or the default one (a reason if there is none)."""
    if name:
        playbook = Playbook.objects.filter(name__iexact=name.strip()).first()
        if playbook is None or not playbook.enabled:
            raise ValidationError({"playbook": f"No enabled playbook named {name!r}."})
        return playbook, ""
    default = settings.TRIAGE_ALERT_PLAYBOOK
    playbook = Playbook.objects.filter(name=default, enabled=True).first()
    return playbook, "" if playbook else f"No collection requested: the default playbook {default!r} is missing."


def alert_receive(
    *,
    by,
    customer: str,
    server: str,
    subject: str,
    description: str,
    priority: int,
    playbook: str | None = None,
    dedupe_key: str = "",
    enqueue: bool = True,
) -> AlertOutcome:
    """File a ticket for a monitoring alert with its server linked and start a collection.

    With a dedupe key whose ticket is still open, the alert becomes a note on that
    ticket instead. The key's row is locked for the whole call, so two deliveries of
    the same alert at once still make one ticket.
    """
    found_customer = _find_customer(customer)
    found_server = _find_server(customer=found_customer, server=server)
    found_playbook, reason = _find_playbook(playbook)
    now = timezone.now()
    with transaction.atomic():
        alert_key = None
        if dedupe_key:
            AlertKey.objects.get_or_create(key=dedupe_key)
            alert_key = AlertKey.objects.select_for_update().get(key=dedupe_key)
            keyed = alert_key.ticket
            if keyed is not None and keyed.merged_into_id is not None:
                keyed = keyed.merged_into  # merged as a duplicate: its alerts go on on the survivor
            open_ticket = keyed if keyed and keyed.status in OPEN_STATUSES else None
            if open_ticket is not None:
                desk.ticket_add_note(
                    ticket=open_ticket,
                    author=by,
                    now=now,
                    body=f"Monitoring alert repeated ({dedupe_key}) for {found_server.name}: "
                    f"{subject}\n\n{description}",
                )
                alert_key.repeats += 1
                alert_key.last_alert_at = now
                alert_key.save(update_fields=["repeats", "last_alert_at"])
                return AlertOutcome(ticket=open_ticket, run=None, repeated=True)
        ticket = desk.ticket_create(
            subject=subject,
            description=description,
            customer=found_customer,
            priority=priority,
            servers=[found_server],
            created_by=by,
            now=now,
        )
        if alert_key is not None:
            alert_key.ticket, alert_key.last_alert_at, alert_key.repeats = ticket, now, 0
            alert_key.save(update_fields=["ticket", "last_alert_at", "repeats"])
        run = None
        if found_playbook is not None:
            run = run_request(ticket=ticket, server=found_server, playbook=found_playbook, by=by, enqueue=enqueue)
        return AlertOutcome(ticket=ticket, run=run, repeated=False, collection_error=reason)
