import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from triage import access, services


class Command(BaseCommand):
    help = (
        "Create an admin user if it does not exist. The password comes from --password or "
        "TRIAGE_ADMIN_PASSWORD; otherwise a random one is generated and printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("TRIAGE_ADMIN_USER", "admin"))
        parser.add_argument("--email", default=os.environ.get("TRIAGE_ADMIN_EMAIL", ""))
        parser.add_argument("--password", default=os.environ.get("TRIAGE_ADMIN_PASSWORD", ""))

    @transaction.atomic
    def handle(self, *args, username, email, password, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"admin user {username!r} already exists; password unchanged")
            return
        if password and len(password) < 10:
            raise CommandError("the admin password must be at least 10 characters")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        user = User.objects.create_user(username=username, email=email, password=password, is_staff=True)
        services.user_set_roles(user=user, roles=[access.ADMIN, access.TECH])
        if generated:
            self.stdout.write(self.style.WARNING(f"created admin {username!r} with password: {password}"))
        else:
            self.stdout.write(f"created admin {username!r} with the given password")
