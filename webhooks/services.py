"""Writes for webhooks: endpoints, recording events as deliveries, and sending one attempt.

Deliveries are rows first: an event creates its Delivery rows inside the writer's transaction
and they are handed to the broker on commit, so a rolled-back write sends nothing and a broker
that does not answer loses nothing (``deliveries_requeue_due`` sends them again from beat).
Delivery is at least once: a receiver dedupes on the X-Triage-Delivery id.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from triage import crypto
from webhooks import addresses, signing, transport
from webhooks.models import PING, Delivery, DeliveryState, Endpoint, EventType

log = logging.getLogger(__name__)

USER_AGENT = "Triage-Webhooks/1"
ERROR_CHARS = 500


# --- Endpoints ----------------------------------------------------------------------------


def _check_event_types(event_types: list[str]) -> list[str]:
    unknown = set(event_types) - set(EventType.values)
    if unknown:
        raise ValidationError({"event_types": f"Unknown event types: {', '.join(sorted(unknown))}."})
    return sorted(set(event_types))


def _check_target(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, a non-public address (webhooks/addresses.py).
    A name that does not resolve yet is let through: each delivery checks again."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return  # the URL validator explains
    try:
        addresses.checked_addresses(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            allow_private=settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE,
        )
    except addresses.Refused as exc:
        raise ValidationError({"url": str(exc)}) from None
    except (OSError, UnicodeError, ValueError):
        pass


@transaction.atomic
def endpoint_create(
    *, name: str, url: str, event_types: list[str], enabled: bool = True, customer=None, by=None
) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret; the secret is returned once and stored only encrypted."""
    secret = signing.new_secret()
    endpoint = Endpoint(
        name=name.strip(),
        url=url.strip(),
        event_types=_check_event_types(event_types),
        enabled=enabled,
        customer=customer,
        created_by=by,
        secret_token=crypto.encrypt(secret),
    )
    endpoint.full_clean()
    _check_target(endpoint.url)
    endpoint.save()
    return endpoint, secret


@transaction.atomic
def endpoint_update(
    *, endpoint: Endpoint, name: str, url: str, event_types: list[str], enabled: bool, customer=None
) -> Endpoint:
    endpoint.name, endpoint.url, endpoint.customer = name.strip(), url.strip(), customer
    endpoint.event_types = _check_event_types(event_types)
    if enabled and not endpoint.enabled:
        endpoint.disabled_reason = ""
    endpoint.enabled = enabled
    endpoint.full_clean()
    _check_target(endpoint.url)
    endpoint.save()
    return endpoint


def endpoint_rotate_secret(*, endpoint: Endpoint, now: datetime | None = None) -> str:
    """A new secret, effective for every attempt from now on (including pending retries)."""
    secret = signing.new_secret()
    Endpoint.objects.filter(pk=endpoint.pk).update(
        secret_token=crypto.encrypt(secret), secret_rotated_at=now or timezone.now()
    )
    return secret


def endpoint_secrets_rotate() -> int:
    """Re-encrypt every endpoint's signing secret under the newest credentials key (`rotate_credentials`).
    The secret itself is unchanged (receivers verify as before), so secret_rotated_at stays as it is."""
    return crypto.rotate_rows(Endpoint.objects.all(), ["secret_token"])


def endpoint_send_test(*, endpoint: Endpoint, by=None) -> Delivery:
    if not endpoint.enabled:
        raise ValidationError("This endpoint is disabled; enable it before sending a test event.")
    data = {
        "endpoint": endpoint.name,
        "message": "A test event from the triage desk.",
        "sent_by": by.get_username() if by else None,
    }
    with transaction.atomic():
        return _create_deliveries(event_type=PING, data=data, endpoints=[endpoint])[0]


# --- Recording events -------------------------------------------------------------------------


def subscribed_endpoints(*, event_type: str, customer_id: int | None) -> list[Endpoint]:
    # Few rows, and SQLite cannot query inside a JSON list: filter the subscription here.
    scoped = Endpoint.objects.filter(enabled=True).filter(Q(customer__isnull=True) | Q(customer_id=customer_id))
    return [e for e in scoped if event_type in e.event_types]


def _envelope(*, event_type: str, data: dict, event_id, now: datetime) -> dict:
    return {"id": str(event_id), "type": event_type, "created_at": now.isoformat(), "data": data}


def _create_deliveries(*, event_type: str, data: dict, endpoints: list[Endpoint]) -> list[Delivery]:
    now = timezone.now()
    deliveries = []
    for endpoint in endpoints:
        delivery = Delivery(endpoint=endpoint, event_type=event_type, next_attempt_at=now, created_at=now)
        delivery.payload = _envelope(event_type=event_type, data=data, event_id=delivery.event_id, now=now)
        deliveries.append(delivery)
    Delivery.objects.bulk_create(deliveries)
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: [delivery_enqueue(delivery_id=pk) for pk in ids])
    return deliveries


def events_record(*, event_type: str, data: dict, endpoints: list[Endpoint]) -> list[Delivery]:
    """One pending Delivery per endpoint, in the caller's transaction; each is enqueued on commit."""
    if not endpoints:
        return []
    return _create_deliveries(event_type=event_type, data=data, endpoints=endpoints)


# --- Queueing ---------------------------------------------------------------------------------


def delivery_enqueue(*, delivery_id: int, countdown: float = 0) -> bool:
    """Hand a delivery to the broker; bounded, and harmless to repeat (the task claims the row)."""
    from webhooks import tasks

    try:
        tasks.deliver.apply_async(args=[delivery_id], countdown=countdown or None, retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the row pending for the sweeper
        log.warning("could not enqueue webhook delivery %s: %s", delivery_id, exc)
        return False
    return True


def _unclaimed_due(now: datetime):
    """Pending, due and not held by a live worker: conditions on the delivery row alone."""
    return Delivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    )


def _due(now: datetime):
    # Disabled endpoints hold their pending deliveries until they are enabled again.
    return _unclaimed_due(now).filter(endpoint__enabled=True)


def deliveries_requeue_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Enqueue pending deliveries whose time has come (lost to a broker hiccup, or a long backoff)."""
    ids = list(_due(now or timezone.now()).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    return sum(delivery_enqueue(delivery_id=pk) for pk in ids)


@transaction.atomic
def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Send a finished delivery again as a new row with the same event id (receivers may dedupe on it)."""
    if delivery.state == DeliveryState.PENDING:
        raise ValidationError("This delivery is still pending; it will be sent automatically.")
    copy = Delivery.objects.create(
        endpoint=delivery.endpoint,
        event_type=delivery.event_type,
        event_id=delivery.event_id,
        payload=delivery.payload,
        redelivery_of=delivery,
    )
    transaction.on_commit(lambda: delivery_enqueue(delivery_id=copy.pk))
    return copy


# --- Sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    state: str
    retry_in: float | None  # seconds until the next attempt, when one is planned


def delivery_claim(*, delivery_id: int, now: datetime) -> bool:
    """Take a due delivery for this worker (conditional UPDATE: 0 rows means someone else has it
    or it is not due). The lease outlives one bounded attempt, so a worker that dies mid-send
    lets the row go to the sweeper instead of holding it for ever."""
    lease = settings.TRIAGE_WEBHOOK_TOTAL_TIMEOUT + 30
    if not Delivery.objects.filter(pk=delivery_id, endpoint__enabled=True).exists():
        return False
    # Only the row's own columns in the UPDATE: a join would become "id IN (subquery)", which
    # PostgreSQL does not re-check after waiting on the row lock, so every racer would win.
    return bool(
        _unclaimed_due(now)
        .filter(pk=delivery_id)
        .update(locked_until=now + timedelta(seconds=lease), attempts=F("attempts") + 1, last_attempt_at=now)
    )


def backoff_seconds(attempt: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: half the doubled delay fixed, half random, capped."""
    ceiling = min(settings.TRIAGE_WEBHOOK_BACKOFF_MAX, settings.TRIAGE_WEBHOOK_BACKOFF_BASE * 2 ** (attempt - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def retry_after_seconds(value: str | None, *, now: datetime) -> float | None:
    """Retry-After as seconds (delta or HTTP date), bounded to [1, TRIAGE_WEBHOOK_RETRY_AFTER_MAX]."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = (email.utils.parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 1.0), float(settings.TRIAGE_WEBHOOK_RETRY_AFTER_MAX))


def request_for(delivery: Delivery, *, secret: str, timestamp: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Triage-Event": delivery.event_type,
        "X-Triage-Delivery": str(delivery.event_id),
        "X-Triage-Timestamp": str(timestamp),
        "X-Triage-Signature": signing.sign(secret=secret, timestamp=timestamp, body=body),
    }
    return body, headers


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> Attempt | None:
    """Send one attempt of a due delivery and record what came of it.

    Returns None when the delivery is not ours to send (not due, delivered, or claimed by
    another worker). 2xx delivers; 410 disables the endpoint; 408, 429, 5xx and network
    faults are retried with backoff until TRIAGE_WEBHOOK_MAX_ATTEMPTS; any other answer is
    final, since the same signed request would get the same answer (an admin can redeliver).
    """
    now = now or timezone.now()
    if not delivery_claim(delivery_id=delivery_id, now=now):
        return None
    delivery = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    try:
        secret = endpoint.secret()
    except crypto.CredentialUnreadable as exc:
        return _record(delivery, state=DeliveryState.FAILED, error=f"Cannot sign: {exc}.", response=None)

    body, headers = request_for(delivery, secret=secret, timestamp=int(time.time()))
    response = transport.post(
        url=endpoint.url,
        body=body,
        headers=headers,
        connect_timeout=settings.TRIAGE_WEBHOOK_CONNECT_TIMEOUT,
        read_timeout=settings.TRIAGE_WEBHOOK_READ_TIMEOUT,
        total_timeout=settings.TRIAGE_WEBHOOK_TOTAL_TIMEOUT,
        allow_private=settings.TRIAGE_WEBHOOK_ALLOW_PRIVATE,
    )
    status = response.status
    if response.refused:
        return _record(delivery, state=DeliveryState.FAILED, error=f"Not sent: {response.error}", response=response)
    if status is not None and 200 <= status < 300:
        return _record(delivery, state=DeliveryState.DELIVERED, error="", response=response)
    if status == 410:
        reason = f"The receiver answered 410 Gone on {timezone.now():%Y-%m-%d %H:%M} UTC; endpoint disabled."
        Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason)
        return _record(delivery, state=DeliveryState.FAILED, error=reason, response=response)
    if status is None or status in (408, 429) or status >= 500:
        error = response.error or f"HTTP {status} {response.reason}".rstrip()
        if delivery.attempts >= settings.TRIAGE_WEBHOOK_MAX_ATTEMPTS:
            return _record(
                delivery,
                state=DeliveryState.GAVE_UP,
                error=f"{error}; gave up after {delivery.attempts} attempts.",
                response=response,
            )
        wait = retry_after_seconds(response.headers.get("retry-after"), now=now) if status == 429 else None
        wait = wait if wait is not None else backoff_seconds(delivery.attempts)
        return _record(
            delivery,
            state=DeliveryState.PENDING,
            error=f"{error}; retrying in {wait:.0f} s.",
            response=response,
            retry_at=now + timedelta(seconds=wait),
            retry_in=wait,
        )
    if 300 <= status < 400:
        where = transport.printable(response.headers.get("location", ""), 200)
        error = f"HTTP {status}: redirects are not followed (to {where!r}); update the endpoint's URL."
    else:
        error = (
            f"HTTP {status} {response.reason}: the receiver refused the request; not retried "
            "(the same request gets the same answer)."
        )
    return _record(delivery, state=DeliveryState.FAILED, error=error, response=response)


def _record(
    delivery: Delivery,
    *,
    state: str,
    error: str,
    response: transport.Response | None,
    retry_at: datetime | None = None,
    retry_in: float | None = None,
) -> Attempt:
    fields: dict[str, object] = {
        "state": state,
        "locked_until": None,
        "last_error": error[:ERROR_CHARS],
        "last_status": response.status if response else None,
        "response_excerpt": "",  # what a receiver says is never kept or shown (webhooks/transport.py)
        "last_duration": round(response.duration, 3) if response else None,
    }
    if retry_at is not None:
        fields["next_attempt_at"] = retry_at
    if state == DeliveryState.DELIVERED:
        fields["delivered_at"] = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    return Attempt(state=state, retry_in=retry_in)
