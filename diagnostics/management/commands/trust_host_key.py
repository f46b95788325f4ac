from django.core.management.base import BaseCommand, CommandError

from diagnostics import services
from diagnostics.models import HostKey


class Command(BaseCommand):
    help = "Trust a server's host key by fingerprint (as shown when a run stopped on an unknown key)."

    def add_arguments(self, parser):
        parser.add_argument("server", type=int, help="server id")
        parser.add_argument("fingerprint", help="SHA256:... fingerprint")

    def handle(self, *args, server, fingerprint, **options):
        key = HostKey.objects.filter(server_id=server, fingerprint=fingerprint).first()
        if key is None:
            raise CommandError(f"server {server} has offered no key {fingerprint}")
        services.host_key_trust(host_key=key, by=None)
        self.stdout.write(f"trusted {key.key_type} {key.fingerprint} for server {server}")
