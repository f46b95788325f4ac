"""Load a living demo desk: customers, servers, staff and six months of tickets.

Every ticket is made through the same services the browser uses, at the
simulated time each step happened, so timelines, SLA clocks and breaches are
what the product itself would have recorded. Most tickets also get collections:
finished runs holding real recorded probe outputs (``triage/demo_evidence/``),
some failed the ways real runs fail (credential refused, changed host key,
timeouts, unreachable hosts), matched by the real matcher, and the techs'
verdicts on the suggested fixes (accepted, rejected, fixed the ticket), so
every dashboard has a story to tell on the first ``make run``.
"""

from __future__ import annotations

import functools
import hashlib
import random
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from diagnostics import probes
from diagnostics.knowledge import matcher, outcomes
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import AuditEntry, CollectionRun, Evidence, Match, Playbook, RecipeOutcome, RunState, Symptom
from diagnostics.services.playbooks import playbooks_ensure
from triage import access, events, services, users
from triage.models import (
    BusinessCalendar,
    Contact,
    Customer,
    EventKind,
    Priority,
    Server,
    SlaTier,
    Status,
    Ticket,
)

OFFICE_HOURS: dict[str, Any] = {
    "name": "Berlin office",
    "time_zone": "Europe/Berlin",
    "weekly_hours": {day: ["08:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": [
        {"date": day, "name": name}
        for day, name in (
            ("2026-01-01", "New Year's Day"),
            ("2026-04-03", "Good Friday"),
            ("2026-04-06", "Easter Monday"),
            ("2026-05-01", "Labour Day"),
            ("2026-05-14", "Ascension Day"),
            ("2026-05-25", "Whit Monday"),
            ("2026-10-03", "German Unity Day"),
            ("2026-12-24", "Christmas Eve"),
            ("2026-12-25", "Christmas Day"),
            ("2026-12-26", "Boxing Day"),
            ("2026-12-31", "New Year's Eve"),
            ("2027-01-01", "New Year's Day"),
        )
    ],
}

CUSTOMERS = [
    # name, tier, contact, servers: (name, address, roles)
    (
        "Northwind Hosting",
        "Platinum",
        "ops@northwind.example",
        [("mx1", "192.0.2.10", ["mail"]), ("mx2", "192.0.2.11", ["mail"]), ("web1", "192.0.2.20", ["web"])],
    ),
    (
        "Blue Quartz Mail",
        "Gold",
        "admin@bluequartz.example",
        [("mailgw", "198.51.100.5", ["mail"]), ("scanner", "198.51.100.6", ["mail", "antispam"])],
    ),
    (
        "Fastcache Media",
        "Platinum",
        "noc@fastcache.example",
        [
            ("cache-ams-1", "203.0.113.31", ["cache"]),
            ("cache-ams-2", "203.0.113.32", ["cache"]),
            ("origin", "203.0.113.40", ["web"]),
        ],
    ),
    ("Drj Law Partners", "Standard", "it@drjlaw.example", [("drjmailgw", "192.0.2.77", ["mail"])]),
    (
        "Harbour Retail",
        "Gold",
        "sysadmin@harbour.example",
        [("shop-web", "198.51.100.80", ["web"]), ("shop-db", "198.51.100.81", ["db"])],
    ),
    ("Pinecone Schools", "Standard", "helpdesk@pinecone.example", [("moodle", "203.0.113.90", ["web", "mail"])]),
]

# (subject, description, tags, server role it concerns, playbook a tech would run,
#  scenarios: folders of triage/demo_evidence/ whose recorded outputs show a cause)
PROBLEMS = [
    (
        "Mail sits 30 seconds before sending",
        "Several users report that Outlook hangs for about 30 seconds after pressing Send, then the mail goes out.",
        ["mail", "slow-send"],
        "mail",
        "Mail is slow to send",
        ("ident-tcpserver", "ident-tcpserver", "dead-resolvers"),
    ),
    (
        "Outbound mail queue growing, connections hanging",
        "The queue has grown to 40k messages. Connections to one upstream seem to open and then hang forever.",
        ["mail", "queue"],
        "mail",
        "Mail queue growing",
        ("mail-queue-stuck", "greylisting-deferral-storm", "mail-insufficient-storage"),
    ),
    (
        "MailScanner stopped scanning after upgrade",
        "Since last night's upgrade MailScanner children take minutes to start and mail piles up.",
        ["mail", "mailscanner"],
        "mail",
        "Mail scanner broken",
        ("tmp-noexec",),
    ),
    (
        "Cache nodes keep sockets in CLOSE-WAIT",
        "Cancelled requests from our office stay around forever, sockets stuck in CLOSE-WAIT on the cache.",
        ["cache", "close-wait"],
        "cache",
        "Connections piling up",
        ("close-wait", "close-wait", "time-wait-storm", "accept-queue-backlog"),
    ),
    (
        "SSH login takes a minute",
        "Logging in over SSH takes about a minute before the prompt appears; SMTP greeting is slow too.",
        ["dns", "slow-login"],
        "mail",
        "Slow logins",
        ("dead-resolvers",),
    ),
    (
        "Inner interface stopped answering",
        "The internal NIC shows up and has the right IP but nothing answers ping. Kernel logged an IRQ message.",
        ["network", "nic"],
        "mail",
        "Network interface down",
        ("bnx2-irq",),
    ),
    (
        "Website returns 502 intermittently",
        "Roughly one request in twenty returns a 502 from the load balancer since this morning.",
        ["web", "502"],
        "web",
        "Host health",
        ("php-fpm-max-children", "nginx-worker-connections", "apache-max-request-workers", "daemon-segfaults"),
    ),
    (
        "Disk full on /var",
        "Monitoring says /var is at 100%. The application stopped writing logs.",
        ["disk"],
        "web",
        "Host health",
        ("disk-full", "disk-full", "inodes-full"),
    ),
    (
        "Database connections refused at peak",
        "At lunch time the shop reports 'too many connections' from the database.",
        ["db", "connections"],
        "db",
        "Connections piling up",
        ("mysql-too-many-connections", "upstream-fd"),
    ),
    (
        "TLS certificate warning in browsers",
        "Visitors see a certificate warning on the shop since the weekend.",
        ["tls"],
        "web",
        "Host health",
        ("tls-certificate-expired", "tls-handshake-failures"),
    ),
    (
        "Server rebooted unexpectedly",
        "The server rebooted at 03:12 with no maintenance planned. Please find out why.",
        ["reboot"],
        "web",
        "Host health",
        ("oom-killer", "kernel-soft-lockup", "kernel-hung-tasks"),
    ),
    (
        "High load average, site slow",
        "Load average is above 30 and the site takes ten seconds to respond.",
        ["performance"],
        "web",
        "Host health",
        ("load-above-cpus", "swap-storm", "oom-killer"),
    ),
]

EVIDENCE_DIR = Path(__file__).resolve().parents[3] / "triage" / "demo_evidence"
HEALTHY = "healthy-web"  # a run that found nothing the knowledge base knows
# Probes whose parameters are required: what a tech would have typed for each scenario.
PROBE_PARAMS: dict[str | tuple[str, str], dict[str, Any]] = {
    "strace": {"process": "tcpserver", "seconds": 30},
    ("apache-max-request-workers", "log_tail"): {"log_path": "/var/log/apache2/error.log"},
    ("nginx-worker-connections", "log_tail"): {"log_path": "/var/log/nginx/error.log"},
    ("php-fpm-max-children", "log_tail"): {"log_path": "/var/log/syslog"},
    ("mysql-too-many-connections", "log_tail"): {"log_path": "/var/log/apache2/error.log"},
}

# How collections fail, in the product's own words (diagnostics.ssh): kind, reason.
FAILURES = {
    "auth_failed": "Authentication refused for root: check the stored credential and the account on the server.",
    "host_key_changed": (
        "Host key changed: the server offered {fingerprint}, which is not the pinned key; refusing to connect."
    ),
    "handshake": "SSH key exchange did not finish within 15 s (the server sent a banner, then went silent).",
    "unreachable": "Unreachable: connect timed out after 5 s.",
}
# Each customer's odds of a failed collection, and which failures it tends to have: a law firm
# behind a firewall that drops us, a school whose admins rotate passwords, a shop that rebuilt a server.
CUSTOMER_FAILURES = {
    "Drj Law Partners": (0.35, {"unreachable": 6, "handshake": 2, "auth_failed": 1}),
    "Pinecone Schools": (0.30, {"auth_failed": 6, "unreachable": 1, "handshake": 1}),
    "Harbour Retail": (0.18, {"host_key_changed": 4, "auth_failed": 1}),
}
DEFAULT_FAILURES = (0.06, {"handshake": 2, "unreachable": 1, "auth_failed": 1, "host_key_changed": 1})
REJECT_REASONS = [
    "Customer runs Exim here, not tcpserver.",
    "Already checked: the limit is not the problem on this host.",
    "The logs are from before the upgrade; not current.",
    "",
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


@functools.cache
def scenario_outputs(scenario: str) -> tuple[tuple[str, bytes], ...]:
    """(probe, recorded stdout) of one scenario folder, in probe order; read once per process."""
    return tuple((path.stem, path.read_bytes()) for path in sorted((EVIDENCE_DIR / scenario).glob("*.txt")))


def _command(scenario: str, probe: str) -> tuple[dict, str]:
    params = PROBE_PARAMS.get((scenario, probe), PROBE_PARAMS.get(probe, {}))
    return params, probes.build(probe, params).command


class Command(BaseCommand):
    help = "Load a realistic demo desk (idempotent: does nothing if the demo is already there unless --force)."

    def add_arguments(self, parser):
        parser.add_argument("--tickets", type=int, default=400)
        parser.add_argument("--days", type=int, default=182)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--password", default="", help="Password for the demo staff (default: generated)")
        parser.add_argument("--force", action="store_true", help="Add the demo tickets even if present")

    def handle(self, *args, tickets, days, seed, password, force, **options):
        if settings.PRODUCTION:
            # Made-up customers, staff with known names and six months of fake tickets would mix
            # with real ones and feed the dashboards and the recipes' success rates.
            raise CommandError(
                "seed_demo refuses to run in production (TRIAGE_ENV=production): it adds made-up customers, "
                "staff and tickets. Load the knowledge base with `manage.py load_kb --if-empty` instead."
            )
        if Customer.objects.filter(name=CUSTOMERS[0][0]).exists() and not force:
            self.stdout.write("demo desk already loaded; use --force to add more tickets")
            return
        rng = random.Random(seed)
        users.roles_ensure()
        services.sla_tiers_ensure()
        self._office_hours()
        if not Symptom.objects.exists():  # the demo's collections need something to match against
            call_command("load_kb", if_empty=True, stdout=self.stdout)
        password = password or secrets.token_urlsafe(9)
        staff = self._staff(password)
        customers = self._customers()
        playbooks = {book.name: book for book in playbooks_ensure()}
        now = timezone.now()
        self.stats = {"runs": 0, "failed": 0, "matched": 0, "accepted": 0, "rejected": 0, "fixed": 0}
        with transaction.atomic():  # one commit: far faster on SQLite, and all-or-nothing
            for i in range(tickets):
                self._ticket(
                    rng=rng,
                    customers=customers,
                    techs=staff["techs"],
                    playbooks=playbooks,
                    now=now,
                    days=days,
                    index=i,
                    total=tickets,
                )
        services.flag_sla_breaches(now=now)
        breached = Ticket.objects.filter(Q(first_response_breached=True) | Q(resolution_breached=True)).count()
        stats = self.stats
        self.stdout.write(
            self.style.SUCCESS(
                f"demo desk: {len(customers)} customers, {tickets} tickets over {days} days, "
                f"{breached} breached an SLA target; "
                f"{stats['runs']} collections ({stats['failed']} failed, {stats['matched']} with known symptoms), "
                f"fixes accepted on {stats['accepted']} tickets, rejected on {stats['rejected']}, "
                f"{stats['fixed']} tickets resolved by a suggested fix; "
                f"staff alice, bob, carol, dave (tech) and maria (manager) with password: {password}"
            )
        )
        if "rebuild_reports" in get_commands():  # the dashboards' rollups, when the reports app is installed
            call_command("rebuild_reports", stdout=self.stdout)

    def _office_hours(self) -> None:
        """The Standard tier (a law firm, schools) runs on office hours in Berlin, so the demo shows
        business-hours deadlines; left alone if an admin already made the calendar."""
        if BusinessCalendar.objects.filter(name=OFFICE_HOURS["name"]).exists():
            return
        calendar = services.business_calendar_save(calendar=None, **OFFICE_HOURS)
        services.sla_tier_set_calendar(tier=SlaTier.objects.get(name="Standard"), calendar=calendar)

    def _staff(self, password: str) -> dict:
        User = get_user_model()
        techs = []
        for name in ("alice", "bob", "carol", "dave"):
            user, created = User.objects.get_or_create(username=name, defaults={"first_name": name.title()})
            if created:
                user.set_password(password)
                user.save()
            users.user_set_roles(user=user, roles=[access.TECH])
            techs.append(user)
        manager, created = User.objects.get_or_create(username="maria", defaults={"first_name": "Maria"})
        if created:
            manager.set_password(password)
            manager.save()
        users.user_set_roles(user=manager, roles=[access.MANAGER])
        return {"techs": techs, "manager": manager}

    @transaction.atomic
    def _customers(self) -> list[Customer]:
        customers = []
        for name, tier, contact, servers in CUSTOMERS:
            customer, created = Customer.objects.get_or_create(
                name=name, defaults={"sla_tier": SlaTier.objects.get(name=tier)}
            )
            if created:
                Contact.objects.get_or_create(email=contact, defaults={"customer": customer})
            for server_name, address, roles in servers:
                server, _ = Server.objects.get_or_create(
                    customer=customer, name=server_name, defaults={"address": address}
                )
                services.server_save(server=server, role_names=roles)
            customers.append(customer)
        return customers

    def _ticket(self, *, rng, customers, techs, playbooks, now, days, index, total):
        # Spread creation over the period, denser recently, and keep the newest ones open.
        age_fraction = (1 - index / total) ** 1.4
        created = now - timedelta(days=days * age_fraction, minutes=rng.randint(0, 600))
        customer = rng.choice(customers)
        subject, description, tags, role, playbook_name, scenarios = rng.choice(PROBLEMS)
        servers = [s for s in customer.servers.all() if role in s.roles.values_list("name", flat=True)]
        priority = rng.choices([Priority.P1, Priority.P2, Priority.P3, Priority.P4], weights=[1, 3, 5, 2])[0]
        creator = rng.choice(techs)
        ticket = services.ticket_create(
            subject=subject,
            description=description,
            customer=customer,
            priority=priority,
            servers=servers[:1],
            tag_names=tags,
            created_by=creator,
            requester=customer.first_contact(),
            now=created,
        )
        clock = created
        horizon = now - timedelta(minutes=5)

        def step(minutes_low: int, minutes_high: int):
            nonlocal clock
            since, clock = clock, clock + timedelta(minutes=rng.randint(minutes_low, minutes_high))
            if clock >= horizon:
                return None
            self._sweep(ticket=ticket, since=since, until=clock)
            return clock

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
        fixes: list = []  # the suggested recipes, best first, once a collection has run
        if servers and rng.random() < 0.8:
            at = step(2, 60)
            if at is None:
                return
            scenario = rng.choice(scenarios) if rng.random() < 0.85 else HEALTHY
            finished = self._collect(
                rng=rng,
                ticket=ticket,
                server=servers[0],
                tech=assignee,
                playbook=playbooks[playbook_name],
                scenario=scenario,
                at=at,
                horizon=horizon,
            )
            if finished is None:
                return
            clock = finished
            fixes = [entry["recipe"] for entry in ranked_fixes(ticket=ticket)]
        at = step(10, 300)
        if at is None:
            return
        services.ticket_add_note(ticket=ticket, author=assignee, body=rng.choice(NOTES), now=at)
        applying = None
        if fixes:
            at = step(5, 120)
            if at is None:
                return
            applying = self._verdict(rng=rng, ticket=ticket, fixes=fixes, tech=assignee, at=at)
        if rng.random() < 0.35:
            at = step(5, 60)
            if at is None:
                return
            services.ticket_reply(ticket=ticket, author=assignee, body=REPLIES[2], now=at)
            services.ticket_change_status(ticket=ticket, status=Status.WAITING, by=assignee, now=at)
            at = step(60, 1440)
            if at is None:
                return
            services.ticket_change_status(
                ticket=ticket, status=Status.TRIAGING, by=assignee, note="Customer answered.", now=at
            )
        if age_hours < 96 and rng.random() < 0.7:
            return  # recent tickets stay open so the queue has live work
        at = step(30, 2880)
        if at is None:
            return
        services.ticket_reply(ticket=ticket, author=assignee, body=REPLIES[3], now=at)
        if applying is not None and rng.random() < 0.85:
            # "Resolve with this fix": the status change and the fixed outcome in one step.
            outcomes.ticket_resolve_with_fix(ticket=ticket, recipe=applying, by=assignee, now=at)
            self.stats["fixed"] += 1
        else:
            services.ticket_change_status(ticket=ticket, status=Status.RESOLVED, by=assignee, now=at)
        at = step(1440, 4320)
        if at is not None:
            services.ticket_change_status(ticket=ticket, status=Status.CLOSED, by=assignee, now=at)

    def _sweep(self, *, ticket: Ticket, since: datetime, until: datetime) -> None:
        """What the periodic SLA sweeper would have flagged on this ticket between ``since`` (its
        last event) and ``until`` (its next).

        ``services.flag_sla_breaches`` looks at every open ticket as it is now, so it can only
        run once the history is written; this replays it for one ticket while it is written,
        with the same conditional UPDATE and the same timeline entry, a minute after the deadline.
        """
        row = (
            Ticket.objects.filter(pk=ticket.pk)
            .values(
                "status",
                "first_response_at",
                "first_response_due",
                "first_response_breached",
                "resolution_due",
                "resolution_breached",
            )
            .get()
        )
        if row["status"] not in (Status.NEW, Status.TRIAGING):
            return
        late = []
        if (
            not row["first_response_breached"]
            and row["first_response_at"] is None
            and row["first_response_due"] < until
        ):
            late.append(
                (
                    "first_response",
                    "first_response_breached",
                    row["first_response_due"],
                    "First-response target missed.",
                )
            )
        if not row["resolution_breached"] and row["resolution_due"] < until:
            late.append(("resolution", "resolution_breached", row["resolution_due"], "Resolution target missed."))
        for target, flag, due, body in late:
            if Ticket.objects.filter(pk=ticket.pk, **{flag: False}).update(**{flag: True}):
                services.ticket_record_event(
                    ticket=ticket,
                    kind=EventKind.SLA,
                    body=body,
                    data={"target": target, "due": due.isoformat()},
                    now=min(max(due + timedelta(minutes=1), since), until),
                )

    def _collect(
        self, *, rng, ticket, server, tech, playbook: Playbook, scenario: str, at: datetime, horizon: datetime
    ) -> datetime | None:
        """One collection as the worker would have run it, or a failed one and a retry after the
        tech fixed what stopped it. Returns when the last run finished (None past the horizon)."""
        odds, kinds = CUSTOMER_FAILURES.get(ticket.customer.name, DEFAULT_FAILURES)
        while True:
            failure = None
            if rng.random() < odds:
                failure = rng.choices(list(kinds), weights=list(kinds.values()))[0]
            finished = self._run(
                rng=rng,
                ticket=ticket,
                server=server,
                tech=tech,
                playbook=playbook,
                scenario=scenario,
                at=at,
                failure=failure,
            )
            if finished >= horizon:
                return None
            if failure is None or rng.random() < 0.35:
                return finished  # a success, or a failure nobody followed up with a collection
            at = finished + timedelta(minutes=rng.randint(15, 240))
            odds = odds / 3  # the credential was fixed or the key re-approved: a retry mostly works
            if at >= horizon:
                return finished

    def _run(self, *, rng, ticket, server, tech, playbook, scenario, at, failure) -> datetime:
        started = at + timedelta(seconds=rng.randint(1, 8))
        outputs = [] if failure else scenario_outputs(scenario)
        steps = [{"probe": probe, "params": _command(scenario, probe)[0]} for probe, _ in outputs]
        run = CollectionRun.objects.create(
            ticket=ticket,
            server=server,
            playbook=playbook,
            playbook_name=playbook.name,
            steps=steps or playbook.steps,
            requested_by=tech,
            state=RunState.QUEUED,
            created_at=at,
            enqueued_at=at,
            started_at=started,
            attempts=1,
            worker="demo-worker",
        )
        services.ticket_record_event(
            ticket=ticket,
            kind=EventKind.COLLECTION,
            actor=tech,
            now=at,
            body=f"Collection requested: {playbook.name} on {server.name}.",
            data={"run": run.pk, "state": RunState.QUEUED, "server": server.name},
        )
        AuditEntry.objects.create(
            at=at,
            actor=tech,
            action="run_requested",
            server=server,
            ticket=ticket,
            run=run,
            address=f"{server.ssh_user}@{server.address}:{server.ssh_port}",
            detail={"playbook": playbook.name},
        )
        self.stats["runs"] += 1
        if failure:
            fingerprint = "SHA256:" + hashlib.sha256(f"{server.pk}-{at}".encode()).hexdigest()[:43]
            reason = FAILURES[failure].format(fingerprint=fingerprint)
            finished = started + timedelta(seconds={"unreachable": 5, "handshake": 15}.get(failure, 2))
            state = RunState.FAILED
            run.connect_seconds = 5.0 if failure == "unreachable" else round(rng.uniform(0.01, 0.2), 3)
            self.stats["failed"] += 1
        else:
            run.connect_seconds = round(rng.uniform(0.01, 0.2), 3)
            run.banner_seconds = round(rng.uniform(0.05, 0.4), 3)
            run.handshake_seconds = round(rng.uniform(0.1, 0.5), 3)
            # A slow login is itself evidence (resolvers that do not answer make sshd wait).
            run.auth_seconds = round(rng.uniform(20, 40) if scenario == "dead-resolvers" else rng.uniform(0.1, 1), 3)
            elapsed = run.connect_seconds + run.banner_seconds + run.handshake_seconds + run.auth_seconds
            for number, (probe, output) in enumerate(outputs):
                params, command = _command(scenario, probe)
                duration = round(rng.uniform(0.2, 30 if probe in ("strace", "tcpdump") else 3), 2)
                Evidence.objects.create(
                    run=run,
                    step=number,
                    probe=probe,
                    params=params,
                    command=command,
                    exit_status=0,
                    output=output,
                    output_bytes=len(output),
                    duration=duration,
                    recorded_at=started + timedelta(seconds=elapsed + duration),
                )
            finished = started + timedelta(seconds=elapsed + 32)
            state = RunState.SUCCEEDED
            reason = f"All {len(outputs)} probes finished. Login took {run.auth_seconds:.2f} s."
        run.state, run.reason, run.failure_kind = state, reason, failure or ""
        run.finished_at = run.heartbeat_at = finished
        run.diagnosed_at = finished  # diagnosed below, in this same step, and dated to the simulation
        run.save()
        services.ticket_record_event(
            ticket=ticket,
            kind=EventKind.COLLECTION,
            now=finished,
            body=f"Collection {run.get_state_display().lower()}: {playbook.name} on {server.name}. {reason}",
            data={"run": run.pk, "state": state, "server": server.name},
        )
        if not failure:
            # The real matcher, as the worker runs it when a collection finishes; its rows are
            # then dated to the simulated moment (it stamps them with the wall clock).
            wall = timezone.now() - timedelta(seconds=1)
            if any(m.matched for m in matcher.match_run(run=run)):
                self.stats["matched"] += 1
            suggested = outcomes.outcomes_record_suggested(run=run)
            if suggested:  # announced as run_diagnose does (webhooks' fix.suggested)
                events.fixes_suggested(run=run, recipe_ids=suggested)
            Match.objects.filter(run=run).update(created_at=finished)
            RecipeOutcome.objects.filter(ticket=ticket, kind=RecipeOutcome.SUGGESTED, at__gte=wall).update(at=finished)
        return finished

    def _verdict(self, *, rng, ticket, fixes: list, tech, at: datetime):
        """The tech's verdict on the suggested fixes: sometimes the best one does not apply (rejected,
        and the next is tried), mostly it is accepted. Returns the recipe being applied, if any."""
        candidates = list(fixes)
        if rng.random() < 0.15:
            outcomes.outcome_record_rejected(
                ticket=ticket, recipe=candidates.pop(0), by=tech, reason=rng.choice(REJECT_REASONS), now=at
            )
            self.stats["rejected"] += 1
        if candidates and rng.random() < 0.8:
            outcomes.outcome_record_accepted(ticket=ticket, recipe=candidates[0], by=tech, now=at)
            self.stats["accepted"] += 1
            return candidates[0]
        return None
