"""Bench: one collection of a 10-probe playbook on one lab host, through the product's own path.

Target (from the issue): the wall time of a collection is within 1.2 x the slowest probe plus one SSH
handshake, i.e. the probes that wait (load's one-second sample) run beside the quick ones, which share one
channel one after another (diagnostics.ssh_lanes), and the product adds little.

How: a temporary SQLite database with the real settings and migrations; a customer, a server, its key
credential (encrypted, as the desk stores it), its host key pinned through `host_keys_import`, a ticket
and a playbook of 10 probes; then `services.run_request(..., enqueue=False)` and, timed,
`services.run_execute(run_id=...)`, exactly what the Celery task calls. From the run and its stored
Evidence come the anchors of the same run: the slowest probe's duration, the handshake
(`run.auth_seconds`: connect + banner + key exchange + authentication), and the serial sum of all
probe durations. For comparison, OpenSSH's client runs the same 10 commands (byte for byte as the
product runs them, `timeout -k` wrapper included) one after another in one session
(`ssh host 'c1; c2; ...'`), one after another over a ControlMaster connection, and all at once over
that connection; each OpenSSH figure includes its own handshake, as ours does.

Lab set-up, migrations and one warm-up of each side are not timed. Repeats N times and prints every
repeat, the median and the max. Prints "target met"/"target missed"; exits non-zero only on errors
(no lab, a failed collection, an OpenSSH anchor that failed).

    .venv/bin/python bench/collect_one_host.py [--repeat 5] [--channels N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import _lab_setup as bench  # first: puts the repository on sys.path

from diagnostics import probes
from tests.lab import Host, Lab

# Ten read-only probes a first look at a server would run; `load` samples vmstat for one second,
# so it is the slowest by design (a lane of its own) and the bound is about the lanes, not about luck.
PROBES = [
    "processes", "sockets", "listening", "fd_usage", "mounts", "disk", "memory", "load", "resolvers", "kernel_log",
]  # fmt: skip
BOUND_FACTOR = 1.2


@dataclass
class Ours:
    wall: float
    handshake: float
    durations: dict[str, float]
    exit_statuses: dict[str, int | None] = field(default_factory=dict)
    output_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def slowest(self) -> tuple[str, float]:
        name = max(self.durations, key=self.durations.__getitem__)
        return name, self.durations[name]

    @property
    def bound(self) -> float:
        return BOUND_FACTOR * self.slowest[1] + self.handshake

    @property
    def ratio(self) -> float:
        return self.wall / self.bound

    @property
    def serial(self) -> float:
        return sum(self.durations.values())


@dataclass
class OpenSsh:
    one_session: float  # ssh host 'c1; c2; ...'
    master_handshake: float  # ssh -M -f -N returns once authenticated
    master_serial: float  # handshake + the commands one after another over the master
    master_parallel: float  # handshake + the commands all at once over the master


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _product_objects(host: Host):
    from diagnostics import services
    from diagnostics.models import Playbook
    from diagnostics.playbooks import validate_steps
    from triage import services as desk
    from triage.models import Customer, Server, SlaTier

    desk.sla_tiers_ensure()
    customer = Customer.objects.create(name="Bench Hosting", sla_tier=SlaTier.objects.get(name="Gold"))
    server = Server.objects.create(customer=customer, name=host.name, address=host.address)
    services.credential_set(server=server, kind="key", secret=host.client_key_path.read_text())
    services.host_keys_import(server=server, known_hosts=host.known_hosts_line, by=None)
    ticket = desk.ticket_create(subject="Bench: ten probes on one host", description="bench", customer=customer)
    playbook = Playbook.objects.create(
        name="Bench: ten probes", steps=validate_steps([{"probe": name, "params": {}} for name in PROBES])
    )
    return ticket, server, playbook


def _collect(ticket, server, playbook) -> Ours:
    from diagnostics import services
    from diagnostics.models import RunState

    queued = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    started = time.monotonic()
    run = services.run_execute(run_id=queued.pk, worker="bench")
    wall = time.monotonic() - started
    if run is None:
        raise SystemExit(f"bench: run {queued.pk} was not claimed")
    if run.state != RunState.SUCCEEDED:
        raise SystemExit(f"bench: the collection ended {run.state}: {run.reason}")
    evidence = list(run.evidence.order_by("step"))
    failed = [
        f"{e.probe} (exit {e.exit_status}, {e.error or bytes(e.output)[:200]!r})"
        for e in evidence
        if e.exit_status != 0
    ]
    if failed:
        raise SystemExit(f"bench: probes failed on the lab host: {', '.join(failed)}")
    return Ours(
        wall=wall,
        handshake=run.auth_seconds,
        durations={e.probe: e.duration for e in evidence},
        exit_statuses={e.probe: e.exit_status for e in evidence},
        output_bytes={e.probe: e.output_bytes for e in evidence},
    )


def _openssh(base: list[str], destination: str, commands: list[str], control_dir: Path) -> OpenSsh:
    started = time.monotonic()
    result = bench.run([*base, destination, "; ".join(commands)], timeout=120)
    one_session = time.monotonic() - started
    bench.check_ok(result, "ssh host 'c1; c2; ...'")

    mux = ["-o", f"ControlPath={control_dir / 'master'}"]
    started = time.monotonic()
    # -f: background once authenticated, so the return marks the end of OpenSSH's handshake.
    result = bench.run([*base, *mux, "-o", "ControlMaster=yes", "-N", "-f", destination], timeout=30)
    handshake = time.monotonic() - started
    bench.check_ok(result, "ssh -M -N -f (ControlMaster)")
    try:
        started = time.monotonic()
        for command in commands:
            bench.check_ok(
                bench.run([*base, *mux, "-o", "ControlMaster=no", destination, command], timeout=60),
                "ssh over the ControlMaster",
            )
        serial = time.monotonic() - started

        started = time.monotonic()
        clients = [bench.popen([*base, *mux, "-o", "ControlMaster=no", destination, c]) for c in commands]
        for client in clients:
            _, err = client.communicate(timeout=60)
            if client.returncode:
                raise SystemExit(f"bench: ssh over the ControlMaster exited {client.returncode}: {err[-500:]!r}")
        parallel = time.monotonic() - started
    finally:
        bench.run([*base, *mux, "-O", "exit", destination], timeout=10)
    return OpenSsh(one_session, handshake, handshake + serial, handshake + parallel)


def _report(ours: list[Ours], theirs: list[OpenSsh], kex: tuple[str, str]) -> None:
    print()
    print("probe         exit  median s    max s   output bytes")
    for name in PROBES:
        values = [o.durations[name] for o in ours]
        print(
            f"{name:<12} {ours[0].exit_statuses[name]:>5} {statistics.median(values):>9.3f} {max(values):>8.3f} "
            f"{ours[0].output_bytes[name]:>14}"
        )
    print()
    slowest_names = ", ".join(sorted({o.slowest[0] for o in ours}))
    rows = [
        ("ours: wall time of run_execute", [o.wall for o in ours]),
        (f"anchor: slowest probe ({slowest_names})", [o.slowest[1] for o in ours]),
        ("anchor: handshake (run.auth_seconds)", [o.handshake for o in ours]),
        (f"bound: {BOUND_FACTOR} x slowest + handshake", [o.bound for o in ours]),
        ("serial anchor: sum of probe durations", [o.serial for o in ours]),
        ("OpenSSH: one session 'c1; c2; ...'", [t.one_session for t in theirs]),
        ("OpenSSH: ControlMaster, one after another", [t.master_serial for t in theirs]),
        (f"OpenSSH: ControlMaster, all {len(PROBES)} at once", [t.master_parallel for t in theirs]),
        ("OpenSSH: handshake (ssh -M -N -f returns)", [t.master_handshake for t in theirs]),
    ]
    for label, values in rows:
        print(f"{label:<46} {bench.summary(values)}")
    ratios = [o.ratio for o in ours]
    print(f"{'ratio wall / bound':<46} median {statistics.median(ratios):.2f}, max {max(ratios):.2f}")
    print(f"key exchange negotiated: ours (paramiko) {kex[0]}, OpenSSH {kex[1]} (each client's defaults)")
    print()
    met = sum(ratio <= 1 for ratio in ratios)
    median_ratio = statistics.median(ratios)
    print(
        f"target: wall <= {BOUND_FACTOR} x slowest probe + handshake: met in {met} of {len(ours)} repeats, "
        f"median ratio {median_ratio:.2f} -> {bench.verdict(median_ratio <= 1)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=_positive, default=5, help="timed repeats (default 5)")
    parser.add_argument(
        "--channels",
        type=_positive,
        default=None,
        help="channels per host at most (default: settings.TRIAGE_SSH_CHANNELS_PER_HOST)",
    )
    args = parser.parse_args()
    bench.require_lab()

    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        tmp_dir = Path(tmp)
        bench.django_setup(tmp_dir, channels=args.channels)
        from django.conf import settings

        commands = bench.remote_commands(probes.build(name, {}) for name in PROBES)
        print(
            f"collect_one_host: {len(PROBES)} probes ({', '.join(PROBES)}) on one lab host, "
            f"at most {settings.TRIAGE_SSH_CHANNELS_PER_HOST} channels (TRIAGE_SSH_CHANNELS_PER_HOST), "
            f"{args.repeat} repeats"
        )
        print(bench.machine())
        started = time.monotonic()
        with Lab() as lab:
            host = bench.add_host(lab, "bench")
            known_hosts = host.write_known_hosts(tmp_dir / "known_hosts")
            ticket, server, playbook = _product_objects(host)
            base = bench.openssh_argv(key=host.client_key_path, known_hosts=known_hosts, connect_timeout=10)
            destination = f"root@{host.address}"
            print(
                f"lab: host {host.address} and the desk's records ready in {time.monotonic() - started:.2f} s "
                "(not timed)"
            )

            _collect(ticket, server, playbook)
            bench.check_ok(bench.run([*base, destination, "; ".join(commands)], timeout=120), "warm-up ssh")
            kex = bench.paramiko_kex(host), bench.openssh_kex(base, destination)
            print("warm-up: one collection and one OpenSSH session (not timed)")
            print()

            ours: list[Ours] = []
            theirs: list[OpenSsh] = []
            for index in range(args.repeat):
                ours.append(o := _collect(ticket, server, playbook))
                theirs.append(t := _openssh(base, destination, commands, tmp_dir))
                name, slowest = o.slowest
                print(
                    f"repeat {index + 1}: wall {o.wall:.3f} s | slowest {name} {slowest:.3f} s, "
                    f"handshake {o.handshake:.3f} s, bound {o.bound:.3f} s, ratio {o.ratio:.2f} | "
                    f"serial sum {o.serial:.3f} s | OpenSSH: one session {t.one_session:.3f} s, "
                    f"ControlMaster serial {t.master_serial:.3f} s, parallel {t.master_parallel:.3f} s "
                    f"(its handshake {t.master_handshake:.3f} s)"
                )
            started = time.monotonic()
        print(f"lab teardown {time.monotonic() - started:.2f} s (not timed)")

    _report(ours, theirs, kex)
    print(bench.machine())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
