"""Bench: do unreachable hosts starve a Collect on a live one? Through the user's path:
``services.run_request`` -> Celery (a redis-server of the bench's own) -> the desk's worker -> lab hosts.

The scene, per repeat: Collect is pressed on `--dead` unreachable hosts (half drop SYNs to port
22, half are tarpits that accept TCP and never send a banner), then on `--live` live hosts. The
figure that matters is how long each live host's Collect takes, pressed to diagnosed, beside the
dead runs that are still holding their slots (the desk's timeouts: connect 5 s, banner 10 s).
**Target:** every live Collect is diagnosed within the connect timeout, the shortest bound a dead
host holds its slot for.

Two layouts, measured in the same run, alternating order each repeat:
- **anchor**: collections on 2 prefork slots, as `rundesk`'s worker ran them before they had a
  queue of their own (``--pool=prefork --concurrency=2`` on the collect queue);
- **collector**: the collector as the desk runs it now (triage/worker_commands.py: the collect
  queue on a thread pool of TRIAGE_COLLECT_CONCURRENCY slots, `--collect-concurrency`).

Prints each repeat, then medians and maxima; exits non-zero only on errors (no lab, a live host's
run that did not succeed, a dead one that did). Worker start-up and lab building are not timed.

    .venv/bin/python bench/starvation.py [--dead 4] [--live 2] [--repeat 3] [--collect-concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _lab_setup as bench  # first: puts the repository on sys.path

QUICK = [{"probe": "load", "params": {}}, {"probe": "disk", "params": {}}, {"probe": "memory", "params": {}}]
TARPIT_PORT = 2222


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _setup_django(var_dir: Path) -> None:
    """The real settings on a throwaway SQLite database; forced, so the desk's own is never touched.
    The broker is the bench's own Redis, set on the Celery app once it runs (``app_broker``)."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="triage.settings",
        TRIAGE_ENV="development",
        TRIAGE_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'bench.sqlite3'}",
        CELERY_BROKER_URL="memory://",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dead", type=_positive, default=4, help="unreachable hosts, pressed first (default 4)")
    parser.add_argument("--live", type=_positive, default=2, help="live hosts, pressed after them (default 2)")
    parser.add_argument("--repeat", type=_positive, default=3, help="timed repeats per layout (default 3)")
    parser.add_argument(
        "--collect-concurrency",
        type=_positive,
        default=None,
        help="collector threads (default: TRIAGE_COLLECT_CONCURRENCY)",
    )
    args = parser.parse_args()
    bench.require_lab()

    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "var").mkdir()
        _setup_django(tmp_dir / "var")
        # After Django is set up: these import the desk's models.
        from django.conf import settings

        from tests.lab import Lab
        from tests.worker_support import RedisServer, Worker, app_broker, running, wait_until, worker_env
        from triage import worker_commands

        slots = args.collect_concurrency or settings.TRIAGE_COLLECT_CONCURRENCY
        layouts = {
            "anchor (2 prefork slots)": [
                *worker_commands.CELERY,
                "--pool=prefork",
                "--concurrency=2",
                f"--queues={settings.TRIAGE_COLLECT_QUEUE}",
                "--loglevel=INFO",
            ],
            f"collector ({slots} threads)": worker_commands.collector_argv(concurrency=slots),
        }
        print(
            f"starvation: Collect on {args.dead} unreachable hosts ({(args.dead + 1) // 2} dropping SYNs, "
            f"{args.dead // 2} tarpits without a banner), then on {args.live} live hosts; SSH timeouts "
            f"{settings.TRIAGE_SSH_TIMEOUTS}; {args.repeat} repeats per layout"
        )
        print(bench.machine())
        started = time.monotonic()
        with RedisServer(tmp_dir / "redis") as redis, Lab() as lab:
            scene = _build_scene(lab, args.dead, args.live)
            print(f"lab: {args.dead + args.live} hosts built in {time.monotonic() - started:.1f} s (not timed)")
            results: dict[str, list[dict]] = {name: [] for name in layouts}
            errors: list[str] = []
            names = list(layouts)
            for index in range(args.repeat):
                order = names if index % 2 == 0 else names[::-1]
                for name in order:
                    env = worker_env(tmp_dir, broker=redis.url())
                    log = tmp_dir / f"worker-{index}-{names.index(name)}.log"
                    with running(Worker(layouts[name], env, log)), app_broker(redis.url()):
                        figures = _one_sweep(scene, wait_until)
                    results[name].append(figures)
                    errors += [f"repeat {index + 1}, {name}: {e}" for e in figures["errors"]]
                    print(
                        f"repeat {index + 1}, {name:<24} live pressed->diagnosed: "
                        f"{', '.join(f'{s:.2f}' for s in figures['live'])} s; dead runs ended after "
                        f"{min(figures['dead']):.2f}-{max(figures['dead']):.2f} s; all done {figures['wall']:.2f} s"
                    )
            started = time.monotonic()
        print(f"lab teardown {time.monotonic() - started:.1f} s (not timed)")
    _report(results, bound=settings.TRIAGE_SSH_TIMEOUTS["connect"])
    if errors:
        print("\nERROR: runs that did not end as planned:")
        for error in errors:
            print(f"  {error}")
        return 1
    return 0


def _build_scene(lab, dead: int, live: int) -> dict:
    from diagnostics.models import Playbook
    from tests.lab_servers import lab_server
    from triage import services as desk
    from triage import users
    from triage.models import Customer, SlaTier

    users.roles_ensure()
    desk.sla_tiers_ensure()
    customer = Customer.objects.create(name="Bench Hosting", sla_tier=SlaTier.objects.first())
    ticket = desk.ticket_create(subject="Collections stall", description="bench", customer=customer)
    playbook = Playbook.objects.create(name="bench quick", steps=QUICK)
    dead_servers = []
    for index in range(dead):
        host = lab.add_host(f"dead{index}")
        if index % 2 == 0:
            host.drop_syn(22)
            dead_servers.append(lab_server(customer, host))
        else:
            host.serve_silence(TARPIT_PORT)
            dead_servers.append(lab_server(customer, host, port=TARPIT_PORT))
    live_servers = [lab_server(customer, bench.add_host(lab, f"live{index}")) for index in range(live)]
    return {"ticket": ticket, "playbook": playbook, "dead": dead_servers, "live": live_servers}


def _one_sweep(scene: dict, wait_until) -> dict:
    from diagnostics import services
    from diagnostics.models import TERMINAL_STATES, CollectionRun, RunState

    def press(server):
        return services.run_request(ticket=scene["ticket"], server=server, playbook=scene["playbook"], by=None)

    started = time.monotonic()
    dead = [(press(server), time.monotonic()) for server in scene["dead"]]
    live = [(press(server), time.monotonic()) for server in scene["live"]]
    settled_at: dict[int, float] = {}

    def all_settled() -> bool:
        for run in CollectionRun.objects.filter(
            pk__in=[r.pk for r, _ in dead + live], state__in=TERMINAL_STATES, diagnosed_at__isnull=False
        ).exclude(pk__in=list(settled_at)):
            settled_at[run.pk] = time.monotonic()
        return len(settled_at) == len(dead) + len(live)

    wait_until(all_settled, timeout=300, what="every run to be diagnosed", every=0.05)
    errors = []
    for run, _ in live:
        run.refresh_from_db()
        if run.state != RunState.SUCCEEDED:
            errors.append(f"live run {run.pk} {run.state}: {run.reason}")
    for run, _ in dead:
        run.refresh_from_db()
        if run.state != RunState.FAILED:
            errors.append(f"dead run {run.pk} {run.state}: {run.reason}")
    return {
        "live": [settled_at[run.pk] - pressed for run, pressed in live],
        "dead": [settled_at[run.pk] - pressed for run, pressed in dead],
        "wall": max(settled_at.values()) - started,
        "errors": errors,
    }


def _report(results: dict[str, list[dict]], *, bound: float) -> None:
    print()
    print(
        f"{'(over all repeats)':<28} live pressed->diagnosed s: median   max    dead runs s: median   max   "
        "all done s: median"
    )
    for name, sweeps in results.items():
        live = [s for sweep in sweeps for s in sweep["live"]]
        dead = [s for sweep in sweeps for s in sweep["dead"]]
        walls = [sweep["wall"] for sweep in sweeps]
        print(
            f"{name:<28} {statistics.median(live):31.2f} {max(live):6.2f} {statistics.median(dead):19.2f} "
            f"{max(dead):6.2f} {statistics.median(walls):19.2f}"
        )
    # The target: a live host's Collect never waits for an unreachable host's bound, so every one is
    # diagnosed before the shortest such bound (the connect timeout) has passed.
    collector = list(results)[-1]
    worst = max(s for sweep in results[collector] for s in sweep["live"])
    print(
        f"target: every live Collect diagnosed within the connect timeout ({bound:g} s) while unreachable hosts "
        f"hold slots: {collector} worst {worst:.2f} s: {bench.verdict(worst < bound)}"
    )


if __name__ == "__main__":
    sys.exit(main())
