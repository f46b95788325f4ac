"""Writes of a customer's contacts.

An address is one contact's at most (any case), and never a contact of one customer while an
address route gives it to another: mail from it must have one owner (mailgate.selectors.route_customer;
mailgate answers through the desk's extension point, triage.extensions.address_claim).
Removing a contact takes them off the tickets that name them (see contact_remove)."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from triage import extensions
from triage import services as desk
from triage.models import OPEN_STATUSES, Contact, Customer, Ticket


def _clean_address(*, email: str, customer: Customer, contact: Contact | None = None) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid e-mail address."}) from None
    clash = Contact.objects.filter(email__iexact=email).select_related("customer")
    if contact is not None:
        clash = clash.exclude(pk=contact.pk)
    owner = clash.first()
    if owner is not None:
        raise ValidationError({"email": f"{email} is already a contact of {owner.customer.name}."})
    claim = extensions.address_claim(email=email, customer=customer)
    if claim is not None:
        raise ValidationError({"email": claim})
    return email


def _saved(contact: Contact) -> Contact:
    contact.full_clean(exclude=["customer"], validate_constraints=False)
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError:
        # Another request took the address between the check and the save.
        raise ValidationError({"email": f"{contact.email} is already a contact."}) from None
    return contact


def contact_create(
    *, customer: Customer, email: str, name: str = "", phone: str = "", now: datetime | None = None
) -> Contact:
    email = _clean_address(email=email, customer=customer)
    return _saved(
        Contact(
            customer=customer,
            email=email,
            name=name.strip()[:200],
            phone=phone.strip()[:40],
            created_at=now or timezone.now(),
        )
    )


def contact_update(*, contact: Contact, email: str, name: str = "", phone: str = "") -> Contact:
    contact.email = _clean_address(email=email, customer=contact.customer, contact=contact)
    contact.name, contact.phone = name.strip()[:200], phone.strip()[:40]
    return _saved(contact)


@transaction.atomic
def contact_remove(*, contact: Contact, by, now: datetime | None = None) -> int:
    """Remove a contact; returns on how many open tickets they were requester or copied.

    Removing is never refused, even for a requester: a person who left the customer must stop
    getting mail at once, not after a tech has edited each of their tickets. Each open ticket
    that named them records the change on its timeline (ticket_set_people); closed tickets just
    lose the link (their history keeps the address)."""
    now = now or timezone.now()
    tickets = (
        Ticket.objects.filter(Q(requester=contact) | Q(ccs=contact), status__in=OPEN_STATUSES).distinct().order_by("pk")
    )
    touched = 0
    for ticket in tickets.select_related("customer", "requester"):
        requester = None if ticket.requester_id == contact.pk else ticket.requester
        ccs = [c for c in ticket.ccs.all() if c.pk != contact.pk]
        desk.ticket_set_people(ticket=ticket, requester=requester, ccs=ccs, by=by, now=now)
        touched += 1
    contact.delete()
    return touched
