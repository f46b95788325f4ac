"""Reads of the mail gateway."""

from __future__ import annotations

from django.db.models import QuerySet

from mailgate.models import Attachment, InboundMessage, MailRoute
from triage import access
from triage.models import Customer, Ticket


def ticket_attachments(*, ticket: Ticket) -> list[Attachment]:
    """The ticket's mail attachments without their bytes."""
    return list(Attachment.objects.filter(ticket=ticket).defer("content")
                .select_related("message").order_by("message__received_at", "id"))


def attachment_for_download(*, user, attachment_id: int) -> Attachment:
    """Raises PermissionDenied for users who may not read tickets, DoesNotExist for unknown or orphaned ones."""
    access.ticket_access(user=user, action="view")
    return Attachment.objects.get(pk=attachment_id, ticket__isnull=False)


def customer_routes(*, customer: Customer) -> QuerySet[MailRoute]:
    return MailRoute.objects.filter(customer=customer).order_by("kind", "value")


def inbound_recent(*, outcome: str | None = None, limit: int = 50) -> QuerySet[InboundMessage]:
    qs = InboundMessage.objects.defer("raw").select_related("ticket", "customer").order_by("-received_at", "-id")
    return (qs.filter(outcome=outcome) if outcome else qs)[:limit]
