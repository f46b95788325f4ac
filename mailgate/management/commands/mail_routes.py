"""List, add or remove the addresses and domains whose mail belongs to a customer."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from mailgate import selectors, services
from triage.models import Customer


class Command(BaseCommand):
    help = "Show a customer's mail routes; --add / --remove an address or domain."

    def add_arguments(self, parser):
        parser.add_argument("customer", help="customer name")
        parser.add_argument("--add", action="append", default=[], metavar="ADDRESS_OR_DOMAIN")
        parser.add_argument("--remove", action="append", default=[], metavar="ADDRESS_OR_DOMAIN")

    def handle(self, *args, customer, add, remove, **options):
        try:
            customer = Customer.objects.get(name=customer)
        except Customer.DoesNotExist:
            raise CommandError(f"no customer named {customer!r}") from None
        for value in add:
            try:
                services.mail_route_add(customer=customer, value=value)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
        for value in remove:
            if not services.mail_route_remove(customer=customer, value=value):
                raise CommandError(f"{value} is not a route of {customer.name}")
        for contact in customer.contacts.all():
            self.stdout.write(f"address  {contact.email}  (contact)")
        for route in selectors.customer_routes(customer=customer):
            self.stdout.write(f"{route.kind:<8} {route.value}")
