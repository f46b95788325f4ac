"""Load a living demo desk: customers, servers, staff and six months of tickets.

Every ticket is made through the same services the browser uses, at the
simulated time each step happened, so timelines, SLA clocks and breaches are
what the product itself would have recorded.
"""

from __future__ import annotations

import random
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from triage import access, services
from triage.models import Customer, Priority, Server, ServerRole, SlaTier, Status

CUSTOMERS = [
    # name, tier, contact, servers: (name, address, roles)
    ("Northwind Hosting", "Platinum", "ops@northwind.example", [
        ("mx1", "192.0.2.10", ["mail"]), ("mx2", "192.0.2.11", ["mail"]), ("web1", "192.0.2.20", ["web"])]),
    ("Blue Quartz Mail", "Gold", "admin@bluequartz.example", [
        ("mailgw", "198.51.100.5", ["mail"]), ("scanner", "198.51.100.6", ["mail", "antispam"])]),
    ("Fastcache Media", "Platinum", "noc@fastcache.example", [
        ("cache-ams-1", "203.0.113.31", ["cache"]), ("cache-ams-2", "203.0.113.32", ["cache"]),
        ("origin", "203.0.113.40", ["web"])]),
    ("Drj Law Partners", "Standard", "it@drjlaw.example", [("drjmailgw", "192.0.2.77", ["mail"])]),
    ("Harbour Retail", "Gold", "sysadmin@harbour.example", [
        ("shop-web", "198.51.100.80", ["web"]), ("shop-db", "198.51.100.81", ["db"])]),
    ("Pinecone Schools", "Standard", "helpdesk@pinecone.example", [("moodle", "203.0.113.90", ["web", "mail"])]),
]

# (subject, description, tags, server role it concerns, priority weights)
PROBLEMS = [
    ("Mail sits 30 seconds before sending",
     "Several users report that Outlook hangs for about 30 seconds after pressing Send, then the mail goes out.",
     ["mail", "slow-send"], "mail"),
    ("Outbound mail queue growing, connections hanging",
     "The queue has grown to 40k messages. Connections to one upstream seem to open and then hang forever.",
     ["mail", "queue"], "mail"),
    ("MailScanner stopped scanning after upgrade",
     "Since last night's upgrade MailScanner children take minutes to start and mail piles up.",
     ["mail", "mailscanner"], "mail"),
    ("Cache nodes keep sockets in CLOSE-WAIT",
     "Cancelled requests from our office stay around forever, sockets stuck in CLOSE-WAIT on the cache.",
     ["cache", "close-wait"], "cache"),
    ("SSH login takes a minute",
     "Logging in over SSH takes about a minute before the prompt appears; SMTP greeting is slow too.",
     ["dns", "slow-login"], "mail"),
    ("Inner interface stopped answering",
     "The internal NIC shows up and has the right IP but nothing answers ping. Kernel logged an IRQ message.",
     ["network", "nic"], "mail"),
    ("Website returns 502 intermittently",
     "Roughly one request in twenty returns a 502 from the load balancer since this morning.",
     ["web", "502"], "web"),
    ("Disk full on /var",
     "Monitoring says /var is at 100%. The application stopped writing logs.",
     ["disk"], "web"),
    ("Database connections refused at peak",
     "At lunch time the shop reports 'too many connections' from the database.",
     ["db", "connections"], "db"),
    ("TLS certificate warning in browsers",
     "Visitors see a certificate warning on the shop since the weekend.",
     ["tls"], "web"),
    ("Server rebooted unexpectedly",
     "The server rebooted at 03:12 with no maintenance planned. Please find out why.",
     ["reboot"], "web"),
    ("High load average, site slow",
     "Load average is above 30 and the site takes ten seconds to respond.",
     ["performance"], "web"),
]

REPLIES = [
    "Thanks for the report, we are looking at the server now.",
    "We collected diagnostics from the server and are reviewing them.",
    "Could you tell us the exact time of the last failure and the sender address?",
    "We applied a fix; please confirm whether the problem is gone.",
]
NOTES = [
    "strace on the smtpd child shows connect() blocking; checking which port.",
    "ss shows lots of sockets to the same peer; suspect upstream.",
    "Customer firewall drops port 113, classic ident timeout.",
    "Remounted /tmp exec for the test, MailScanner --lint is clean now.",
    "Escalating to network team for the upstream router.",
]


class Command(BaseCommand):
    help = "Load a realistic demo desk (idempotent: does nothing if the demo is already there unless --force)."

    def add_arguments(self, parser):
        parser.add_argument("--tickets", type=int, default=400)
        parser.add_argument("--days", type=int, default=182)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--password", default="", help="Password for the demo staff (default: generated)")
        parser.add_argument("--force", action="store_true", help="Add the demo tickets even if present")

    def handle(self, *args, tickets, days, seed, password, force, **options):
        if Customer.objects.filter(name=CUSTOMERS[0][0]).exists() and not force:
            self.stdout.write("demo desk already loaded; use --force to add more tickets")
            return
        rng = random.Random(seed)
        services.roles_ensure()
        services.sla_tiers_ensure()
        password = password or secrets.token_urlsafe(9)
        staff = self._staff(password)
        customers = self._customers()
        now = timezone.now()
        with transaction.atomic():  # one commit: far faster on SQLite, and all-or-nothing
            for i in range(tickets):
                self._ticket(rng=rng, customers=customers, techs=staff["techs"], now=now, days=days, index=i,
                             total=tickets)
        flagged = services.flag_sla_breaches(now=now)
        self.stdout.write(self.style.SUCCESS(
            f"demo desk: {len(customers)} customers, {tickets} tickets over {days} days, {flagged} SLA breaches; "
            f"staff alice, bob, carol, dave (tech) and maria (manager) with password: {password}"
        ))

    def _staff(self, password: str) -> dict:
        User = get_user_model()
        techs = []
        for name in ("alice", "bob", "carol", "dave"):
            user, created = User.objects.get_or_create(username=name, defaults={"first_name": name.title()})
            if created:
                user.set_password(password)
                user.save()
            services.user_set_roles(user=user, roles=[access.TECH])
            techs.append(user)
        manager, created = User.objects.get_or_create(username="maria", defaults={"first_name": "Maria"})
        if created:
            manager.set_password(password)
            manager.save()
        services.user_set_roles(user=manager, roles=[access.MANAGER])
        return {"techs": techs, "manager": manager}

    @transaction.atomic
    def _customers(self) -> list[Customer]:
        customers = []
        for name, tier, contact, servers in CUSTOMERS:
            customer, _ = Customer.objects.get_or_create(
                name=name, defaults={"sla_tier": SlaTier.objects.get(name=tier), "contact_email": contact}
            )
            for server_name, address, roles in servers:
                server, _ = Server.objects.get_or_create(customer=customer, name=server_name,
                                                         defaults={"address": address})
                server.roles.set([ServerRole.objects.get_or_create(name=r)[0] for r in roles])
            customers.append(customer)
        return customers

    def _ticket(self, *, rng, customers, techs, now, days, index, total):
        # Spread creation over the period, denser recently, and keep the newest ones open.
        age_fraction = (1 - index / total) ** 1.4
        created = now - timedelta(days=days * age_fraction, minutes=rng.randint(0, 600))
        customer = rng.choice(customers)
        subject, description, tags, role = rng.choice(PROBLEMS)
        servers = [s for s in customer.servers.all() if role in s.roles.values_list("name", flat=True)]
        priority = rng.choices([Priority.P1, Priority.P2, Priority.P3, Priority.P4], weights=[1, 3, 5, 2])[0]
        creator = rng.choice(techs)
        ticket = services.ticket_create(
            subject=subject, description=description, customer=customer, priority=priority,
            servers=servers[:1], tag_names=tags, created_by=creator, now=created,
        )
        clock = created
        horizon = now - timedelta(minutes=5)

        def step(minutes_low: int, minutes_high: int):
            nonlocal clock
            clock = clock + timedelta(minutes=rng.randint(minutes_low, minutes_high))
            return clock if clock < horizon else None

        # Age decides how far along the workflow a ticket has come.
        age_hours = (now - created).total_seconds() / 3600
        at = step(2, 90)
        if at is None:
            return
        assignee = rng.choice(techs)
        services.ticket_assign(ticket=ticket, assignee=assignee, by=creator, now=at)
        at = step(1, 30)
        if at is None:
            return
        services.ticket_change_status(ticket=ticket, status=Status.TRIAGING, by=assignee, now=at)
        if rng.random() < 0.9:
            at = step(5, 240)
            if at is None:
                return
            services.ticket_reply(ticket=ticket, author=assignee, body=rng.choice(REPLIES[:2]), now=at)
        at = step(10, 300)
        if at is None:
            return
        services.ticket_add_note(ticket=ticket, author=assignee, body=rng.choice(NOTES), now=at)
        if rng.random() < 0.35:
            at = step(5, 60)
            if at is None:
                return
            services.ticket_reply(ticket=ticket, author=assignee, body=REPLIES[2], now=at)
            services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=assignee, now=at)
            at = step(60, 1440)
            if at is None:
                return
            services.ticket_change_status(ticket=ticket, status=Status.TRIAGING, by=assignee, note="Customer answered.",
                                          now=at)
        if age_hours < 30 and rng.random() < 0.7:
            return  # recent tickets stay open so the queue has live work
        at = step(30, 2880)
        if at is None:
            return
        services.ticket_reply(ticket=ticket, author=assignee, body=REPLIES[3], now=at)
        services.ticket_change_status(ticket=ticket, status=Status.RESOLVED, by=assignee, now=at)
        at = step(1440, 4320)
        if at is not None:
            services.ticket_change_status(ticket=ticket, status=Status.CLOSED, by=assignee, now=at)
