"""The first admin: `make run` and docker-compose's one-shot `migrate` service call this on
every start, so it is idempotent (an existing user is left alone, password included)."""

import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from triage import access, users
from triage.env import env_str


class Command(BaseCommand):
    help = (
        "Create an admin user if it does not exist. The account comes from the options or "
        "TRIAGE_ADMIN_USERNAME, TRIAGE_ADMIN_EMAIL and TRIAGE_ADMIN_PASSWORD; without a password "
        "a random one is generated and printed once. The password validators apply."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=env_str("TRIAGE_ADMIN_USERNAME", "admin"))
        parser.add_argument("--email", default=env_str("TRIAGE_ADMIN_EMAIL", ""))
        parser.add_argument("--password", default=env_str("TRIAGE_ADMIN_PASSWORD", ""))

    @transaction.atomic
    def handle(self, *args, username, email, password, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"admin user {username!r} already exists; password unchanged")
            return
        generated = not password
        password = password or secrets.token_urlsafe(12)
        try:
            # The rules of every account (users.user_create): Django's password validators with the
            # account at hand, so one resembling its name or address is refused too.
            users.user_create(
                username=username, email=email, password=password, roles=[access.ADMIN, access.TECH], is_staff=True
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(
                    f"the admin {field} is refused: {' '.join(messages)}"
                    for field, messages in exc.message_dict.items()
                )
            ) from None
        if generated:
            self.stdout.write(self.style.WARNING(f"created admin {username!r} with password: {password}"))
        else:
            self.stdout.write(f"created admin {username!r} with the given password")
