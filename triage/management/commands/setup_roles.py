from django.core.management.base import BaseCommand

from triage import services


class Command(BaseCommand):
    help = "Create the tech, admin and manager roles and the default SLA tiers (idempotent)."

    def handle(self, *args, **options):
        groups = services.roles_ensure()
        tiers = services.sla_tiers_ensure()
        self.stdout.write(f"roles: {', '.join(g.name for g in groups)}; SLA tiers: {', '.join(t.name for t in tiers)}")
