"""Issue 5: the desk at scale, and django-helpdesk beside it on the same tickets.

Loads 1,000,000 tickets and 5,000,000 timeline events (three years, 2,000
customers) into a PostgreSQL database of its own with COPY, serves the desk
with gunicorn, and measures warm pages over HTTP one request at a time:

    queue (default and filtered)   p95 < 100 ms
    free-text search               p95 < 200 ms
    ticket page                    p95 < 100 ms
    manager dashboard              p95 < 300 ms

Then it loads the same tickets into django-helpdesk (PyPI, its own venv and a
generated project under bench/helpdesk_project/), serves it the same way and
prints its figures beside ours with the ratio.

    .venv/bin/python bench/scale_desk.py              # loads on first run, reuses the databases after
    .venv/bin/python bench/scale_desk.py --reload     # drop and reload both databases
    .venv/bin/python bench/scale_desk.py --no-helpdesk --requests 50

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth). All traffic is
to 127.0.0.1, except pip installing django-helpdesk into bench/.helpdesk-venv
the first time. Prints figures and verdicts; exits non-zero only when the bench
itself could not run.
"""

# argv and SQL here are built from this file's constants and our own table names, never from input.
# ruff: noqa: S603, S608

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PG = "postgres://postgres@127.0.0.1:5432"
OUR_DB = "bench_desk"
HD_DB = "bench_helpdesk"
HD_VENV = BENCH / ".helpdesk-venv"
HD_PROJECT = BENCH / "helpdesk_project"
HELPDESK_VERSION = "2.6.1"
HD_REQUIREMENTS = [f"django-helpdesk=={HELPDESK_VERSION}", "gunicorn==27.0.1", "psycopg[binary]==3.3.9"]
# Bump when the generated data changes shape: a cached database with another version is reloaded.
LOADER_VERSION = "3"
PASSWORD = "bench-scale-password"  # noqa: S105 - a throwaway database on loopback
TARGETS_MS = {"queue": 100, "search": 200, "ticket": 100, "dashboard": 300}


def log(message: str) -> None:
    print(message, flush=True)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


# --- Vocabulary ---------------------------------------------------------------
# Problem families of a hosting desk. Subjects and descriptions are built from
# these, with Zipf-weighted filler, so a search for "mail" hits a large share of
# the tickets, "certificate" a few percent and "tcpserver" a fraction of one.

FAMILIES = {
    "mail": (
        [
            "Mail sits {n} seconds before sending",
            "Outbound mail queue growing on {host}",
            "Bounces from {domain} with 550 errors",
            "Users cannot receive mail since {when}",
            "Postfix deferring mail to {domain}",
            "Exim queue stuck on {host}",
            "Spam filter rejecting customer mail",
            "Dovecot login failures for several mailboxes",
            "SPF and DKIM failures reported by {domain}",
        ],
        [
            "postfix",
            "exim",
            "dovecot",
            "smtp",
            "queue",
            "bounce",
            "spamassassin",
            "mailscanner",
            "dkim",
            "spf",
            "relay",
            "mailbox",
            "imap",
            "greylisting",
            "tcpserver",
            "ident",
            "qmail",
            "sendmail",
            "mx",
            "rbl",
        ],
    ),
    "web": (
        [
            "Website returns {code} intermittently",
            "Site slow since {when}",
            "nginx {code} on checkout page",
            "Apache workers exhausted on {host}",
            "PHP-FPM pool saturated",
            "Redirect loop after migration",
            "Uploads fail with {code}",
            "Load balancer marks {host} unhealthy",
        ],
        [
            "nginx",
            "apache",
            "php-fpm",
            "wordpress",
            "magento",
            "upstream",
            "timeout",
            "gateway",
            "vhost",
            "rewrite",
            "keepalive",
            "haproxy",
            "varnish",
            "cdn",
            "cookie",
            "session",
            "opcache",
        ],
    ),
    "db": (
        [
            "Database connections refused at peak",
            "MySQL replication lag on {host}",
            "Slow queries since {when}",
            "PostgreSQL out of disk for WAL",
            "Deadlocks in order processing",
            "Backup of database failing",
        ],
        [
            "mysql",
            "mariadb",
            "postgresql",
            "replication",
            "innodb",
            "deadlock",
            "vacuum",
            "wal",
            "slave",
            "index",
            "connections",
            "pgbouncer",
            "binlog",
            "query",
            "lock",
        ],
    ),
    "dns": (
        [
            "SSH login takes a minute",
            "DNS resolution failing on {host}",
            "Domain {domain} not resolving",
            "Reverse DNS missing for {host}",
            "Zone transfer failing to secondary",
        ],
        [
            "dns",
            "resolver",
            "bind",
            "unbound",
            "resolv.conf",
            "ptr",
            "reverse",
            "nameserver",
            "zone",
            "ttl",
            "dnssec",
            "nxdomain",
            "servfail",
            "lookup",
        ],
    ),
    "network": (
        [
            "Inner interface stopped answering",
            "Packet loss to {host}",
            "Connections reset by peer",
            "Cache nodes keep sockets in CLOSE-WAIT",
            "Firewall blocking port {port}",
            "VPN tunnel drops hourly",
        ],
        [
            "network",
            "nic",
            "firewall",
            "iptables",
            "nftables",
            "mtu",
            "packet",
            "latency",
            "route",
            "bgp",
            "vlan",
            "ipv6",
            "conntrack",
            "close-wait",
            "reset",
            "vpn",
            "tcpdump",
        ],
    ),
    "disk": (
        [
            "Disk full on /var",
            "Filesystem read-only on {host}",
            "Inodes exhausted on /tmp",
            "RAID degraded on {host}",
            "Backups filling the disk",
        ],
        [
            "disk",
            "filesystem",
            "inode",
            "raid",
            "mdadm",
            "smart",
            "ext4",
            "xfs",
            "lvm",
            "logrotate",
            "quota",
            "mount",
            "partition",
        ],
    ),
    "tls": (
        [
            "TLS certificate warning in browsers",
            "Certificate expired for {domain}",
            "Let's Encrypt renewal failing",
            "Mixed content after HTTPS switch",
        ],
        [
            "tls",
            "ssl",
            "certificate",
            "letsencrypt",
            "certbot",
            "expired",
            "chain",
            "cipher",
            "hsts",
            "openssl",
            "handshake",
        ],
    ),
    "system": (
        [
            "Server rebooted unexpectedly",
            "High load average, site slow",
            "Out of memory kills on {host}",
            "Cron jobs not running since {when}",
            "Kernel update needed on {host}",
            "Time drift on {host}",
        ],
        [
            "reboot",
            "kernel",
            "oom",
            "memory",
            "swap",
            "load",
            "cpu",
            "cron",
            "systemd",
            "ntp",
            "chrony",
            "journald",
            "upgrade",
            "panic",
        ],
    ),
    "security": (
        [
            "Suspicious logins on {host}",
            "Malware found in uploads",
            "Brute force against SSH",
            "Compromised WordPress plugin",
            "Outbound spam from compromised account",
        ],
        [
            "security",
            "malware",
            "fail2ban",
            "bruteforce",
            "ssh",
            "compromised",
            "rootkit",
            "audit",
            "password",
            "2fa",
            "clamav",
        ],
    ),
    "account": (
        [
            "Please add a new SFTP user",
            "Change of billing contact",
            "Request for a staging copy of {domain}",
            "Increase disk quota for {domain}",
            "Cancel backup add-on",
        ],
        ["billing", "invoice", "sftp", "user", "quota", "staging", "request", "contract", "upgrade", "plan"],
    ),
}
FAMILY_WEIGHTS = {
    "mail": 30,
    "web": 22,
    "db": 9,
    "dns": 6,
    "network": 8,
    "disk": 7,
    "tls": 4,
    "system": 7,
    "security": 3,
    "account": 4,
}
COMMON = " ".join(
    [  # everyday words, most frequent first (Zipf-weighted filler)
        "the a we our it since this is not and to of on in for after from with at customer server users",
        "please error issue again today yesterday morning night support check could you see logs seems",
        "problem working fine slow restart restarted service config changed update still happening",
        "intermittent every minutes hours times reported noticed urgent production team",
    ]
).split()
FILLER = COMMON
DOMAINS = ["example.com", "example.net", "example.org", "shop.example", "mail.example", "corp.example"]
WHENS = ["yesterday", "this morning", "the upgrade", "last night", "the weekend", "Monday", "the migration"]
REPLY_LINES = [
    "Thanks for the report, we are looking at the server now.",
    "We collected diagnostics from the server and are reviewing them.",
    "Could you tell us the exact time of the last failure?",
    "We applied a fix; please confirm whether the problem is gone.",
    "The change is live; we will keep an eye on it for a day.",
    "We restarted the service and the queue is draining.",
]
NOTE_LINES = [
    "strace on the child shows connect() blocking; checking which port.",
    "ss shows lots of sockets to the same peer; suspect upstream.",
    "Customer firewall drops port 113, classic ident timeout.",
    "Logs rotated at 03:00, errors start right after.",
    "Escalating to the network team for the upstream router.",
    "Disk usage from old backups, removed after asking the customer.",
]
TAGS = sorted({w for _, words in FAMILIES.values() for w in words[:4]} | {"vip", "escalated", "billing-hold"})
TIERS = [("Platinum", 10), ("Gold", 30), ("Standard", 60)]
PRIORITY_WEIGHTS = [3, 15, 60, 22]  # P1..P4
EVENTS_PER_TICKET = ([3, 4, 5, 6, 7, 8], [15, 20, 35, 15, 10, 5])  # mean 5.0


@dataclass
class Scale:
    tickets: int
    events: int
    customers: int
    techs: int
    seed: int


def cumulative(weights):
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


# --- Our desk: database, migrate, COPY ----------------------------------------


def admin_connect():
    return psycopg.connect(f"{PG}/postgres", autocommit=True)


def database_exists(name: str) -> bool:
    with admin_connect() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def recreate_database(name: str) -> None:
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(database: str) -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def schema_fingerprint(conn, *, tables_like: str, scale: Scale, version: str) -> str:
    """Columns of the loaded tables plus the loader's parameters: what makes cached rows valid.

    Indexes and generated columns are left out on purpose: a migration adding them keeps the data
    (migrate adds them to the cached rows).
    """
    rows = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name LIKE %s AND is_generated = 'NEVER' ORDER BY 1, 2",
        [tables_like],
    ).fetchall()
    blob = json.dumps([version, scale.__dict__, rows])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_marker(conn) -> dict:
    exists = conn.execute("SELECT to_regclass('bench_scale_marker')").fetchone()[0]
    if not exists:
        return {}
    return dict(conn.execute("SELECT key, value FROM bench_scale_marker").fetchall())


def write_marker(conn, values: dict) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS bench_scale_marker (key text PRIMARY KEY, value text NOT NULL)")
    conn.execute("DELETE FROM bench_scale_marker")
    for key, value in values.items():
        conn.execute("INSERT INTO bench_scale_marker VALUES (%s, %s)", [key, str(value)])


def secondary_indexes(conn, tables: list[str]) -> list[tuple[str, str]]:
    """(name, definition) of the indexes on `tables` that back no constraint: safe to drop and rebuild."""
    return conn.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "WHERE t.relname = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        [tables],
    ).fetchall()


def prepare_our_database(args, scale: Scale) -> dict:
    """Migrate (always: new index migrations apply to cached data) and load unless the marker matches."""
    from django.core.management import call_command, get_commands
    from django.db import connection

    fresh = args.reload or not database_exists(OUR_DB)
    if fresh:
        recreate_database(OUR_DB)
    django_setup(OUR_DB)
    before = _applied_migrations()
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrate_seconds = time.perf_counter() - started
    applied = _applied_migrations() - before
    with psycopg.connect(f"{PG}/{OUR_DB}", autocommit=True) as conn:
        fingerprint = schema_fingerprint(conn, tables_like="triage_%", scale=scale, version=LOADER_VERSION)
        marker = read_marker(conn)
    if marker.get("fingerprint") == fingerprint and not fresh:
        log(
            f"[load] ours: {OUR_DB} reused (fingerprint {fingerprint}, loaded {marker.get('loaded_at')} "
            f"in {float(marker.get('load_seconds', 0)):.0f} s); migrate applied {len(applied)} new migration(s) "
            f"in {migrate_seconds:.1f} s; --reload to load again"
        )
        # Rollups are rebuilt when the reports app's migrations changed since the last rebuild that finished.
        if marker.get("reports_state") != _reports_state():
            _rebuild_reports(call_command, get_commands)
            with psycopg.connect(f"{PG}/{OUR_DB}", autocommit=True) as conn:
                conn.execute("ANALYZE")
                marker["reports_state"] = _reports_state()
                write_marker(conn, marker)
        return marker
    if not fresh:  # schema or parameters changed: start from an empty database
        connection.close()
        recreate_database(OUR_DB)
        call_command("migrate", verbosity=0)
    marker = load_our_desk(scale)
    _rebuild_reports(call_command, get_commands)
    marker["reports_state"] = _reports_state()
    with psycopg.connect(f"{PG}/{OUR_DB}", autocommit=True) as conn:
        marker["fingerprint"] = schema_fingerprint(conn, tables_like="triage_%", scale=scale, version=LOADER_VERSION)
        write_marker(conn, marker)
    return marker


def _applied_migrations() -> set[tuple[str, str]]:
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connection)
    return set(recorder.applied_migrations()) if recorder.has_table() else set()


def _reports_state() -> str:
    return ",".join(sorted(name for app, name in _applied_migrations() if app == "reports"))


def _rebuild_reports(call_command, get_commands) -> None:
    if "rebuild_reports" in get_commands():
        started = time.perf_counter()
        call_command("rebuild_reports")
        log(f"[load] ours: rebuild_reports took {time.perf_counter() - started:.1f} s")
    else:
        log("[load] ours: no rebuild_reports command in this tree (the reports app is not there yet)")


def _staff(scale: Scale) -> dict:
    """Techs, admins and managers through Django (a few rows; passwords hashed once)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from triage import access, services, users

    users.roles_ensure()
    services.sla_tiers_ensure()
    User = get_user_model()
    hashed = make_password(PASSWORD)
    groups = {g.name: g for g in users.roles_ensure()}
    people = {"tech": [], "admin": [], "manager": []}
    counts = {access.TECH: scale.techs, access.ADMIN: 3, access.MANAGER: 5}
    for role, count in counts.items():
        for n in range(1, count + 1):
            user = User.objects.create(
                username=f"bench-{role}-{n:02d}",
                password=hashed,
                first_name=role.title(),
                last_name=f"{n:02d}",
                email=f"{role}{n}@desk.example",
            )
            user.groups.add(groups[role])
            people[role].append(user.pk)
    return people


def load_our_desk(scale: Scale) -> dict:
    from triage.models import SlaTarget, SlaTier

    started = time.perf_counter()
    rng = random.Random(scale.seed)  # noqa: S311 - seeded synthetic data, not security
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    people = _staff(scale)
    techs = people["tech"]
    tiers = {t.name: t.pk for t in SlaTier.objects.all()}
    targets = {
        (t.tier_id, t.priority): (t.first_response_minutes, t.resolution_minutes) for t in SlaTarget.objects.all()
    }
    counts = {}
    with psycopg.connect(f"{PG}/{OUR_DB}") as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading consistent rows
        conn.execute("SET synchronous_commit = off")
        heavy = ["triage_ticket", "triage_ticketevent", "triage_ticket_tags", "triage_ticket_servers"]
        indexes = secondary_indexes(conn, heavy)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        customers, servers = _copy_customers(conn, rng, scale, tiers, now)
        tag_ids = _copy_tags(conn)
        counts["customers"], counts["servers"] = len(customers), sum(len(s) for s in servers.values())
        t0 = time.perf_counter()
        counts.update(
            _copy_tickets(
                conn,
                rng,
                scale,
                now=now,
                customers=customers,
                servers=servers,
                techs=techs,
                targets=targets,
                tag_ids=tag_ids,
            )
        )
        copy_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        for _, definition in indexes:
            conn.execute(definition)
        for table in [*heavy, "triage_customer", "triage_contact", "triage_server"]:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        index_seconds = time.perf_counter() - t0
    with psycopg.connect(f"{PG}/{OUR_DB}", autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        analyze_seconds = time.perf_counter() - t0
    total = time.perf_counter() - started
    log(
        f"[load] ours: {counts['tickets']:,} tickets, {counts['events']:,} events, {counts['customers']:,} customers, "
        f"{counts['servers']:,} servers, {counts['tags']:,} ticket tags, {counts['links']:,} server links, "
        f"{counts['open']:,} open tickets"
    )
    log(
        f"[load] ours: generate+COPY {copy_seconds:.0f} s, {len(indexes)} indexes rebuilt in {index_seconds:.0f} s, "
        f"VACUUM ANALYZE {analyze_seconds:.0f} s, total {total:.0f} s"
    )
    return {"loaded_at": now.isoformat(), "load_seconds": round(total, 1), **counts}


def _copy_customers(conn, rng, scale: Scale, tiers: dict, now: datetime):
    first = [
        "North",
        "Blue",
        "Fast",
        "Harbour",
        "Pine",
        "Red",
        "Silver",
        "Green",
        "Iron",
        "Bright",
        "Quartz",
        "Delta",
        "Summit",
        "River",
        "Oak",
        "Atlas",
        "Nova",
        "Polar",
        "Urban",
        "Cedar",
    ]
    second = [
        "wind",
        "cache",
        "mail",
        "retail",
        "law",
        "media",
        "schools",
        "logistics",
        "foods",
        "health",
        "travel",
        "games",
        "labs",
        "energy",
        "bank",
        "press",
        "studio",
        "works",
        "cloud",
        "systems",
    ]
    tier_cum = cumulative([w for _, w in TIERS])
    customers, servers = [], {}
    roles = ["mx", "web", "db", "cache", "app", "backup", "vpn", "ns"]
    next_server = 1
    with conn.cursor().copy("COPY triage_customer (id, name, notes, created_at, sla_tier_id) FROM STDIN") as copy:
        for cid in range(1, scale.customers + 1):
            name = f"{rng.choice(first)}{rng.choice(second)} {cid:04d}"
            tier = rng.choices(TIERS, cum_weights=tier_cum)[0][0]
            created = now - timedelta(days=1100 + rng.randint(0, 400))
            copy.write(f"{cid}\t{name}\t\t{created.isoformat()}\t{tiers[tier]}\n")
            customers.append((cid, tiers[tier], created))
    # One contact per customer, as the desk's customers have.
    with conn.cursor().copy("COPY triage_contact (id, customer_id, name, email, phone, created_at) FROM STDIN") as copy:
        for cid, _, created in customers:
            copy.write(f"{cid}\t{cid}\tOps\tops@c{cid}.example\t\t{created.isoformat()}\n")
    customers = [(cid, tier) for cid, tier, _ in customers]
    with conn.cursor().copy(
        "COPY triage_server (id, name, address, ssh_port, ssh_user, notes, created_at, customer_id) FROM STDIN"
    ) as copy:
        for cid, _ in customers:
            count = min(20, 1 + int(rng.paretovariate(1.3)))
            servers[cid] = []
            for n in range(count):
                name = f"{roles[n % len(roles)]}{n // len(roles) + 1}"
                copy.write(
                    f"{next_server}\t{name}\t10.{cid // 250}.{cid % 250}.{n + 10}\t22\troot\t\t"
                    f"{now.isoformat()}\t{cid}\n"
                )
                servers[cid].append(next_server)
                next_server += 1
    return customers, servers


def _copy_tags(conn) -> dict[str, int]:
    with conn.cursor().copy("COPY triage_tag (id, name) FROM STDIN") as copy:
        for i, name in enumerate(TAGS, 1):
            copy.write(f"{i}\t{name}\n")
    return {name: i for i, name in enumerate(TAGS, 1)}


NULL = "\\N"  # COPY text format


def _ts(value: datetime | None) -> str:
    return NULL if value is None else value.isoformat()


def _copy_tickets(conn, rng, scale: Scale, *, now, customers, servers, techs, targets, tag_ids) -> dict:
    """Tickets, their tags and servers, and their timelines, in creation order."""
    span = timedelta(days=3 * 365)
    start = now - span
    families = list(FAMILY_WEIGHTS)
    family_cum = cumulative(FAMILY_WEIGHTS.values())
    customer_cum = cumulative([1 / (rank**0.9) for rank in range(1, len(customers) + 1)])
    filler_cum = cumulative([1 / (rank**1.1) for rank in range(1, len(FILLER) + 1)])
    # Within a family the first words are everyday, the last ones rare ("tcpserver": well under 1%).
    word_cum = {f: cumulative([1 / (rank**1.6) for rank in range(1, len(w) + 1)]) for f, (_, w) in FAMILIES.items()}
    tech_cum = cumulative([1 + (i % 7) for i in range(len(techs))])
    priority_cum = cumulative(PRIORITY_WEIGHTS)
    event_counts, event_cum = EVENTS_PER_TICKET[0], cumulative(EVENTS_PER_TICKET[1])
    # Spread the event budget: the mean of EVENTS_PER_TICKET is 5, scaled to --events / --tickets.
    event_scale = scale.events / scale.tickets / 5.0
    tickets = scale.tickets
    counts = {"tickets": 0, "events": 0, "tags": 0, "links": 0, "open": 0}
    cur = conn.cursor()
    t_cols = (
        "id, subject, description, priority, status, created_at, updated_at, first_response_at, resolved_at, "
        "closed_at, first_response_due, resolution_due, waiting_since, paused_seconds, next_due_at, "
        "first_response_breached, resolution_breached, assignee_id, created_by_id, customer_id"
    )
    event_id = 0
    tag_row = link_row = 0
    chunk = 20_000
    for base in range(0, tickets, chunk):
        t_buf, e_buf, tag_buf, link_buf = io.StringIO(), io.StringIO(), io.StringIO(), io.StringIO()
        for tid in range(base + 1, min(tickets, base + chunk) + 1):
            # Denser recently: the desk grows over the three years.
            created = start + span * ((tid / tickets) ** 0.8) - timedelta(minutes=3)
            age_days = (now - created).total_seconds() / 86400
            cid, tier = customers[rng.choices(range(len(customers)), cum_weights=customer_cum)[0]]
            priority = rng.choices((1, 2, 3, 4), cum_weights=priority_cum)[0]
            first_minutes, resolution_minutes = targets[(tier, priority)]
            family = families[rng.choices(range(len(families)), cum_weights=family_cum)[0]]
            templates, words = FAMILIES[family]
            subject = rng.choice(templates).format(
                n=rng.choice((10, 20, 30, 60)),
                host=f"{rng.choice(('mx', 'web', 'db', 'app'))}{rng.randint(1, 9)}",
                domain=rng.choice(DOMAINS),
                when=rng.choice(WHENS),
                code=rng.choice((500, 502, 503, 504, 413)),
                port=rng.choice((25, 113, 443, 587, 3306)),
            )
            specific = rng.choices(words, cum_weights=word_cum[family], k=3)
            body_words = rng.choices(FILLER, cum_weights=filler_cum, k=rng.randint(18, 60))
            description = (
                f"{subject}. We see {specific[0]} and {specific[1]} problems, maybe {specific[2]}. "
                + " ".join(body_words)
                + "."
            )
            # Where the ticket stands today depends on its age; a thin tail of old tickets stays open.
            p_open = 0.9 * math.exp(-age_days / 4) + 0.004
            if rng.random() < p_open:
                status = "new" if age_days < 0.05 else rng.choices(("new", "triaging", "waiting"), (15, 55, 30))[0]
            else:
                status = "closed" if age_days > 4 else "resolved"
            assignee = (
                None
                if status == "new" and rng.random() < 0.5
                else techs[rng.choices(range(len(techs)), cum_weights=tech_cum)[0]]
            )
            creator = techs[rng.randrange(len(techs))] if rng.random() < 0.7 else None
            first_due = created + timedelta(minutes=first_minutes)
            first_response_at = None
            if status != "new":
                first_response_at = created + timedelta(minutes=first_minutes * rng.uniform(0.05, 1.25))
                first_response_at = min(first_response_at, now - timedelta(minutes=1))
            paused = rng.randint(0, 86400) if status != "new" and rng.random() < 0.3 else 0
            resolution_due = created + timedelta(minutes=resolution_minutes, seconds=paused)
            resolved_at = closed_at = waiting_since = None
            if status in ("resolved", "closed"):
                resolved_at = created + timedelta(minutes=resolution_minutes * rng.uniform(0.1, 1.15), seconds=paused)
                resolved_at = max(first_response_at, min(resolved_at, now - timedelta(minutes=2)))
                if status == "closed":
                    closed_at = min(resolved_at + timedelta(days=3), now - timedelta(minutes=1))
            if status == "waiting":
                waiting_since = first_response_at + (now - first_response_at) * rng.uniform(0.2, 0.9)
            if status in ("new", "triaging"):
                next_due = min(first_due, resolution_due) if first_response_at is None else resolution_due
                counts["open"] += 1
            else:
                next_due = None
                counts["open"] += status == "waiting"
            first_breached = (first_response_at or now) > first_due
            resolution_breached = status != "waiting" and (resolved_at or now) > resolution_due
            end = closed_at or resolved_at or now

            # Timeline: filed, assigned, conversation, then the status changes that led here.
            n_events = max(2, round(rng.choices(event_counts, cum_weights=event_cum)[0] * event_scale))
            tail = {
                "new": [],
                "triaging": ["triaging"],
                "waiting": ["triaging", "waiting"],
                "resolved": ["triaging", "resolved"],
                "closed": ["triaging", "resolved", "closed"],
            }[status]
            middle = max(0, n_events - 1 - len(tail))
            kinds = ["created"] + (["assignment"] if assignee and middle else [])
            middle -= len(kinds) - 1
            kinds += ["reply" if i % 2 == 0 else "note" for i in range(middle)] if first_response_at else []
            kinds += [f"status:{s}" for s in tail]
            step = (end - created) / max(1, len(kinds))
            previous = "new"
            for i, kind in enumerate(kinds):
                event_id += 1
                at = created + step * i if i else created
                if kind == "reply" and i and first_response_at and at < first_response_at:
                    at = first_response_at
                actor = creator if kind == "created" else (assignee or techs[0])
                body, data = "", "{}"
                if kind == "created":
                    body = description
                    data = json.dumps({"priority": priority, "customer": f"customer {cid}"})
                elif kind == "assignment":
                    data = f'{{"from": null, "to": "bench-tech-{techs.index(assignee) + 1:02d}"}}'
                elif kind == "reply":
                    body = rng.choice(REPLY_LINES)
                elif kind == "note":
                    body = f"{rng.choice(NOTE_LINES)} {' '.join(rng.choices(words, cum_weights=word_cum[family], k=2))}"
                else:
                    target = kind.split(":")[1]
                    data = f'{{"from": "{previous}", "to": "{target}", "reopened": false}}'
                    previous, kind = target, "status"
                e_buf.write(
                    f"{event_id}\t{tid}\t{kind}\t{NULL if actor is None else actor}\t{at.isoformat()}\t{body}\t{data}\n"
                )
                counts["events"] += 1
            updated = created + step * (len(kinds) - 1) if len(kinds) > 1 else created
            t_buf.write(
                f"{tid}\t{subject}\t{description}\t{priority}\t{status}\t{created.isoformat()}\t{updated.isoformat()}\t"
                f"{_ts(first_response_at)}\t{_ts(resolved_at)}\t{_ts(closed_at)}\t{first_due.isoformat()}\t"
                f"{resolution_due.isoformat()}\t{_ts(waiting_since)}\t{paused}\t{_ts(next_due)}\t"
                f"{'t' if first_breached else 'f'}\t{'t' if resolution_breached else 'f'}\t"
                f"{NULL if assignee is None else assignee}\t{NULL if creator is None else creator}\t{cid}\n"
            )
            ticket_tags = {family if family in tag_ids else words[0]}
            if rng.random() < 0.4:
                ticket_tags.add(rng.choice(TAGS))
            for name in ticket_tags:
                tag_row += 1
                tag_buf.write(f"{tag_row}\t{tid}\t{tag_ids.get(name, tag_ids[TAGS[0]])}\n")
            if rng.random() < 0.7:
                link_row += 1
                link_buf.write(f"{link_row}\t{tid}\t{rng.choice(servers[cid])}\n")
            counts["tickets"] += 1
        for sql, buf in (
            (f"COPY triage_ticket ({t_cols}) FROM STDIN", t_buf),
            ("COPY triage_ticketevent (id, ticket_id, kind, actor_id, created_at, body, data) FROM STDIN", e_buf),
            ("COPY triage_ticket_tags (id, ticket_id, tag_id) FROM STDIN", tag_buf),
            ("COPY triage_ticket_servers (id, ticket_id, server_id) FROM STDIN", link_buf),
        ):
            with cur.copy(sql) as copy:
                copy.write(buf.getvalue())
        if (base // chunk) % 10 == 9:
            log(f"[load] ours: {counts['tickets']:,} tickets, {counts['events']:,} events so far")
    counts["tags"], counts["links"] = tag_row, link_row
    return counts


# --- Serving and measuring ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_gunicorn(
    *, name: str, gunicorn: Path, app: str, cwd: Path, env: dict, workers: int, extra: tuple[str, ...] = ()
) -> Server:
    port = free_port()
    log_path = Path(f"/tmp/bench_scale_{name}_gunicorn.log")  # noqa: S108 - a log to read when a server fails
    command = [
        str(gunicorn),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "120",
        "--error-logfile",
        str(log_path),
        *extra,
    ]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: gunicorn exited early; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return Server(name, process, port, log_path)
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"{name}: gunicorn did not listen within 60 s; see {log_path}")


class Client:
    """One keep-alive HTTP/1.1 connection with a cookie jar: the concurrency-1 client."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        data = urllib.parse.urlencode(body) if body is not None else None
        all_headers = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if data is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=all_headers)
                response = self.conn.getresponse()
                content = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # gunicorn's sync workers close idle keep-alive connections; reconnect once.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), content

    def login(self, path: str, username: str, password: str, next_path: str = "") -> None:
        status, _, content = self.request("GET", path)
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', content)
        if status != 200 or not match:
            raise SystemExit(f"login page {path} answered {status} without a CSRF token")
        form = {"csrfmiddlewaretoken": match.group(1).decode(), "username": username, "password": password}
        if next_path:
            form["next"] = next_path
        status, _, _ = self.request("POST", path, form, {"Referer": f"http://127.0.0.1:{self.port}{path}"})
        if status != 302:
            raise SystemExit(f"login as {username} at {path} failed: HTTP {status}")

    def timed_get(self, path: str) -> float:
        started = time.perf_counter()
        status, _, content = self.request("GET", path)
        elapsed = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {content[:300]!r}")
        self.last_content = content
        return elapsed

    def timed_get_with_data(self, path: str) -> float:
        """django-helpdesk's list is a shell page whose table is fetched by a second request: time both."""
        elapsed = self.timed_get(path)
        match = re.search(rb'"(/datatables_ticket_list/[A-Za-z0-9+/=%]+)"', self.last_content)
        if not match:
            raise SystemExit(f"no datatables URL in {path}")
        return elapsed + self.timed_get(match.group(1).decode() + "?draw=1&start=0&length=25")


@dataclass
class Result:
    group: str
    label: str
    samples: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float:
        data = sorted(self.samples)
        if not data:
            return float("nan")
        index = min(len(data) - 1, max(0, math.ceil(q * len(data)) - 1))
        return data[index] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95(self) -> float:
        return self.pct(0.95)

    @property
    def max(self) -> float:
        return max(self.samples) * 1000


def measure(
    client: Client, *, group: str, label: str, paths: list[str], requests: int, warmup: int, with_data: bool = False
) -> Result:
    """Warm each path, then time `requests` GETs cycling through `paths`, one at a time."""
    get = client.timed_get_with_data if with_data else client.timed_get
    for path in paths[:requests]:
        for _ in range(warmup):
            get(path)
    result = Result(group, label)
    for i in range(requests):
        result.samples.append(get(paths[i % len(paths)]))
    # Progress on stderr: django-helpdesk's pages take seconds each, the whole side minutes.
    print(f"  measured {label}: p50 {result.p50:.1f} ms", file=sys.stderr, flush=True)
    return result


def print_results(title: str, results: list[Result], *, targets: bool) -> None:
    log(f"\n[{title}]")
    log(f"  {'page':<52} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
    for r in results:
        verdict = ""
        if targets and r.group in TARGETS_MS:
            limit = TARGETS_MS[r.group]
            verdict = f"p95 < {limit}: " + ("target met" if r.p95 < limit else "target MISSED")
        log(f"  {r.label:<52} {len(r.samples):>4} {r.p50:>8.1f} {r.p95:>8.1f} {r.max:>8.1f}  {verdict}")


def our_pages(scale: Scale, marker: dict, rng: random.Random) -> tuple[dict, dict]:
    """URLs to measure, chosen from the loaded data (busy customer, a tech with open work)."""
    from django.urls import NoReverseMatch, reverse

    from triage.selectors import TICKET_DOCUMENT_SQL

    with psycopg.connect(f"{PG}/{OUR_DB}") as conn:
        busy_customer = conn.execute(
            "SELECT customer_id FROM triage_ticket WHERE status IN ('new','triaging','waiting') "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        mid_customer = conn.execute(
            "SELECT customer_id FROM triage_ticket WHERE status IN ('new','triaging','waiting') "
            "GROUP BY 1 ORDER BY count(*) DESC OFFSET 40 LIMIT 1"
        ).fetchone()[0]
        tech = conn.execute(
            "SELECT u.username FROM triage_ticket t JOIN auth_user u ON u.id = t.assignee_id "
            "WHERE t.status IN ('new','triaging','waiting') GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        max_id = conn.execute("SELECT max(id) FROM triage_ticket").fetchone()[0]
        term_counts = {}
        for term in SEARCH_TERMS:
            # The document the queue searches (stored column or expression, whichever this tree indexes).
            term_counts[term] = conn.execute(
                f"SELECT count(*) FROM triage_ticket WHERE {TICKET_DOCUMENT_SQL} @@ "
                "websearch_to_tsquery('english'::regconfig, %s)",
                [term],
            ).fetchone()[0]
    try:
        dashboard, dashboard_label = reverse("dashboard"), "dashboard"
    except NoReverseMatch:
        dashboard, dashboard_label = reverse("overview"), "overview (no URL named 'dashboard' yet)"
    queue = reverse("queue")
    pages = {
        "queue, default (open, by SLA deadline)": ("queue", [queue]),
        "queue, status+priority+customer": (
            "queue",
            [
                f"{queue}?status=triaging&priority=3&customer={busy_customer}",
                f"{queue}?status=new&priority=2&customer={mid_customer}",
            ],
        ),
        "queue, assignee=me": ("queue", [f"{queue}?assignee=me"]),
        "queue, SLA at risk": ("queue", [f"{queue}?at_risk=on"]),
        "queue, all statuses, newest first": ("queue", [f"{queue}?status=all&sort=newest"]),
    }
    for term in SEARCH_TERMS:
        share = 100 * term_counts[term] / max(1, scale.tickets)
        pages[f"search '{term}' ({share:.2g}% of all)"] = ("search", [f"{queue}?{urllib.parse.urlencode({'q': term})}"])
    pages[f"search '{SEARCH_TERMS[0]}', all statuses"] = (
        "search",
        [f"{queue}?{urllib.parse.urlencode({'q': SEARCH_TERMS[0], 'status': 'all'})}"],
    )
    ticket_ids = [rng.randint(1, max_id) for _ in range(200)]
    pages["ticket page (random tickets)"] = ("ticket", [reverse("ticket", args=[i]) for i in ticket_ids])
    pages[f"manager {dashboard_label}"] = ("dashboard", [dashboard])
    return pages, {"tech": tech, "term_counts": term_counts, "ticket_ids": ticket_ids}


SEARCH_TERMS = ["mail", "certificate", "replication lag", "tcpserver", '"connections refused"']


def bench_ours(args, scale: Scale, marker: dict) -> list[Result]:
    rng = random.Random(scale.seed + 1)  # noqa: S311 - seeded choice of pages
    pages, chosen = our_pages(scale, marker, rng)
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{OUR_DB}",
        "DEBUG": "false",
        "DATABASE_CONN_MAX_AGE": "600",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("TRIAGE_ENV", None)
    # Our production gunicorn settings (the Dockerfile's --config); django-helpdesk runs gunicorn's defaults.
    server = start_gunicorn(
        name="ours",
        gunicorn=ROOT / ".venv/bin/gunicorn",
        app="triage.wsgi:application",
        cwd=ROOT,
        env=env,
        workers=args.workers,
        extra=("--config", "python:triage.gunicorn_conf"),
    )
    try:
        tech = Client(server.port)
        tech.login("/login/", chosen["tech"], PASSWORD)
        manager = Client(server.port)
        manager.login("/login/", "bench-manager-01", PASSWORD)
        log(
            f"\n[ours] gunicorn {args.workers} sync workers on 127.0.0.1:{server.port}, DEBUG off, "
            f"tech {chosen['tech']} (most open tickets), manager bench-manager-01; {load_average()}"
        )
        results = []
        for label, (group, paths) in pages.items():
            client = manager if group == "dashboard" else tech
            results.append(
                measure(
                    client,
                    group=group,
                    label=label,
                    paths=paths,
                    requests=args.requests,
                    warmup=1 if group == "ticket" else args.warmup,
                )
            )
        return results, chosen
    finally:
        server.stop()


def group_summary(results: list[Result]) -> dict[str, Result]:
    groups: dict[str, Result] = {}
    for r in results:
        groups.setdefault(r.group, Result(r.group, f"all {r.group} pages")).samples.extend(r.samples)
    return groups


# --- django-helpdesk ------------------------------------------------------------

HD_SETTINGS = '''"""Minimal project serving django-helpdesk for bench/scale_desk.py (generated; see bench/README.md)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "bench-helpdesk-not-secret-0123456789-0123456789-0123456789"  # noqa: S105 - loopback bench
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "helpdesk",
]
SITE_ID = 1
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.debug",
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ.get("HELPDESK_DB", "bench_helpdesk"),
    "USER": "postgres",
    "HOST": "127.0.0.1",
    "PORT": "5432",
    "CONN_MAX_AGE": 600,
}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/tickets/"
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
# Teams mode needs pinax-teams, which django-helpdesk does not install; the desk has no teams either.
HELPDESK_TEAMS_MODE_ENABLED = False
HELPDESK_DEFAULT_SETTINGS = {"use_email_as_submitter": True, "email_on_ticket_assign": False,
                             "email_on_ticket_change": False, "login_view_ticketlist": True,
                             "tickets_per_page": 25}
'''

HD_URLS = """from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("helpdesk.urls", namespace="helpdesk")),
]
"""


def ensure_helpdesk_venv() -> str:
    python = HD_VENV / "bin/python"
    if not python.exists():
        log(f"[helpdesk] creating {HD_VENV} and installing {', '.join(HD_REQUIREMENTS)} from PyPI")
        subprocess.run([sys.executable, "-m", "venv", str(HD_VENV)], check=True)
    installed = subprocess.run([str(python), "-m", "pip", "show", "django-helpdesk"], capture_output=True, text=True)
    if f"Version: {HELPDESK_VERSION}" not in installed.stdout:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *HD_REQUIREMENTS], check=True)
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import django, helpdesk, sys; from importlib.metadata import version; "
            "print(f\"django-helpdesk {version('django-helpdesk')}, Django {django.get_version()}, "
            'Python {sys.version.split()[0]}")',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return versions.stdout.strip()


def write_helpdesk_project() -> None:
    HD_PROJECT.mkdir(exist_ok=True)
    files = {
        "settings.py": HD_SETTINGS,
        "urls.py": HD_URLS,
        "wsgi.py": "import os\n\nfrom django.core.wsgi import get_wsgi_application\n\n"
        'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")\n'
        "application = get_wsgi_application()\n",
        "manage.py": '#!/usr/bin/env python\nimport os\nimport sys\n\nif __name__ == "__main__":\n'
        '    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")\n'
        "    from django.core.management import execute_from_command_line\n\n"
        "    execute_from_command_line(sys.argv)\n",
    }
    for name, text in files.items():
        path = HD_PROJECT / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def helpdesk_env() -> dict:
    """Our settings module and database URL are in os.environ once Django is set up: not for helpdesk."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    return {**env, "DJANGO_SETTINGS_MODULE": "settings", "HELPDESK_DB": HD_DB}


def hd_manage(*args: str) -> str:
    result = subprocess.run(
        [str(HD_VENV / "bin/python"), "manage.py", *args],
        cwd=HD_PROJECT,
        env=helpdesk_env(),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"helpdesk manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# Our status -> helpdesk's (1 open, 2 reopened, 3 resolved, 4 closed); waiting maps to open + on_hold.
HD_STATUS_SQL = "CASE t.status WHEN 'resolved' THEN 3 WHEN 'closed' THEN 4 ELSE 1 END"


def prepare_helpdesk_database(args, scale: Scale, our_marker: dict) -> dict:
    fresh = args.reload or not database_exists(HD_DB)
    if fresh:
        recreate_database(HD_DB)
    hd_manage("migrate", "-v0")
    with psycopg.connect(f"{PG}/{HD_DB}", autocommit=True) as conn:
        fingerprint = schema_fingerprint(
            conn,
            tables_like="helpdesk_%",
            scale=scale,
            version=f"{LOADER_VERSION}/{HELPDESK_VERSION}/{our_marker.get('loaded_at')}",
        )
        marker = read_marker(conn)
    if marker.get("fingerprint") == fingerprint and not fresh:
        log(
            f"[load] helpdesk: {HD_DB} reused (fingerprint {fingerprint}, loaded in "
            f"{float(marker.get('load_seconds', 0)):.0f} s)"
        )
        return marker
    if not fresh:
        recreate_database(HD_DB)
        hd_manage("migrate", "-v0")
    started = time.perf_counter()
    with psycopg.connect(f"{PG}/{HD_DB}") as dst, psycopg.connect(f"{PG}/{OUR_DB}") as src:
        dst.execute("SET session_replication_role = replica")
        dst.execute("SET synchronous_commit = off")
        heavy = ["helpdesk_ticket", "helpdesk_followup"]
        indexes = secondary_indexes(dst, heavy)
        for name, _ in indexes:
            dst.execute(f'DROP INDEX "{name}"')
        # Staff: the same user names, ids and password hash as ours.
        _stream(
            src,
            dst,
            "SELECT id, password, username, first_name, last_name, email, true, true, true, date_joined FROM auth_user",
            "auth_user (id, password, username, first_name, last_name, email, is_staff, is_active, "
            "is_superuser, date_joined)",
        )
        dst.execute(
            "INSERT INTO helpdesk_usersettings (user_id, settings_pickled, email_on_ticket_assign, "
            "email_on_ticket_change, login_view_ticketlist, tickets_per_page, use_email_as_submitter, "
            "ticket_respond_layout) SELECT id, '', false, false, true, 25, true, 'tabs' FROM auth_user"
        )
        # helpdesk has queues (departments) but no customers: one queue per problem family, as a desk would.
        dst.execute("DELETE FROM helpdesk_queue")
        for i, family in enumerate(FAMILIES, 1):
            dst.execute(
                "INSERT INTO helpdesk_queue (id, title, slug, email_address, locale, allow_public_submission, "
                "allow_email_submission, escalate_days, new_ticket_cc, updated_ticket_cc, email_box_type, "
                "email_box_host, email_box_port, email_box_ssl, email_box_user, email_box_pass, "
                "email_box_imap_folder, email_box_local_dir, email_box_interval, email_box_last_check, "
                "socks_proxy_type, socks_proxy_host, socks_proxy_port, logging_type, logging_dir, "
                "default_owner_id, dedicated_time, permission_name, enable_notifications_on_email_events) "
                "VALUES (%s, %s, %s, '', '', false, false, NULL, '', '', NULL, '', NULL, false, '', '', "
                "'', '', 5, NULL, NULL, NULL, NULL, NULL, '', NULL, NULL, %s, false)",
                [i, family.title(), family, f"helpdesk.view_{family}"],
            )
        # Queue of a ticket: the family of its first tag (the loader tags every ticket with its family's first word).
        first_words = {FAMILIES[f][1][0]: i for i, f in enumerate(FAMILIES, 1)}
        tag_queue = dict(src.execute("SELECT id, name FROM triage_tag").fetchall())
        queue_case = " ".join(
            f"WHEN {tag_id} THEN {first_words[name]}" for tag_id, name in tag_queue.items() if name in first_words
        )
        _stream(
            src,
            dst,
            f"SELECT t.id, t.subject, COALESCE((SELECT min(CASE tt.tag_id {queue_case} END) "
            "FROM triage_ticket_tags tt WHERE tt.ticket_id = t.id), 1), t.created_at, t.updated_at, "
            f"'c' || t.customer_id || '@customers.example', t.assignee_id, {HD_STATUS_SQL}, "
            "t.status = 'waiting', t.description, '', 6 - t.priority, t.resolution_due, NULL, "
            "md5(t.id::text), NULL, NULL FROM triage_ticket t ORDER BY t.id",
            "helpdesk_ticket (id, title, queue_id, created, modified, submitter_email, assigned_to_id, status, "
            "on_hold, description, resolution, priority, due_date, last_escalation, secret_key, kbitem_id, "
            "merged_to_id)",
        )
        # Every timeline entry but the filing (helpdesk keeps that in the ticket itself) becomes a follow-up.
        _stream(
            src,
            dst,
            "SELECT e.id, e.ticket_id, e.created_at, "
            "CASE e.kind WHEN 'reply' THEN 'Comment' WHEN 'note' THEN 'Internal note' "
            "WHEN 'status' THEN 'Status changed' ELSE 'Updated' END, e.body, e.kind <> 'note', e.actor_id, "
            "CASE WHEN e.kind = 'status' THEN CASE e.data->>'to' WHEN 'resolved' THEN 3 WHEN 'closed' THEN 4 "
            "ELSE 1 END END, NULL, NULL FROM triage_ticketevent e WHERE e.kind <> 'created' ORDER BY e.id",
            "helpdesk_followup (id, ticket_id, date, title, comment, public, user_id, new_status, message_id, "
            "time_spent)",
        )
        dst.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            dst.execute(definition)
        for table in ("auth_user", "helpdesk_ticket", "helpdesk_followup", "helpdesk_queue"):
            dst.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        dst.commit()
    with psycopg.connect(f"{PG}/{HD_DB}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM helpdesk_ticket), (SELECT count(*) FROM helpdesk_followup)"
        ).fetchone()
        seconds = time.perf_counter() - started
        marker = {
            "fingerprint": fingerprint,
            "load_seconds": round(seconds, 1),
            "tickets": counts[0],
            "followups": counts[1],
        }
        write_marker(conn, marker)
    log(
        f"[load] helpdesk: {counts[0]:,} tickets, {counts[1]:,} follow-ups, {len(FAMILIES)} queues copied from "
        f"{OUR_DB} in {seconds:.0f} s (COPY out of ours, COPY into helpdesk's tables, indexes rebuilt, VACUUM ANALYZE)"
    )
    return marker


def _stream(src, dst, select: str, target: str) -> None:
    with src.cursor().copy(f"COPY ({select}) TO STDOUT") as out, dst.cursor().copy(f"COPY {target} FROM STDIN") as into:
        for chunk in out:
            into.write(chunk)


def bench_helpdesk(args, our_chosen_ids: list[int]) -> list[Result]:
    server = start_gunicorn(
        name="helpdesk",
        gunicorn=HD_VENV / "bin/gunicorn",
        app="wsgi:application",
        cwd=HD_PROJECT,
        env=helpdesk_env(),
        workers=args.workers,
    )
    try:
        client = Client(server.port)
        client.login("/login/", "bench-manager-01", PASSWORD, next_path="/tickets/")
        log(
            f"\n[helpdesk] gunicorn {args.workers} sync workers on 127.0.0.1:{server.port}, DEBUG off, "
            f"staff bench-manager-01; {load_average()}"
        )
        # (group, paths, page + its datatables request)
        pages = {"ticket list (page + table data, open)": ("queue", ["/tickets/"], True)}
        for term in SEARCH_TERMS:
            pages[f"search '{term}' (page + table data)"] = (
                "search",
                [f"/tickets/?{urllib.parse.urlencode({'q': term})}"],
                True,
            )
        pages["ticket page (same random tickets)"] = ("ticket", [f"/tickets/{i}/" for i in our_chosen_ids], False)
        pages["dashboard (/dashboard/)"] = ("dashboard", ["/dashboard/"], False)
        results = []
        for label, (group, paths, with_data) in pages.items():
            results.append(
                measure(
                    client,
                    group=group,
                    label=label,
                    paths=paths,
                    with_data=with_data,
                    requests=max(3, args.requests // args.helpdesk_divisor),
                    warmup=1,
                )
            )
        return results
    finally:
        server.stop()


def print_side_by_side(ours: list[Result], theirs: list[Result]) -> None:
    log("\n[side by side: p50 / p95 ms, ratio of p95 helpdesk / ours]")
    pairs = [("ticket list", "queue, default (open, by SLA deadline)", "ticket list (page + table data, open)")]
    for term in SEARCH_TERMS:
        pairs.append(
            (
                f"search '{term}'",
                next(r.label for r in ours if r.label.startswith(f"search '{term}' (")),
                f"search '{term}' (page + table data)",
            )
        )
    pairs.append(("ticket page", "ticket page (random tickets)", "ticket page (same random tickets)"))
    pairs.append(("dashboard", next(r.label for r in ours if r.group == "dashboard"), "dashboard (/dashboard/)"))
    by_label = {r.label: r for r in ours + theirs}
    log(f"  {'page':<32} {'ours':>16} {'helpdesk':>20} {'ratio':>8}")
    for name, mine, other in pairs:
        a, b = by_label.get(mine), by_label.get(other)
        if not a or not b:
            continue
        log(f"  {name:<32} {a.p50:>7.1f} / {a.p95:>6.1f} {b.p50:>9.1f} / {b.p95:>8.1f} {b.p95 / a.p95:>7.1f}x")


# --- Main -----------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--techs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page (ours)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per URL before timing")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (one per core)")
    parser.add_argument(
        "--helpdesk-divisor", type=int, default=4, help="helpdesk pages take seconds: time requests/N of them"
    )
    parser.add_argument("--reload", action="store_true", help="drop and reload the bench databases")
    parser.add_argument("--no-helpdesk", action="store_true", help="measure ours only")
    args = parser.parse_args()
    scale = Scale(args.tickets, args.events, args.customers, args.techs, args.seed)
    started = time.perf_counter()
    log(f"[start] {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {load_average()}; PostgreSQL at 127.0.0.1:5432")
    marker = prepare_our_database(args, scale)
    ours, chosen = bench_ours(args, scale, marker)
    print_results(
        f"ours: {int(marker.get('tickets', 0)):,} tickets, {int(marker.get('events', 0)):,} events, "
        f"{args.requests} timed requests per page",
        ours,
        targets=True,
    )
    summary = group_summary(ours)
    log("\n[targets]")
    for group, limit in TARGETS_MS.items():
        r = summary.get(group)
        if r:
            verdict = "target met" if r.p95 < limit else "target MISSED"
            log(
                f"  {group:<10} p95 {r.p95:7.1f} ms over {len(r.samples)} requests (max {r.max:.1f})  "
                f"< {limit} ms: {verdict}"
            )
    if not args.no_helpdesk:
        versions = ensure_helpdesk_venv()
        log(f"\n[helpdesk] {versions} in {HD_VENV.relative_to(ROOT)}")
        write_helpdesk_project()
        prepare_helpdesk_database(args, scale, marker)
        theirs = bench_helpdesk(args, chosen["ticket_ids"])
        print_results(f"django-helpdesk {HELPDESK_VERSION}: same tickets", theirs, targets=False)
        print_side_by_side(ours, theirs)
    log(f"\n[end] wall {time.perf_counter() - started:.0f} s; {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
