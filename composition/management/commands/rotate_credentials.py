from django.core.management.base import BaseCommand

from diagnostics import services
from mailgate import mailbox_services
from webhooks import services as webhooks


class Command(BaseCommand):
    help = (
        "Re-encrypt everything stored under CREDENTIALS_KEYS (SSH credentials, jump hosts, mailbox "
        "passwords, webhook secrets) under the first key."
    )

    def handle(self, *args, **options):
        # Every user of triage.crypto: a kind left out here is unreadable once the old key goes.
        counts = {
            "SSH credential(s)": services.credentials_rotate() + services.jump_hosts_rotate(),
            "mailbox password(s)": mailbox_services.mailbox_passwords_rotate(),
            "webhook secret(s)": webhooks.endpoint_secrets_rotate(),
        }
        done = ", ".join(f"{count} {what}" for what, count in counts.items())
        self.stdout.write(
            f"re-encrypted {done} under the newest key; older keys can now be removed from CREDENTIALS_KEYS"
        )
