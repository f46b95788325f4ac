from django.core.management.base import BaseCommand

from diagnostics import services as collection
from triage import services, users


class Command(BaseCommand):
    help = "Create the tech, admin and manager roles, the default SLA tiers and playbooks (idempotent)."

    def handle(self, *args, **options):
        groups = users.roles_ensure()
        tiers = services.sla_tiers_ensure()
        playbooks = collection.playbooks_ensure()
        self.stdout.write(
            f"roles: {', '.join(g.name for g in groups)}; SLA tiers: {', '.join(t.name for t in tiers)}"
            f"; playbooks: {', '.join(p.name for p in playbooks)}"
        )
