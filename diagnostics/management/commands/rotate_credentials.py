from django.core.management.base import BaseCommand

from diagnostics import services


class Command(BaseCommand):
    help = "Re-encrypt every stored SSH credential (jump hosts' too) under the first key in CREDENTIALS_KEYS."

    def handle(self, *args, **options):
        count = services.credentials_rotate() + services.jump_hosts_rotate()
        self.stdout.write(
            f"re-encrypted {count} credential(s) under the newest key; "
            "older keys can now be removed from CREDENTIALS_KEYS"
        )
