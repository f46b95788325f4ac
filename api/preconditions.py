"""A ticket change from a client that read an older version of the ticket is refused, as the browser
refuses a form posted from a stale page (triage.services, TicketChanged).

Ticket reads carry the version twice: the body's ``version`` and a weak ETag, ``W/"<version>"``. A
change honours either, checked under the ticket's row lock before anything is changed:

- ``If-Match: W/"<version>"`` (or the strong ``"<version>"``): on a mismatch, 412 Precondition Failed;
- ``"version": <version>`` in the body: on a mismatch, 409 Conflict;

both with what changed since and by whom (triage.selectors.ticket_changes_since, the browser's
conflict message's source). Without either the change is applied: clients that want the check send
If-Match.

The ETag is weak because the body can change without the version moving: the machine's own timeline
records (SLA, collections) do not move it, as they change nothing a client could overwrite. If-Match
asks for a strong comparison (RFC 9110 13.1.1), but here the tag names the version, not the bytes, so
both forms are compared on the version alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from api import serializers as s
from triage import selectors, services
from triage.models import Ticket

T = TypeVar("T")

ENTITY_TAG = re.compile(r'(?:W/)?"(\d{1,18})"')

IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description='The ticket\'s ETag as you read it (W/"<version>"): if the ticket has changed since, nothing '
    "is changed and the answer is 412 with what changed and by whom. Without it (and without "
    "`version` in the body) the change is applied whatever changed meanwhile.",
)
ETAG = OpenApiParameter(
    "ETag",
    str,
    OpenApiParameter.HEADER,
    response=[200],
    description='W/"<version>": the ticket\'s version, to send back as If-Match with a change.',
)
CONFLICT_RESPONSES = {409: s.TicketConflictSerializer, 412: s.TicketConflictSerializer}


def etag(ticket: Ticket) -> str:
    return f'W/"{ticket.version}"'


def if_match(request: Request) -> int | None:
    """The version an If-Match header names; None without one, or for ``*`` (any version will do)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = ENTITY_TAG.fullmatch(header.strip())
    if match is None:
        raise exceptions.ValidationError(
            {"If-Match": ['Send one entity tag, as the ticket\'s ETag gave it: W/"<version>".']}
        )
    return int(match.group(1))


class Stale(exceptions.APIException):
    """The change was refused because the ticket changed; ``answer`` is the 409 or 412 to send."""

    def __init__(self, answer: Response):
        super().__init__("the ticket changed")
        self.answer = answer


def conflict_answer(*, ticket: Ticket, seen: int, code: int) -> Response:
    ticket = Ticket.objects.get(pk=ticket.pk)
    changes = selectors.ticket_changes_since(ticket=ticket, version=seen)
    changed_by = selectors.ticket_changers(changes)
    body = {
        "detail": f"Not changed: the ticket changed after version {seen} (it is now version {ticket.version})"
        + (f", by {', '.join(changed_by)}" if changed_by else "")
        + ". Read it again and re-apply your change if it still stands.",
        "seen_version": seen,
        "version": ticket.version,
        "changed_by": changed_by,
        "changes": s.ChangeSerializer(changes, many=True).data,
    }
    return Response(body, status=code, headers={"ETag": etag(ticket)})


def change_checked(request: Request, *, ticket: Ticket, body_version: int | None, change: Callable[[], T]) -> T:
    """Run ``change`` in one transaction once the ticket is locked and at the version the client
    sent (If-Match first, then the body's); raises Stale, with nothing changed, when it is not."""
    checks = [
        (seen, code)
        for seen, code in (
            (if_match(request), status.HTTP_412_PRECONDITION_FAILED),
            (body_version, status.HTTP_409_CONFLICT),
        )
        if seen is not None
    ]
    with transaction.atomic():
        for seen, code in checks:
            try:
                services.ticket_check_version(ticket=ticket, expected_version=seen)
            except services.TicketChanged:
                stale = (seen, code)
                break
        else:
            return change()
    raise Stale(conflict_answer(ticket=ticket, seen=stale[0], code=stale[1]))
