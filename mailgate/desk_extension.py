"""Mailgate's parts of the desk (registered in MailgateConfig.ready; see triage.extensions): keeping
the files a tech attaches in the browser (Attachment rows, as mail attachments are: upload_services),
the macros' {{requester}} for a ticket opened by mail, and the contact services' refusal of an
address that a mail route gives to another customer."""

from __future__ import annotations

from mailgate import selectors, upload_services
from mailgate.models import MailRoute, RouteKind
from triage.extensions import DeskExtension
from triage.models import Customer


def address_claim(*, email: str, customer: Customer) -> str | None:
    """Mail from an address must have one owner (selectors.route_customer): an address route to
    another customer keeps the address from being ``customer``'s contact."""
    route = (
        MailRoute.objects.filter(kind=RouteKind.ADDRESS, value=email)
        .exclude(customer=customer)
        .select_related("customer")
        .first()
    )
    return None if route is None else f"{email} is routed to {route.customer.name} (a mail route)."


EXTENSION = DeskExtension(
    placeholders=lambda *, ticket: {"requester": selectors.ticket_requester(ticket=ticket)},
    address_claim=address_claim,
    uploads_check=upload_services.uploads_check,
    attachments_store=upload_services.attachments_store,
)
