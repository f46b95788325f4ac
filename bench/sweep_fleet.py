"""Bench: "Host health" over 50 lab hosts (5 dropping SYNs) end to end, as docker-compose runs the desk,
straight and through one jump host, against OpenSSH's own client fanned out with ``xargs -P 50`` over
the same hosts and commands (with ``-J`` through the jump host).

Targets (from the issue), with the shipped compose settings:
1. the sweep's wall time (the API call that starts it to the sweep's API saying finished) within 1.0x
   of OpenSSH ``xargs -P 50`` running the same 8 commands, measured in the same run;
2. every run on a reachable host succeeded;
3. at most 20 database connections in use at any moment of the sweep (``pg_stat_activity``);
4. the slowest live host's run (first API call to its diagnosis) within the connect bound + 3 s:
   dead hosts cost their connect timeout in parallel and hold nothing else up;
5. the same sweep through one jump host within 1.2x of OpenSSH with ``-J`` (2 is judged there too;
   3 and 4 are printed for reading).

What runs (nothing is mocked): a PostgreSQL database of the bench's own on 127.0.0.1:5432, a
redis-server of its own (compose's options: append-only, fsync every second), and the processes
docker-compose.yml starts, with the commands it gives them (read from docker-compose.yml and the
Dockerfile's CMD: gunicorn with ``triage/gunicorn_conf.py``, the general worker, the collector,
beat; compose's ``migrate`` commands first) and the environment a deployer's ``.env`` gives them:
``.env.example``'s values with real secrets, then what compose decides (production mode, the
database, the broker). mailgate is not started (nothing on this path uses it).

Two routes to a fleet of 50 lab hosts (5 dropping SYNs), both by default (``--path``):
**direct**, hosts on the lab's bridge; **jump**, 50 other hosts on a private network reachable only
through one bastion (its sshd's MaxStartups raised to 100:30:200, as a bastion in front of a fleet is:
sshd's default 10:30:100 drops logins beyond 10 at random, for OpenSSH as for us), the customer's
default jump chain that bastion (credential and pinned key as an admin stores them). Per repeat and
route, in rotating order: **ours**, one ``POST /api/v1/customers/<id>/sweeps/`` ("Host health" on every
server of the customer), then ``GET /api/v1/sweeps/<id>/`` every 0.2 s until it says ``finished``
(every run terminal and diagnosed); **OpenSSH**, ``xargs -P 50 ssh ... '<the same 8 commands>'``
(bench/sweep_hosts.py), through the bastion ``ssh -F <config> -J root@<bastion>``. A thread samples
``pg_stat_activity`` for the bench database every 100 ms during ours. Where the time goes comes from
the runs' own timestamps, read from the database (queue wait, login, slowest probe, storing and other
overhead, matching).

Exits non-zero only when the bench could not run (no lab, PostgreSQL or Redis missing, a process
that would not start, a sweep that never finished). Leaves nothing behind: processes stopped,
database dropped, lab and temporary files removed.

    .venv/bin/python bench/sweep_fleet.py [--path both|direct|jump] [--hosts 50] [--unreachable 5] [--repeat 3]
                                          [--set NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import _lab_setup as bench  # first: puts the repository on sys.path
import yaml
from sweep_hosts import Sweep, _build_lab, _openssh, _playbook_commands

from tests.lab import Lab

ROOT = bench.ROOT
PLAYBOOK = "Host health"
SLACK = 3.0  # seconds beyond the connect bound that the slowest live host may take
MAX_DB_CONNECTIONS = 20
POLL_EVERY = 0.2  # seconds between the client's polls of the API
SAMPLE_EVERY = 0.1  # seconds between samples of pg_stat_activity
SWEEP_TIMEOUT = 300.0
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"
WARM_HOSTS = 6
# sshd's default MaxStartups (10:30:100) drops unauthenticated connections beyond 10 at random: 50 logins
# at once through one bastion would hit it, for OpenSSH as for us. A bastion in front of a fleet is set
# higher; the bench's bastion is, for both sides alike.
BASTION_MAX_STARTUPS = "100:30:200"
# OpenSSH -J cannot bound the host leg's TCP connect (the bastion makes it): see _build_routes.
BASTION_SYN_RETRIES = 2  # SYNs at 0, 1 and 3 s: the bastion's kernel gives up at 7 s
JUMP_HOST_LEG_CEILING = 30  # s: OpenSSH's ConnectTimeout for the host leg, bastion login included


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- the deployment ----------------------------------------------------------------------------


def production_env(*, var_dir: Path, database: str, broker: str, overrides: dict[str, str]) -> dict[str, str]:
    """What compose gives every app container: .env.example's values (as a deployer's .env, real
    secrets in place of the placeholders), then compose's own ``environment`` decisions."""
    from cryptography.fernet import Fernet

    example = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), re.MULTILINE))
    example.update(
        SECRET_KEY=secrets.token_urlsafe(64),
        CREDENTIALS_KEYS=Fernet.generate_key().decode(),
        POSTGRES_PASSWORD=secrets.token_urlsafe(16),
        ALLOWED_HOSTS=HOST,
        CSRF_TRUSTED_ORIGINS=f"https://{HOST}",
        TRIAGE_SITE_URL=f"https://{HOST}",
        EMAIL_HOST=HOST,
    )
    example.update(overrides)  # --set: what a deployer would change in .env
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "TRIAGE_"))}
    env.update(example)
    env.update(
        TRIAGE_ENV="production",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        CELERY_BROKER_URL=broker,
        TRIAGE_VAR_DIR=str(var_dir),
        TRIAGE_MAIL_HOST=HOST,
        TRIAGE_MAIL_PORT=str(free_port()),
        DJANGO_SETTINGS_MODULE="triage.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def compose_commands(*, web_port: int, var_dir: Path) -> dict[str, list[str]]:
    """The argv of each service, as docker-compose.yml (and the Dockerfile's CMD for web) give them,
    made runnable here: this venv's python, the bench's own port and directories."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    cmd = re.search(
        r"^CMD (\[.*?\])\s*$", (ROOT / "Dockerfile").read_text().replace("\\\n", ""), re.MULTILINE | re.DOTALL
    )
    web = json.loads(cmd.group(1))
    web[web.index("--bind") + 1] = f"{HOST}:{web_port}"

    def local(argv: list[str]) -> list[str]:
        argv = [str(var_dir / "beat-schedule") if a.startswith("/app/var/beat/") else a for a in argv]
        head = {
            "python": [sys.executable],
            "celery": [sys.executable, "-m", "celery"],
            "gunicorn": [sys.executable, "-m", "gunicorn"],
        }[argv[0]]
        return [*head, *argv[1:]]

    migrate = services["migrate"]["command"]
    assert migrate[:2] == ["sh", "-c"], migrate
    return {
        "migrate": migrate,
        "web": local(web),
        "worker": local(services["worker"]["command"]),
        "collector": local(services["collector"]["command"]),
        "beat": local(services["beat"]["command"]),
    }


class Process:
    """A child in a process group of its own, output to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise SystemExit(f"bench: {self.name} exited {self.popen.returncode}: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # children of a warm shutdown that outlived it
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


def wait_for(condition, *, timeout: float, what: str, processes: list[Process] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            process.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def redis_server(directory: Path, port: int) -> Process:
    """As compose's redis service: append-only, fsync every second."""
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        HOST,
        "--dir",
        str(directory),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
    ]
    return Process("redis", argv, dict(os.environ), directory / "redis.log")


def postgres(sql: str, *args) -> list[tuple]:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as db:
        cursor = db.execute(sql, args or None)
        return cursor.fetchall() if cursor.description else []


# --- the API client ------------------------------------------------------------------------------


class Api:
    """The desk's HTTP API as a client behind the TLS proxy sees it (the proxy's headers set)."""

    def __init__(self, port: int, token: str):
        self.base = f"http://{HOST}:{port}/api/v1"
        self.headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "127.0.0.1",
            "Host": HOST,
        }

    def call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - http, ours
            self.base + path,
            data=data,
            method=method,
            headers=self.headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the bench's own server
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise SystemExit(f"bench: {method} {path} answered {exc.code}: {exc.read()[:500]!r}") from None


def start_sweep(api: Api, *, customer: int, playbook: int) -> dict:
    """The one call that starts the playbook on every server of the customer: the sweep as created."""
    return api.call("POST", f"/customers/{customer}/sweeps/", {"playbook": playbook})


def wait_finished(api: Api, *, sweep: int, timeout: float) -> dict:
    """Poll the sweep's API until it says finished (every run terminal and diagnosed); its last view."""
    deadline = time.monotonic() + timeout
    while True:
        body = api.call("GET", f"/sweeps/{sweep}/")
        if body["finished"]:
            return body
        if time.monotonic() > deadline:
            raise SystemExit(
                f"bench: sweep {sweep}: {body['total'] - body['settled']} of {body['total']} runs not "
                f"settled after {timeout:g} s"
            )
        time.sleep(POLL_EVERY)


class ConnectionSampler:
    """Samples the bench database's sessions in pg_stat_activity (all, and those not idle) from a thread."""

    def __init__(self, database: str):
        self.database = database
        self.stop = threading.Event()
        self.samples: list[tuple[int, int]] = []
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(ADMIN_DSN, autocommit=True) as db:
            while not self.stop.is_set():
                row = db.execute(
                    "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.database,),
                ).fetchone()
                self.samples.append(row)
                self.stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> ConnectionSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    @property
    def peak(self) -> int:
        return max((total for total, _ in self.samples), default=0)

    @property
    def peak_active(self) -> int:
        return max((active for _, active in self.samples), default=0)


# --- one sweep of ours ---------------------------------------------------------------------------


@dataclass
class Ours:
    wall: float
    runs: list  # CollectionRun rows, re-read after the sweep
    live: set[int]
    db_peak: int
    db_peak_active: int
    posted_in: float  # seconds the one API call that started the sweep took
    server_side: float  # the sweep's own created_at to finished_at, as the API reports them
    phases: dict[str, list[float]] = field(default_factory=dict)
    slowest_live: float = 0.0  # first API call to the slowest live run's diagnosis

    def count(self, state: str) -> int:
        return sum(run.state == state for run in self.runs)

    @property
    def live_all_succeeded(self) -> bool:
        return all(run.state == "succeeded" for run in self.runs if run.pk in self.live)


def sweep_ours(api: Api, *, database: str, customer, playbook, dead: set[str]) -> Ours:
    """One sweep of every server of `customer` through the API: one POST, then polls of the sweep."""
    from django.db import connection
    from django.utils.dateparse import parse_datetime

    from diagnostics.models import CollectionRun

    connection.close()  # the bench's own session is no part of the figure
    with ConnectionSampler(database) as sampler:
        started_epoch, started = time.time(), time.monotonic()
        created = start_sweep(api, customer=customer.pk, playbook=playbook.pk)
        posted_in = time.monotonic() - started
        body = wait_finished(api, sweep=created["id"], timeout=SWEEP_TIMEOUT)
        wall = time.monotonic() - started
    server_side = (parse_datetime(body["finished_at"]) - parse_datetime(body["created_at"])).total_seconds()
    run_ids = [host["run"] for host in body["hosts"]]
    runs = list(CollectionRun.objects.filter(pk__in=run_ids).select_related("server").prefetch_related("evidence"))
    live = {run.pk for run in runs if run.server.address not in dead}
    result = Ours(wall, runs, live, sampler.peak, sampler.peak_active, posted_in, server_side)
    result.phases = phases(runs, live)
    result.slowest_live = max(run.diagnosed_at.timestamp() - started_epoch for run in runs if run.pk in live)
    connection.close()
    return result


def phases(runs, live: set[int]) -> dict[str, list[float]]:
    """Per live run, where its time went, from its own timestamps."""
    out: dict[str, list[float]] = {name: [] for name in PHASES}
    for run in runs:
        if run.pk not in live or run.finished_at is None or run.diagnosed_at is None:
            continue
        collection = (run.finished_at - run.started_at).total_seconds()
        probes = [e.duration for e in run.evidence.all() if e.probe != "ssh_session" and e.duration is not None]
        slowest = max(probes, default=0.0)
        login = run.auth_seconds or 0.0
        stored = [e.recorded_at for e in run.evidence.all() if e.probe != "ssh_session"]
        out["queue wait (started - created)"].append((run.started_at - run.created_at).total_seconds())
        if run.enqueued_at is not None:
            out["  of which in the POST (enqueued - created)"].append(
                (run.enqueued_at - run.created_at).total_seconds()
            )
            out["  of which broker to a collector thread (started - enqueued)"].append(
                (run.started_at - run.enqueued_at).total_seconds()
            )
        out["connect + login (auth_seconds)"].append(login)
        out["slowest probe (Evidence.duration)"].append(slowest)
        out["  all probes' durations summed (over the host's channels)"].append(sum(probes))
        out["storing + other (collection - login - slowest probe)"].append(collection - login - slowest)
        if stored:
            out["  of which after the last probe stored (finished - last)"].append(
                (run.finished_at - max(stored)).total_seconds()
            )
        out["collection (finished - started)"].append(collection)
        out["matching (diagnosed - finished)"].append((run.diagnosed_at - run.finished_at).total_seconds())
        out["end to end (diagnosed - created)"].append((run.diagnosed_at - run.created_at).total_seconds())
    return out


PHASES = [
    "queue wait (started - created)",
    "  of which in the POST (enqueued - created)",
    "  of which broker to a collector thread (started - enqueued)",
    "connect + login (auth_seconds)",
    "slowest probe (Evidence.duration)",
    "  all probes' durations summed (over the host's channels)",
    "storing + other (collection - login - slowest probe)",
    "  of which after the last probe stored (finished - last)",
    "collection (finished - started)",
    "matching (diagnosed - finished)",
    "end to end (diagnosed - created)",
]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# --- main ----------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=_positive, default=50, help="lab hosts (default 50)")
    parser.add_argument("--unreachable", type=int, default=5, help="of which drop SYNs to port 22 (default 5)")
    parser.add_argument("--repeat", type=_positive, default=3, help="timed repeats (default 3)")
    parser.add_argument(
        "--path",
        choices=("both", "direct", "jump"),
        default="both",
        help="straight to the hosts, through one bastion (-J for OpenSSH), or both (default)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a .env setting other than .env.example's, e.g. TRIAGE_COLLECT_DB_CONNECTIONS=12",
    )
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set if "=" in item)
    if len(overrides) != len(args.set):
        parser.error("--set takes NAME=VALUE")
    bench.require_lab()
    for tool in ("redis-server", "xargs", "ssh"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is needed")
    try:
        postgres("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure here means no PostgreSQL to bench against
        raise SystemExit(f"bench: PostgreSQL on 127.0.0.1:5432 (user postgres) is needed: {exc}") from None

    database = f"bench_fleet_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="triage-fleet-") as tmp, contextlib.ExitStack() as cleanup:
        tmp_dir = Path(tmp)
        var_dir = tmp_dir / "var"
        (var_dir / "beat").mkdir(parents=True)
        postgres(f'CREATE DATABASE "{database}"')
        cleanup.callback(lambda: postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        redis_port = free_port()
        redis = redis_server(tmp_dir, redis_port)
        cleanup.callback(redis.stop)
        env = production_env(
            var_dir=var_dir, database=database, broker=f"redis://{HOST}:{redis_port}/0", overrides=overrides
        )
        wait_for(
            lambda: bench.run(["redis-cli", "-p", str(redis_port), "ping"], timeout=5).stdout.strip() == b"PONG",
            timeout=20,
            what="redis-server",
            processes=[redis],
        )
        web_port = free_port()
        commands = compose_commands(web_port=web_port, var_dir=var_dir)

        started = time.monotonic()
        path = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # `python` in compose's command: this venv's
        migrate = subprocess.run(  # noqa: S603 - compose's
            commands["migrate"],
            cwd=ROOT,
            env={**env, "PATH": path},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if migrate.returncode:
            raise SystemExit(f"bench: compose's migrate failed: {migrate.stdout[-1500:]}{migrate.stderr[-1500:]}")
        print(
            f"sweep_fleet: database {database} migrated, roles, playbooks and knowledge base loaded "
            f"(compose's migrate service) in {time.monotonic() - started:.1f} s (not timed)"
        )

        os.environ.update({k: v for k, v in env.items() if k not in ("PATH",)})
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        from api.services import token_create
        from diagnostics.models import Playbook
        from diagnostics.playbooks import DEFAULT_PLAYBOOKS
        from tests.conftest import make_user
        from triage import access

        book = next(b for b in DEFAULT_PLAYBOOKS if b["name"] == PLAYBOOK)
        connect_timeout = settings.TRIAGE_SSH_TIMEOUTS["connect"]
        print(
            f"playbook {PLAYBOOK!r} ({', '.join(s['probe'] for s in book['steps'])}) on {args.hosts} lab hosts, "
            f"{args.unreachable} dropping SYNs; connect timeout {connect_timeout} s; {args.repeat} repeats"
        )
        for name in ("web", "worker", "collector", "beat"):
            print(f"  {name}: {' '.join(commands[name][1:])}")
        print(
            f"  settings: WEB_CONCURRENCY={env.get('WEB_CONCURRENCY')}, TRIAGE_COLLECT_CONCURRENCY="
            f"{settings.TRIAGE_COLLECT_CONCURRENCY}, TRIAGE_WORKER_CONCURRENCY="
            f"{getattr(settings, 'TRIAGE_WORKER_CONCURRENCY', '(not a setting: compose literal)')}, "
            f"TRIAGE_COLLECT_DB_CONNECTIONS={getattr(settings, 'TRIAGE_COLLECT_DB_CONNECTIONS', '(not a setting)')}, "
            f"DATABASE_CONN_MAX_AGE={env.get('DATABASE_CONN_MAX_AGE')}, TRIAGE_SSH_CHANNELS_PER_HOST="
            f"{settings.TRIAGE_SSH_CHANNELS_PER_HOST}"
        )
        print(bench.machine())

        routes = _build_routes(cleanup, tmp_dir, args)
        user = make_user("fleet-tech", access.TECH, password=secrets.token_urlsafe(16))
        _, key = token_create(user=user, name="sweep bench")
        playbook = Playbook.objects.get(name=PLAYBOOK)
        connection.close()

        processes = {
            name: Process(name, commands[name], env, tmp_dir / f"{name}.log")
            for name in ("web", "worker", "collector", "beat")
        }
        for process in processes.values():
            cleanup.callback(process.stop)
        api = Api(web_port, key)
        wait_for(
            lambda: all(" ready." in processes[n].log() for n in ("worker", "collector")),
            timeout=120,
            what="the workers to be ready",
            processes=list(processes.values()),
        )
        wait_for(lambda: _answers(web_port), timeout=60, what="gunicorn", processes=list(processes.values()))
        # Untimed: a small sweep per route warms every process (gunicorn workers' first requests, the
        # knowledge base's compiled scanner, paramiko's imports), as a desk that has been up is.
        for route in routes:
            started = time.monotonic()
            sweep_ours(api, database=database, customer=route.warm_customer, playbook=playbook, dead=route.dead)
            print(
                f"warm-up ({route.name}): one untimed sweep of {WARM_HOSTS} live hosts, "
                f"{time.monotonic() - started:.1f} s"
            )
        print()

        remote = "; ".join(bench.remote_commands(_playbook_commands()))
        for index in range(args.repeat):
            for route in routes:
                sides = {
                    "ours": lambda route=route: sweep_ours(
                        api, database=database, customer=route.customer, playbook=playbook, dead=route.dead
                    ),
                    "openssh": lambda route=route: _openssh(route.hosts, remote, route.openssh_argv, tmp_dir / "out"),
                }
                order = list(sides)
                turn = order[index % len(order) :] + order[: index % len(order)]
                for name in turn:
                    route.results[name].append(sides[name]())
                for process in processes.values():
                    process.check_alive()
                ours, theirs = route.results["ours"][-1], route.results["openssh"][-1]
                print(
                    f"repeat {index + 1} {route.name} (order {' > '.join(turn)}): ours {ours.wall:.3f} s "
                    f"({_states(ours)}; the POST that started it {ours.posted_in:.3f} s; sweep created to finished "
                    f"{ours.server_side:.3f} s; slowest live host {ours.slowest_live:.3f} s; DB connections peak "
                    f"{ours.db_peak}, {ours.db_peak_active} active); OpenSSH {theirs.wall:.3f} s "
                    f"({_counts(theirs)}); ratio {ours.wall / theirs.wall:.2f}"
                )
        for route in routes:
            print()
            _report(route, connect_timeout=connect_timeout, hosts=args.hosts)
        print()
        print(f"end: {bench.machine()}")
    return 0


@dataclass
class Route:
    """One way to the fleet: straight to the hosts, or through one bastion. Ours sweeps `customer`
    (one server per host); OpenSSH runs `openssh_argv` per host."""

    name: str
    label: str  # the OpenSSH anchor, for the report
    target: float  # the ratio ours / OpenSSH the issue allows
    hosts: list
    dead: set[str]
    customer: object
    warm_customer: object
    openssh_argv: list[str]
    results: dict[str, list] = field(default_factory=lambda: {"ours": [], "openssh": []})


def _customer(name: str):
    from triage.models import Customer, SlaTier

    customer = Customer.objects.create(name=name, sla_tier=SlaTier.objects.get(name="Gold"))
    customer.contacts.create(email=f"ops@{name.lower().replace(' ', '-')}.test")
    return customer


def _build_routes(cleanup: contextlib.ExitStack, tmp_dir: Path, args) -> list[Route]:
    """The lab (untimed) and, per route asked for, its customers, servers and OpenSSH command line."""
    from django.conf import settings

    from diagnostics.services import jump_chain_set
    from tests.lab_servers import lab_jump_host, lab_server

    connect_timeout = settings.TRIAGE_SSH_TIMEOUTS["connect"]
    started = time.monotonic()
    lab = cleanup.enter_context(Lab())
    routes = []

    def servers(customer, warm_customer, hosts, dead) -> None:
        for host in hosts:
            lab_server(customer, host)
        for host in [h for h in hosts if h.address not in dead][:WARM_HOSTS]:
            lab_server(warm_customer, host)

    if args.path in ("both", "direct"):
        hosts, dead = _build_lab(lab, args.hosts, args.unreachable)
        known_hosts = tmp_dir / "known_hosts"
        known_hosts.write_text("".join(host.known_hosts_line + "\n" for host in hosts))
        customer, warm = _customer("Fleet Hosting"), _customer("Warm Hosting")
        servers(customer, warm, hosts, dead)
        argv = bench.openssh_argv(key=lab.client_key_path, known_hosts=known_hosts, connect_timeout=connect_timeout)
        routes.append(
            Route("direct", f"OpenSSH as shipped, xargs -P {args.hosts}", 1.0, hosts, dead, customer, warm, argv)
        )
        print(
            f"lab: {len(hosts)} hosts ({hosts[0].address} to {hosts[-1].address}); SYNs dropped by "
            f"{', '.join(sorted(dead)) or 'none'}"
        )
    if args.path in ("both", "jump"):
        private = lab.add_private_network()
        bastion = lab.add_host(
            "bastion",
            own_pids=True,
            resolv_conf=bench.RESOLV_CONF,
            also_on=private,
            sshd_options={"MaxStartups": BASTION_MAX_STARTUPS},
        )
        hosts, dead = _build_lab(lab, args.hosts, args.unreachable, prefix="j", network=private)
        customer, warm = _customer("Fleet Behind Bastion"), _customer("Warm Behind Bastion")
        for owner in (customer, warm):  # each customer's default chain: the one bastion, key pinned
            jump_chain_set(customer=owner, jump_hosts=[lab_jump_host(owner, bastion)])
        servers(customer, warm, hosts, dead)
        # OpenSSH's -J passes only -F (and -v, -l, -p) to the ssh it runs for the jump, so the options of
        # both legs go in one config file: the same key, known_hosts (the bastion's key too) and bounds.
        # The bastion leg gets the connect bound. The host's leg cannot bound its own TCP connect: the
        # bastion's sshd makes it, bounded only by that machine's kernel, and ssh's ConnectTimeout for
        # that leg runs from the jump ssh's start to the host's banner, bastion login included. Set to the
        # connect bound it failed 42 of 45 live hosts in a repeat on this loaded 2-CPU machine (50
        # bastion logins and 50 host logins at once); at twice it, 0-33 per repeat. So the bastion's kernel gives up a
        # dead host's SYNs after 7 s (tcp_syn_retries 2 in its namespace, for both sides: as a bastion in
        # front of a fleet may be tuned) and the host leg's ConnectTimeout is a ceiling nothing reaches.
        # Ours bounds the channel open to the host by its own connect bound (5 s), which fires first.
        bench.check_ok(
            bench.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    bastion.namespace,
                    "sysctl",
                    "-qw",
                    f"net.ipv4.tcp_syn_retries={BASTION_SYN_RETRIES}",
                ],
                timeout=10,
            ),
            "sysctl tcp_syn_retries in the bastion's namespace",
        )
        known_hosts = tmp_dir / "known_hosts_jump"
        known_hosts.write_text("".join(host.known_hosts_line + "\n" for host in [bastion, *hosts]))
        config = tmp_dir / "ssh_config_jump"
        config.write_text(f"""Host {bastion.address}
  ConnectTimeout {connect_timeout:g}

Host *
  IdentityFile {lab.client_key_path}
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile {known_hosts}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout {JUMP_HOST_LEG_CEILING:g}
  Port 22
""")
        argv = ["ssh", "-F", str(config), "-J", f"root@{bastion.address}"]
        print(
            f"OpenSSH -J: ssh -F <config> -J root@{bastion.address} root@<host>; ConnectTimeout "
            f"{connect_timeout:g} s to the bastion, {JUMP_HOST_LEG_CEILING:g} s (a ceiling) to the host; the "
            f"bastion's kernel gives up a dead host's SYNs after 7 s (tcp_syn_retries {BASTION_SYN_RETRIES}, "
            "both sides), ours its own connect bound first"
        )
        routes.append(Route("jump", f"OpenSSH -J, xargs -P {args.hosts}", 1.2, hosts, dead, customer, warm, argv))
        print(
            f"lab: bastion {bastion.address} (sshd MaxStartups {BASTION_MAX_STARTUPS}, tcp_syn_retries "
            f"{BASTION_SYN_RETRIES}; both sides) in front of "
            f"{len(hosts)} hosts on {private.subnet} ({hosts[0].address} to {hosts[-1].address}), reachable only "
            f"through it; SYNs dropped by {', '.join(sorted(dead)) or 'none'}"
        )
    print(f"lab built in {time.monotonic() - started:.1f} s (not timed)")
    return routes


def _answers(port: int) -> bool:
    try:
        request = urllib.request.Request(f"http://{HOST}:{port}/healthz", headers={"Host": HOST})
        urllib.request.urlopen(request, timeout=5).read()  # noqa: S310 - the bench's own server
    except urllib.error.HTTPError:
        return True  # it answers (503 until beat's first worker heartbeat)
    except OSError:
        return False
    return True


def _states(ours: Ours) -> str:
    states: dict[str, int] = {}
    for run in ours.runs:
        kind = f"{run.state}/{run.failure_kind}" if run.failure_kind else run.state
        states[kind] = states.get(kind, 0) + 1
    return " ".join(f"{n} {state}" for state, n in sorted(states.items()))


def _counts(sweep: Sweep) -> str:
    counts: dict[str, int] = {}
    for outcome in sweep.outcomes:
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
    return " ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def _report(route: Route, *, connect_timeout: int, hosts: int) -> None:
    ours: list[Ours] = route.results["ours"]
    theirs: list[Sweep] = route.results["openssh"]
    median = statistics.median
    wall, anchor = median(o.wall for o in ours), median(t.wall for t in theirs)
    direct = route.name == "direct"
    print(
        f"== {route.name}: "
        + (
            "straight to the hosts"
            if direct
            else f"through one bastion (sshd MaxStartups {BASTION_MAX_STARTUPS}, tcp_syn_retries {BASTION_SYN_RETRIES})"
        )
    )
    print("where the time goes, per live run (seconds, all repeats pooled):")
    print(f"  {'phase':<62} {'median':>8} {'p95':>8} {'max':>8}")
    for name in PHASES:
        values = [v for o in ours for v in o.phases[name]]
        if values:
            print(f"  {name:<62} {median(values):8.3f} {p95(values):8.3f} {max(values):8.3f}")
    dead_spans = [
        (r.finished_at - r.started_at).total_seconds()
        for o in ours
        for r in o.runs
        if r.pk not in o.live and r.finished_at and r.started_at
    ]
    if dead_spans:
        print(f"  unreachable hosts' runs, started to finished: {min(dead_spans):.3f}-{max(dead_spans):.3f} s")
    print(
        f"  the one POST that starts the sweep: {summary(o.posted_in for o in ours)}; the sweep's own created_at "
        f"to finished_at: {summary(o.server_side for o in ours)}"
    )
    print()
    print(f"{'(medians over repeats; max in brackets)':<52} wall s")
    print(f"{'ours: API -> Celery -> collector -> diagnosed':<52} {wall:7.3f} ({max(o.wall for o in ours):.3f})")
    print(f"{route.label:<52} {anchor:7.3f} ({max(t.wall for t in theirs):.3f})")
    print(f"{'OpenSSH: answered hosts done':<52} {median(t.reachable_done for t in theirs):7.3f}")
    given_up = [o.seconds for t in theirs for o in t.outcomes if o.address in route.dead and o.seconds is not None]
    if given_up:
        print(f"{'OpenSSH: SYN-dropping hosts given up at':<52} {min(given_up):7.3f}-{max(given_up):.3f}")
    print()
    ratios = ", ".join(f"{o.wall / t.wall:.2f}" for o, t in zip(ours, theirs, strict=True))

    def planned(sweep: Sweep) -> list:
        return [o for o in sweep.outcomes if o.state != ("unreachable" if o.address in route.dead else "ok")]

    unexpected = [o for t in theirs for o in planned(t)]
    # An OpenSSH repeat that failed live hosts finished early by failing them: no yardstick for a sweep
    # whose runs succeeded. The verdict is on the repeats whose anchor reached every live host.
    clean = [(o, t) for o, t in zip(ours, theirs, strict=True) if not planned(t)]
    if not clean:
        verdict = f"not judged: OpenSSH failed live hosts in every repeat ({len(unexpected)} in all), no anchor"
    elif len(clean) == len(ours):
        verdict = bench.verdict(wall <= route.target * anchor)
    else:
        clean_wall, clean_anchor = median(o.wall for o, _ in clean), median(t.wall for _, t in clean)
        verdict = (
            f"on the {len(clean)} of {len(ours)} repeats where OpenSSH reached every live host: "
            f"{clean_wall:.3f} / {clean_anchor:.3f} s = {clean_wall / clean_anchor:.2f} -> "
            f"{bench.verdict(clean_wall <= route.target * clean_anchor)}"
        )
    print(
        f"target: within {route.target:.1f}x of {route.label}: median {wall:.3f} / {anchor:.3f} s = "
        f"{wall / anchor:.2f} (per repeat {ratios}) -> {verdict}"
    )
    live_ours, live_theirs = median(o.slowest_live for o in ours), median(t.reachable_done for t in theirs)
    print(
        f"(for reading: live hosts only, ours first API call to the slowest live host diagnosed / OpenSSH answered "
        f"hosts done: median {live_ours:.3f} / {live_theirs:.3f} s = {live_ours / live_theirs:.2f})"
    )
    failed = [
        (index + 1, run)
        for index, o in enumerate(ours)
        for run in o.runs
        if run.pk in o.live and run.state != "succeeded"
    ]
    print(
        f"target: every reachable run succeeded: {sum(len(o.live) for o in ours) - len(failed)} of "
        f"{sum(len(o.live) for o in ours)} over {len(ours)} repeats -> {bench.verdict(not failed)}"
    )
    for repeat, run in failed[:10]:
        print(f"  repeat {repeat}: {run.server.name} {run.state} ({run.failure_kind}): {run.reason[:200]}")
    if unexpected:
        print(
            f"  (OpenSSH: {len(unexpected)} host outcomes not as planned (per repeat "
            f"{', '.join(str(len(planned(t))) for t in theirs)}), e.g. {unexpected[0].address} "
            f"{unexpected[0].state}: {unexpected[0].detail[:200]})"
        )
    # The issue sets these two for the direct sweep; through the bastion they are printed for reading.
    prefix = "target:" if direct else "(for reading)"
    peak = max(o.db_peak for o in ours)
    print(
        f"{prefix} at most {MAX_DB_CONNECTIONS} database connections in use: peak {peak} sessions "
        f"(per repeat {', '.join(str(o.db_peak) for o in ours)}; not idle at once: "
        f"{max(o.db_peak_active for o in ours)})"
        + (f" -> {bench.verdict(peak <= MAX_DB_CONNECTIONS)}" if direct else "")
    )
    bound = connect_timeout + SLACK
    slowest = median(o.slowest_live for o in ours)
    print(
        f"{prefix} slowest live host diagnosed within the connect bound + {SLACK:g} s = {bound:g} s of the first "
        f"API call: median {slowest:.3f} s, max {max(o.slowest_live for o in ours):.3f} s"
        + (f" -> {bench.verdict(slowest <= bound)}" if direct else "")
    )
    print(
        f"(for reading: the whole sweep against the same bound: median wall {wall:.3f} s -> "
        f"{'within' if wall <= bound else 'over'} {bound:g} s)"
    )


def summary(values) -> str:
    values = list(values)
    return f"median {statistics.median(values):.3f} s, max {max(values):.3f} s"


if __name__ == "__main__":
    raise SystemExit(main())
