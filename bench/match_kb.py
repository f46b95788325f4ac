"""Benchmark the knowledge-base pattern scan (issue 4, "Performance").

Generates, from a fixed seed, 2,000 syslog signatures and 50 MB of syslog-like
text in which a few signatures match a controlled number of lines, then prints
in one run: our ``Scanner`` (compile, hit counts) and a bare hyperscan scan of
the same patterns (multiline flag only, no-op callback) as the anchor, timed
interleaved: ``--rounds`` rounds each scanning with both, alternating which goes
first, so both see the same machine at the same moments (median and best of
each, and their ratios; the machine is shared, so single best-ofs taken minutes
apart are not comparable), ``grep -E -f`` over the same file (patterns converted to POSIX
ERE, bounded by a timeout), 20,000 signatures against 2,000, and the end-to-end
figure: the product's own path (``matcher.scan_plan`` over 2,000 compiled
signatures, 50 of them ``log_lines`` facts leaves; then, timed,
``matcher.documents_for`` on an unsaved Evidence of the 50 MB and
``Signature.evaluate`` of every signature: decoding, scan, parsing, evaluation).

Run: ``.venv/bin/python bench/match_kb.py`` (about 3-5 minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage.settings")

import django

django.setup()  # the matcher imports models; nothing here touches the database

from diagnostics.knowledge import matcher  # noqa: E402
from diagnostics.knowledge.signature import compile_signature  # noqa: E402
from diagnostics.models import Evidence  # noqa: E402
from diagnostics.parsers import facts_for  # noqa: E402
from diagnostics.scanning import ENGINES, Pattern, Scanner  # noqa: E402

SEED = 20240604
PROGRAMS = [
    "kernel",
    "sshd",
    "postfix/smtpd",
    "postfix/qmgr",
    "CRON",
    "systemd",
    "named",
    "dhclient",
    "ntpd",
    "nginx",
    "dovecot",
    "varnishd",
    "MailScanner",
    "sendmail",
    "exim",
    "rsyslogd",
    "auditd",
    "smartd",
    "multipathd",
    "containerd",
    "dockerd",
    "kubelet",
    "haproxy",
    "squid",
    "slapd",
    "mysqld",
    "postgres",
]
WORDS = [
    "connection",
    "refused",
    "timeout",
    "reset",
    "closed",
    "accepted",
    "failed",
    "error",
    "warning",
    "link",
    "down",
    "up",
    "device",
    "queue",
    "session",
    "opened",
    "user",
    "root",
    "mail",
    "message",
    "delivered",
    "deferred",
    "bounced",
    "relay",
    "denied",
    "lost",
    "carrier",
    "interface",
    "address",
    "port",
    "socket",
    "buffer",
    "memory",
    "process",
    "killed",
    "started",
    "stopped",
    "reloading",
    "config",
    "certificate",
    "expired",
    "verify",
    "handshake",
    "lookup",
    "resolver",
    "server",
    "client",
    "request",
    "response",
    "upstream",
    "disk",
    "inode",
    "filesystem",
    "readonly",
    "mount",
    "journal",
    "write",
    "read",
    "sector",
    "block",
    "table",
    "full",
    "dropping",
    "packet",
]
RARE = [
    a + b + c for a in ("ab", "ko", "zu", "mi", "te", "ra", "lo", "qu", "ve", "ny") for b in "aeiou" for c in "xkrmt"
]
HOSTS = [f"host{n:02d}" for n in range(40)]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _word(rng: random.Random, rare: float) -> str:
    return rng.choice(RARE) if rng.random() < rare else rng.choice(WORDS)


def make_signature(rng: random.Random) -> tuple[str, str]:
    """One (regex, sample line matching it) in the shapes real signatures take."""
    prog = rng.choice(PROGRAMS)
    w1, w2, w3 = _word(rng, 0.5), _word(rng, 0.3), _word(rng, 0.5)
    pid, n = rng.randint(100, 65000), rng.randint(1, 999)
    esc = re.escape(prog)
    shapes = [
        (f"{esc}: .*{w1} {w2} for {w3}", f"{prog}: x {w1} {w2} for {w3}"),
        (
            f"{esc}\\[\\d+\\]: {w1} {w2} checking \\S+ for \\S+ {w3}",
            f"{prog}[{pid}]: {w1} {w2} checking a for b.c {w3}",
        ),
        (f"(?i){w1} of {w2}: kill(ed)? process \\d+", f"{w1.upper()} of {w2}: Killed process {pid}"),
        (f"^\\w{{3}} +\\d+ [0-9:]+ \\S+ {esc}: {w1} {w2}", f"Mar  3 01:02:03 h1 {prog}: {w1} {w2}"),
        (f"{w1} (error|failure|timeout) on (eth|bond)\\d+ {w2}", f"{w1} timeout on eth{n} {w2}"),
        (f"{w1}-{w2} +[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+ {w3}$", f"{w1}-{w2}  10.0.{n}.1 {w3}"),
        (f"{esc}: {w1} {w2} [a-f0-9]{{8}} (is|was) {w3}", f"{prog}: {w1} {w2} deadbeef was {w3}"),
        (f"\\b{w1}_{w2}\\b.*\\b{w3} = [0-9]+", f"{w1}_{w2} and {w3} = {n}"),
    ]
    return rng.choice(shapes)


def make_signatures(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)  # noqa: S311 - seeded synthetic data, not security
    seen: dict[str, str] = {}
    while len(seen) < count:
        regex, sample = make_signature(rng)
        seen.setdefault(regex, sample)
    return list(seen.items())


MESSAGES = [
    "Accepted publickey for {user} from {ip} port {port} ssh2",
    "pam_unix(sshd:session): session opened for user {user} by (uid=0)",
    "{qid}: to=<{user}@example.com>, relay={host}[{ip}]:25, delay={d}, status=sent (250 ok)",
    "connect from unknown[{ip}]",
    "({user}) CMD (run-parts /etc/cron.hourly)",
    "Started Session {n} of user {user}.",
    "e1000e: eth{k} NIC Link is Up 1000 Mbps Full Duplex, Flow Control: None",
    "client @0x{hex} {ip}#{port} ({host}): query: {host} IN A + ({ip})",
    "DHCPACK of {ip} from {ip2}",
    '{ip} - - "GET /{word}/{n} HTTP/1.1" 200 {port} "-" "curl/7.88"',
    "imap-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={ip2}, mpid={n}, TLS",
    'audit: type=1400 audit({n}.123:{k}): apparmor="ALLOWED" operation="open" profile="{word}"',
    "{word} {word2} {word3} {n} {word4}",
]
USERS = ["alice", "bob", "carol", "deploy", "root", "www-data", "postfix", "backup"]


def make_text(size: int, seed: int, plants: list[str], copies: int) -> bytes:
    """Syslog-like lines up to ``size`` bytes, with each planted line inserted ``copies`` times."""
    rng = random.Random(seed)  # noqa: S311 - seeded synthetic data, not security
    lines: list[str] = []
    total = 0
    while total < size:
        ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        fields = {
            "user": rng.choice(USERS),
            "ip": ip,
            "ip2": f"192.168.{rng.randint(0, 9)}.1",
            "port": rng.randint(1024, 65535),
            "qid": f"{rng.getrandbits(40):010X}",
            "host": rng.choice(HOSTS),
            "d": f"{rng.random() * 3:.2f}",
            "n": rng.randint(1, 99999),
            "k": rng.randint(0, 3),
            "hex": f"{rng.getrandbits(48):012x}",
            "word": rng.choice(WORDS),
            "word2": rng.choice(WORDS),
            "word3": rng.choice(WORDS),
            "word4": rng.choice(WORDS),
        }
        stamp = (
            f"{rng.choice(MONTHS)} {rng.randint(1, 28):2d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
            f"{rng.randint(0, 59):02d}"
        )
        prog = rng.choice(PROGRAMS)
        line = f"{stamp} {fields['host']} {prog}[{rng.randint(100, 65000)}]: " + rng.choice(MESSAGES).format(**fields)
        lines.append(line)
        total += len(line) + 1
    for plant in plants:
        for _ in range(copies):
            lines.insert(rng.randrange(len(lines)), plant)
    return ("\n".join(lines) + "\n").encode()


def to_ere(regex: str) -> str:
    """Our generated Python patterns as POSIX ERE (GNU grep understands \\w \\s \\S \\b)."""
    caseless = regex.startswith("(?i)")
    regex = regex.removeprefix("(?i)").replace("\\d", "[0-9]").replace("\\-", "-").replace("\\/", "/")
    if caseless:  # grep -f has one case mode for all patterns: spell the letters out
        regex = re.sub(r"(?<!\\)[A-Za-z]", lambda m: f"[{m.group().upper()}{m.group().lower()}]", regex)
    return regex


def best_of(runs: int, fn):
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def interleaved(rounds: int, first, second) -> tuple[list[float], list[float]]:
    """Seconds of ``rounds`` calls of each, alternating which runs first in each round."""
    times: tuple[list[float], list[float]] = ([], [])
    for n in range(rounds):
        order = ((0, first), (1, second)) if n % 2 == 0 else ((1, second), (0, first))
        for index, fn in order:
            started = time.perf_counter()
            fn()
            times[index].append(time.perf_counter() - started)
    return times


def bare_hyperscan(regexes: list[str]):
    """The anchor: the same patterns in one database, multiline flag only; (compile seconds, scan(data))."""
    import hyperscan

    started = time.perf_counter()
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[r.encode() for r in regexes],
        ids=list(range(len(regexes))),
        elements=len(regexes),
        flags=hyperscan.HS_FLAG_MULTILINE,
    )
    compile_s = time.perf_counter() - started
    scratch = db.scratch.clone()

    def scan(data: bytes) -> int:
        calls = [0]

        def noop(_id, _start, _end, _flags, _context):
            calls[0] += 1

        db.scan(data, match_event_handler=noop, scratch=scratch)
        return calls[0]

    return compile_s, scan


def run_grep(regexes: list[str], text_path: Path, timeout: int) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(to_ere(r) for r in regexes) + "\n")
    started = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, our own temporary files
            ["grep", "-E", "-c", "-f", handle.name, str(text_path)],  # noqa: S607 - grep from PATH on purpose
            capture_output=True,
            timeout=timeout,
            check=False,
            env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
        )
    except subprocess.TimeoutExpired:
        return f"> {timeout} s"
    finally:
        Path(handle.name).unlink()
    elapsed = time.perf_counter() - started
    if done.returncode > 1:
        return f"failed: {done.stderr.decode().strip()[:200]}"
    return f"{elapsed:.2f} s ({done.stdout.decode().strip()} matching lines)"


FACTS_EVERY = 40  # every 40th signature is a log_lines facts leaf: 50 of 2,000


def product_signatures(regexes: list[str]) -> list[matcher.CompiledSymptom]:
    """The knowledge base's shape: regex leaves on the log, and log_lines predicates on its messages."""
    compiled = []
    for i, regex in enumerate(regexes):
        if i % FACTS_EVERY == 0:
            spec = {"facts": "log_lines", "probe": "system_log", "where": {"message": {"regex": regex}}}
            if i % (2 * FACTS_EVERY) == 0:
                spec["where"]["program"] = {"ne": "cron"}  # a second condition, read from the parsed row
        else:
            spec = {"probe": "system_log", "regex": regex}
        compiled.append(matcher.CompiledSymptom(i, f"sig-{i}", 1, 0.5, compile_signature(spec)))
    return compiled


def end_to_end(symptoms, plan, data: bytes) -> tuple[int, int]:
    """The matcher's path for one run holding this evidence: documents, then every signature."""
    evidence = Evidence(probe="system_log", step=0, command="tail", exit_status=0, output=data,
                        recorded_at=dt.datetime(2026, 6, 4, tzinfo=dt.UTC))  # fmt: skip
    documents = matcher.documents_for([evidence], plan=plan)
    held = sum(symptom.signature.evaluate(documents).held for symptom in symptoms)
    parsed_lines = sum(len(rows) for rows in documents[0]._line_rows.values())
    return held, parsed_lines


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"


def verdict(ok: bool) -> str:
    return "target met" if ok else "target MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--signatures", type=int, default=2000)
    parser.add_argument("--grep-timeout", type=int, default=180)
    parser.add_argument("--skip-grep", action="store_true")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds of ours vs bare hyperscan")
    args = parser.parse_args()
    print(f"scan engines available: {', '.join(ENGINES)}; seed {SEED}; {load_line()}")

    started = time.perf_counter()
    signatures = make_signatures(args.signatures * 10, SEED)
    small = signatures[: args.signatures]
    planted = small[:: max(1, len(small) // 8)][:8]  # 8 signatures get 5 matching lines each
    data = make_text(args.megabytes * 1_000_000, SEED, [sample for _regex, sample in planted], copies=5)
    line_count = data.count(b"\n")
    print(
        f"generated {len(data) / 1e6:.1f} MB, {line_count:,} lines, {len(signatures):,} signatures "
        f"in {time.perf_counter() - started:.1f} s"
    )
    for regex, sample in planted:
        assert re.search(regex, sample), (regex, sample)

    patterns = [Pattern(id=i, regex=regex) for i, (regex, _sample) in enumerate(small)]
    started = time.perf_counter()
    scanner = Scanner.compile(patterns)
    compile_2k = time.perf_counter() - started
    hits = scanner.scan(data)
    hit_lines = sum(len(v) for v in hits.values())
    print(f"\n[ours, {len(patterns):,} signatures, engine {scanner.engine}]")
    print(f"  compile {compile_2k:.2f} s; {len(hits)} signatures hit, {hit_lines} cited lines")
    for pattern_id in sorted(hits)[:3]:
        first = hits[pattern_id][0]
        print(f"  e.g. #{pattern_id} line {first.line_no}: {first.text[:90]}")

    bare = None
    if "hyperscan" in ENGINES:
        bare_compile, bare_scan = bare_hyperscan([r for r, _s in small])
        print(f"\n[bare hyperscan, same {len(small):,} patterns, HS_FLAG_MULTILINE, no-op callback]")
        print(f"  compile {bare_compile:.2f} s; {bare_scan(data)} match callbacks per scan")
        ours_s, bare_s = interleaved(args.rounds, lambda: scanner.scan(data), lambda: bare_scan(data))
        scan_2k = min(ours_s)
        bare = (statistics.median(ours_s), statistics.median(bare_s), min(ours_s), min(bare_s))
        print(
            f"\n[ours vs bare hyperscan, interleaved: {args.rounds} rounds, each scanning the same "
            f"{len(data) / 1e6:.0f} MB with both, alternating which goes first]"
        )
        print(f"  ours: median {bare[0]:.3f} s, best {bare[2]:.3f} s; all: {' '.join(f'{t:.3f}' for t in ours_s)}")
        print(f"  bare: median {bare[1]:.3f} s, best {bare[3]:.3f} s; all: {' '.join(f'{t:.3f}' for t in bare_s)}")
        print(f"  ratio ours/bare: median {bare[0] / bare[1]:.2f}x, best {bare[2] / bare[3]:.2f}x")
    else:
        scan_2k, _ = best_of(3, lambda: scanner.scan(data))

    with tempfile.TemporaryDirectory() as tmp:
        text_path = Path(tmp) / "syslog.txt"
        text_path.write_bytes(data)
        grep_result = "skipped" if args.skip_grep else run_grep([r for r, _s in small], text_path, args.grep_timeout)
        print(f"\n[grep -E -f, {len(small):,} patterns as POSIX ERE, LC_ALL=C, once] {grep_result}")

    big = [Pattern(id=i, regex=regex) for i, (regex, _sample) in enumerate(signatures)]
    started = time.perf_counter()
    big_scanner = Scanner.compile(big)
    compile_20k = time.perf_counter() - started
    scan_20k, big_hits = best_of(3, lambda: big_scanner.scan(data))
    print(
        f"\n[ours, {len(big):,} signatures] compile {compile_20k:.2f} s; scan best of 3 {scan_20k:.3f} s; "
        f"{len(big_hits)} signatures hit"
    )

    started = time.perf_counter()
    symptoms = product_signatures([r for r, _s in small])
    plan_2k = matcher.scan_plan([s.signature for s in symptoms])
    prepare_s = time.perf_counter() - started
    facts_leaves = [leaf for s in symptoms for leaf in s.signature.facts_leaves()]
    prefiltered = sum(leaf in plan_2k.line_filters for leaf in facts_leaves)
    e2e_s, (held, parsed_lines) = best_of(3, lambda: end_to_end(symptoms, plan_2k, data))
    print(
        f"\n[ours, end to end: {len(symptoms):,} signatures ({len(facts_leaves)} log_lines facts leaves, "
        f"{prefiltered} prefiltered by the scan), one {len(data) / 1e6:.0f} MB system_log evidence]"
    )
    print(f"  compile signatures + scanner {prepare_s:.2f} s (once, cached until the knowledge base changes)")
    print(
        f"  documents_for + evaluate best of 3 {e2e_s:.3f} s; {held} signatures held; "
        f"{parsed_lines:,} of {line_count:,} lines parsed into log_lines"
    )
    full_parse_s, full = best_of(1, lambda: facts_for("system_log", data, tables={"log_lines"}))
    print(
        f"  for reference, a full parse of log_lines (what a leaf with no message condition costs): "
        f"{full_parse_s:.2f} s, {len(full.get('log_lines', ())):,} rows"
    )

    print(f"\n[summary] {load_line()}")
    print(f"  end to end (documents_for + evaluate): {e2e_s:.3f} s  -> < 1 s: {verdict(e2e_s < 1.0)}")
    if bare:
        ratio = bare[0] / bare[1]
        print(
            f"  ours / bare hyperscan scan, interleaved medians: {bare[0]:.3f} / {bare[1]:.3f} = {ratio:.2f}x "
            f"(bests {bare[2] / bare[3]:.2f}x)  -> <= 1.5x: {verdict(ratio <= 1.5)}"
        )
    ratio_10x = scan_20k / scan_2k
    print(
        f"  20k / 2k signatures scan: {scan_20k:.3f} / {scan_2k:.3f} = {ratio_10x:.2f}x  -> <= 2x: "
        f"{verdict(ratio_10x <= 2.0)}"
    )
    print(f"  compile: 2k {compile_2k:.2f} s, 20k {compile_20k:.2f} s; grep -E -f: {grep_result}")


if __name__ == "__main__":
    main()
