"""Bench: what diagnosing one "Host health" run costs, through the product's own path.

A collection ends with ``diagnosis.run_diagnose(run_id=...)``, which matches the run's evidence against the
whole knowledge base (``matcher.match_run_bounded``). In a fleet sweep every run is diagnosed in the
collector's threads, under one GIL, so its CPU time adds up across runs. This prints it per run:

- cold: the first diagnosis in this process (the knowledge base compiled: signatures and the hyperscan
  database), and the first diagnosis after a knowledge-base edit (the cache invalidated, compiled again);
- warm: the same run diagnosed again (re-diagnosis is what ``rematch_open_tickets`` does after an edit),
  wall and this thread's CPU time, median and best of ``--repeat``;
- threads: N copies of the run diagnosed at once in N threads (as the collector's pool does): new runs,
  the same runs again, and again just after a knowledge-base edit (every thread finds the cache stale at
  once); the batch's wall and process CPU time, and each run's own wall (its diagnosis, start to end).

The run: the shipped "Host health" playbook (load, memory, disk, processes, mounts, fd_usage, kernel_log,
system_log) collected once from a lab host (``_lab_setup.add_host``: its own PID namespace and a few
thousand log lines), or read back from ``--load FILE`` (written by ``--save FILE``), so the same evidence
can be diagnosed by two commits of the product: ``--save`` on one, ``--load`` on both. The database is
a throwaway SQLite one with the real migrations and the shipped knowledge base (``load_kb``).
Asserts nothing; prints figures and the machine's load (the machine is shared).

    .venv/bin/python bench/match_run.py [--repeat 20] [--threads 8] [--save FILE | --load FILE] [--faulty]
                                        [--profile]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import _lab_setup as bench  # first: puts the repository on sys.path

PLAYBOOK = "Host health"


def _desk_objects(name: str):
    from diagnostics import services
    from diagnostics.services.playbooks import playbooks_ensure
    from triage import services as desk
    from triage.models import Customer, Server, SlaTier

    desk.sla_tiers_ensure()
    playbook = next(p for p in playbooks_ensure() if p.name == PLAYBOOK)
    customer = Customer.objects.create(name=f"Bench Hosting {name}", sla_tier=SlaTier.objects.get(name="Gold"))
    server = Server.objects.create(customer=customer, name=name, address="192.0.2.1")
    ticket = desk.ticket_create(subject="Bench: diagnosing one run", description="bench", customer=customer)
    return services, ticket, server, playbook


def _collect_from_lab() -> list[dict]:
    """Collect "Host health" once from a lab host; the evidence rows as plain values."""
    from diagnostics.models import Evidence
    from tests.lab import Lab

    bench.require_lab()
    with Lab() as lab:
        host = bench.add_host(lab, "matchrun")
        services, ticket, server, playbook = _desk_objects(host.name)
        server.address = host.address
        server.save(update_fields=["address"])
        services.credential_set(server=server, kind="key", secret=host.client_key_path.read_text())
        services.host_keys_import(server=server, known_hosts=host.known_hosts_line, by=None)
        queued = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
        from diagnostics.services.runs import run_collect

        run = run_collect(run_id=queued.pk, worker="bench")
        if run is None:
            raise SystemExit(f"bench: run {queued.pk} was not claimed")
        print(f"collected {PLAYBOOK!r} from lab host {host.address}: {run.state}")
        return [_row(e) for e in Evidence.objects.filter(run=run).order_by("step")]


CATALOGUE = bench.ROOT / "tests" / "fixtures" / "catalogue"
LOG_PROBES = ("kernel_log", "system_log")


def _faulty(rows: list[dict]) -> list[dict]:
    """The same run on a host with many things wrong: the knowledge-base catalogue's positive
    fixtures (``tests/fixtures/catalogue/*/positive.<probe>.txt``) appended to the log probes'
    output, and a table probe's output replaced by the first fixture for it (disk full, load above
    the CPUs...), so that matching also writes matches, citations and recipe fits."""
    changed = []
    for row in rows:
        fixtures = sorted(CATALOGUE.glob(f"*/positive.{row['probe']}.txt"))
        output = base64.b64decode(row["output"])
        if fixtures and row["probe"] in LOG_PROBES:
            output += b"".join(path.read_bytes() for path in fixtures)
        elif fixtures:
            output = fixtures[0].read_bytes()
        changed.append({**row, "output": base64.b64encode(output).decode(), "output_bytes": len(output)})
    return changed


def _row(evidence) -> dict:
    return {
        "step": evidence.step,
        "probe": evidence.probe,
        "params": evidence.params,
        "command": evidence.command,
        "exit_status": evidence.exit_status,
        "output": base64.b64encode(bytes(evidence.output)).decode(),
        "stderr": base64.b64encode(bytes(evidence.stderr)).decode(),
        "binary": evidence.binary,
        "output_bytes": evidence.output_bytes,
        "truncated": evidence.truncated,
        "timed_out": evidence.timed_out,
        "duration": evidence.duration,
        "recorded_at": evidence.recorded_at.isoformat(),
    }


def _copy_run(rows: list[dict], ticket, server, playbook):
    """A finished run holding ``rows`` as its evidence."""
    from django.utils import timezone

    from diagnostics.models import CollectionRun, Evidence, RunState

    now = timezone.now()
    run = CollectionRun.objects.create(
        ticket=ticket,
        server=server,
        playbook_name=playbook.name,
        state=RunState.SUCCEEDED,
        started_at=now,
        finished_at=now,
    )
    Evidence.objects.bulk_create(
        [
            Evidence(
                run=run,
                **{
                    **row,
                    "output": base64.b64decode(row["output"]),
                    "stderr": base64.b64decode(row["stderr"]),
                    "recorded_at": dt.datetime.fromisoformat(row["recorded_at"]),
                },
            )
            for row in rows
        ]
    )
    return run


def _diagnose(run_id: int) -> tuple[float, float, str]:
    """One diagnosis: wall and this thread's CPU seconds, and what it found (to compare commits)."""
    from diagnostics.knowledge.diagnosis import run_diagnose
    from diagnostics.models import Match, RecipeFit, RecipeOutcome

    wall, cpu = time.perf_counter(), time.thread_time()
    run = run_diagnose(run_id=run_id)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    if run is None or run.diagnosis_note:
        raise SystemExit(f"bench: diagnosing run {run_id} went wrong: {run and run.diagnosis_note!r}")
    found = {
        "matches": list(
            Match.objects.filter(run_id=run_id)
            .order_by("symptom__key")
            .values_list(
                "symptom__key", "score", "confidence", "matched", "near_miss", "why", "citations", "symptom_version"
            )
        ),
        "fits": list(
            RecipeFit.objects.filter(run_id=run_id)
            .order_by("recipe__key")
            .values_list("recipe__key", "applies", "why", "citations")
        ),
        "suggested": sorted(RecipeOutcome.objects.filter(ticket_id=run.ticket_id).values_list("recipe__key", "kind")),
    }
    return wall, cpu, json.dumps(found, sort_keys=True, default=str)


def _kb_edited() -> None:
    """What an edit of the knowledge base does to the matcher: a new revision, so the cache is stale."""
    from diagnostics.models import KnowledgeRevision

    version = KnowledgeRevision.objects.filter(key="bench-edit").count() + 1
    KnowledgeRevision.objects.create(kind=KnowledgeRevision.SYMPTOM, key="bench-edit", version=version)


def _threads(count: int, run_ids: list[int]) -> tuple[float, float, list[float]]:
    """Diagnose the runs at once, one thread each: the batch's wall and process CPU seconds, each run's wall."""
    from django.db import connection

    walls: list[float] = [0.0] * count
    barrier = threading.Barrier(count + 1)

    def work(index: int) -> None:
        try:
            barrier.wait()
            walls[index] = _diagnose(run_ids[index])[0]
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started, time.process_time() - cpu, walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="warm diagnoses of the same run (default 20)")
    parser.add_argument("--threads", type=int, default=8, help="runs diagnosed at once in threads (default 8)")
    parser.add_argument("--save", type=Path, help="write the collected evidence to FILE (JSON)")
    parser.add_argument("--load", type=Path, help="diagnose the evidence in FILE instead of collecting")
    parser.add_argument(
        "--faulty",
        action="store_true",
        help="add the catalogue's positive fixtures to the evidence (a run with many matches)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=120,
        help="TRIAGE_MATCH_BUDGET_SECONDS for this bench (default 120: never cut short)",
    )
    parser.add_argument("--profile", action="store_true", help="print cProfile of the warm diagnoses")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-match-run-") as var:
        # The matching budget (5 s by default) cuts a diagnosis short on a machine loaded enough; here
        # every diagnosis must be whole, so that two commits' results can be compared.
        os.environ["TRIAGE_MATCH_BUDGET_SECONDS"] = str(args.budget)
        bench.django_setup(Path(var))
        from django.core.management import call_command

        call_command("load_kb", stdout=io.StringIO())
        rows = json.loads(args.load.read_text()) if args.load else _collect_from_lab()
        if args.save:
            args.save.write_text(json.dumps(rows))
        if args.faulty:
            rows = _faulty(rows)
        _, ticket, server, playbook = _desk_objects("matchrun-copy")
        sizes = ", ".join(f"{r['probe']} {len(base64.b64decode(r['output']))}" for r in rows)
        print(f"run: {PLAYBOOK!r}, {len(rows)} probes, output bytes: {sizes}")
        print(bench.machine())

        run = _copy_run(rows, ticket, server, playbook)
        cold_wall, cold_cpu, found = _diagnose(run.pk)
        print(f"cold (first diagnosis in this process, KB compiled): wall {cold_wall:.3f} s, cpu {cold_cpu:.3f} s")
        _kb_edited()
        edit_wall, edit_cpu, again = _diagnose(run.pk)
        print(f"after a KB edit (compiled again): wall {edit_wall:.3f} s, cpu {edit_cpu:.3f} s")
        if again != found:
            raise SystemExit("bench: the same run diagnosed twice found different things")

        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        warm = [_diagnose(run.pk) for _ in range(args.repeat)]
        if profiler:
            profiler.disable()
        if any(w[2] != found for w in warm):
            raise SystemExit("bench: a warm diagnosis found something else")
        walls, cpus = [w[0] for w in warm], [w[1] for w in warm]
        print(
            f"warm, one thread, {args.repeat} diagnoses: wall median {statistics.median(walls):.3f} s "
            f"(best {min(walls):.3f}), cpu median {statistics.median(cpus):.3f} s (best {min(cpus):.3f})"
        )

        copies = [_copy_run(rows, ticket, server, playbook).pk for _ in range(args.threads)]
        for label in ("new runs, KB compiled", "the same runs again", "after a KB edit (cache stale)"):
            if label.startswith("after"):
                _kb_edited()
            batch, cpu, per_run = _threads(args.threads, copies)
            print(
                f"{args.threads} threads at once, {label}: batch wall {batch:.3f} s, process cpu {cpu:.3f} s "
                f"({cpu / args.threads:.3f} s per run), each run's wall median {statistics.median(per_run):.3f} s"
            )
        digest = __import__("hashlib").sha256(found.encode()).hexdigest()[:16]
        rows_found = json.loads(found)
        matched = sum(1 for row in rows_found["matches"] if row[3])
        print(
            f"result: {len(rows_found['matches'])} match rows ({matched} matched), {len(rows_found['fits'])} "
            f"recipe fits, {len(rows_found['suggested'])} recipes suggested; digest of all of it {digest}"
        )
        print(bench.machine())
        if profiler:
            import pstats

            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
