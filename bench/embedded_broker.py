"""Benchmark the embedded broker candidates (issue 11, "An embedded broker that survives load").

For each transport: a few busy-loop processes load every core, producer processes
publish ``--messages`` small messages between them while consumer processes
drain the same queue and ack each message, appending its number to a ledger.
Printed per transport: enqueue rate, end-to-end rate (first publish to last
consume), consumer crashes (with the first error), and lost and duplicated
messages counted from the ledger ("missing": not consumed by the deadline, whether lost
with a dead consumer or still queued).

Candidates: kombu's own filesystem transport (what `make run` used; kombu#1551),
the desk's repaired one (triage/broker.py), and kombu's SQLAlchemy transport on a
SQLite file (only if SQLAlchemy is importable: it is not a dependency of the desk;
``pip install --target /tmp/sqla SQLAlchemy`` and ``PYTHONPATH=/tmp/sqla`` to include it).

Run: ``.venv/bin/python bench/embedded_broker.py`` (about 1-3 minutes).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kombu import Connection
from kombu.transport import filesystem

from triage.broker import transport_options

POLL = 0.01


def _connection(kind: str, folder: Path) -> Connection:
    if kind == "kombu-filesystem":
        options = transport_options(folder, polling_interval=POLL)
        options["processed_folder"] = str(folder / "claimed")  # kombu moves to /tmp otherwise
        return Connection("filesystem://", transport_options=options)
    if kind == "desk-filesystem":
        return Connection(
            "filesystem://",
            transport="triage.broker:Transport",
            transport_options=transport_options(folder, polling_interval=POLL),
        )
    # kombu's SQLAlchemy transport hands every transport option to create_engine, so the
    # polling interval is set on the transport itself.
    conn = Connection(f"sqla+sqlite:///{folder / 'broker.sqlite3'}")
    conn.transport.polling_interval = POLL
    return conn


def _record_crash(folder: Path, role: str) -> None:
    (folder / f"crash-{role}-{os.getpid()}").write_text(traceback.format_exc(limit=3))


def _busy(stop):
    while not stop.is_set():
        pass


def _produce(kind, folder, numbers):
    try:
        with _connection(kind, folder) as conn:
            queue = conn.SimpleQueue("stress")
            for n in numbers:
                queue.put({"n": n, "pad": "x" * 200})
            queue.close()
    except Exception:  # noqa: BLE001 - any crash is a result to report
        _record_crash(folder, "producer")


def _consume(kind, folder, ledger, done):
    try:
        with _connection(kind, folder) as conn, open(ledger, "a") as out:
            queue = conn.SimpleQueue("stress")
            while not done.is_set():
                try:
                    message = queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                out.write(f"{message.payload['n']}\n")
                out.flush()
                message.ack()
    except Exception:  # noqa: BLE001 - any crash is a result to report
        _record_crash(folder, "consumer")


def run(kind: str, *, messages: int, producers: int, consumers: int, busy: int, timeout: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"broker-{kind}-"))
    ledger = folder / "ledger"
    ledger.touch()
    # kombu keeps declared exchanges and bindings in one process-wide state per transport
    # class; forget the previous trial's, or nothing is bound in this trial's new folder.
    filesystem.Transport.global_state.clear()
    _connection(kind, folder).SimpleQueue("stress").close()  # declare before anyone publishes
    stop, done = mp.Event(), mp.Event()
    loaders = [mp.Process(target=_busy, args=(stop,)) for _ in range(busy)]
    eaters = [mp.Process(target=_consume, args=(kind, folder, ledger, done)) for _ in range(consumers)]
    feeders = [
        mp.Process(target=_produce, args=(kind, folder, range(i, messages, producers))) for i in range(producers)
    ]
    for p in loaders + eaters:
        p.start()
    started = time.monotonic()
    for p in feeders:
        p.start()
    for p in feeders:
        p.join()
    enqueued = time.monotonic() - started
    deadline = started + timeout
    while time.monotonic() < deadline and any(p.is_alive() for p in eaters):
        if len(ledger.read_text().splitlines()) >= messages:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    done.set()
    stop.set()
    for p in loaders + eaters:
        p.join(5)
        if p.is_alive():
            p.kill()
    seen = [int(line) for line in ledger.read_text().splitlines()]
    crashes = [path.read_text() for path in folder.glob("crash-*")]
    crashes += [f"exit status {p.exitcode}" for p in eaters + feeders if p.exitcode not in (0, None, -9)]
    return {
        "kind": kind,
        "enqueue_per_s": messages / enqueued,
        "end_to_end_per_s": len(set(seen)) / elapsed,
        "lost": messages - len(set(seen)),
        "duplicated": len(seen) - len(set(seen)),
        "crashes": crashes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--busy", type=int, default=3, help="busy-loop processes loading the CPU")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    kinds = ["kombu-filesystem", "desk-filesystem"]
    try:
        import sqlalchemy  # noqa: F401

        kinds.append("sqla-sqlite")
    except ImportError:
        print("SQLAlchemy not importable: sqla+sqlite left out")
    print(
        f"{args.messages} messages, {args.producers} producers, {args.consumers} consumers, "
        f"{args.busy} busy loops, {os.cpu_count()} cores"
    )
    for round_ in range(args.rounds):
        for kind in kinds:
            r = run(
                kind,
                messages=args.messages,
                producers=args.producers,
                consumers=args.consumers,
                busy=args.busy,
                timeout=args.timeout,
            )
            print(
                f"round {round_ + 1} {kind:17} enqueue {r['enqueue_per_s']:7.0f}/s  "
                f"end-to-end {r['end_to_end_per_s']:6.0f}/s  missing {r['lost']:5}  dup {r['duplicated']:3}  "
                f"consumer/producer crashes {len(r['crashes'])}"
            )
            for crash in r["crashes"][:1]:
                print("    first crash:", crash.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
