"""The off-by-one RST end to end: a middlebox forges resets for connections the server holds in CLOSE-WAIT, the
kernel keeps or drops each socket, and a real capture through the product flags and cites the forged ones.

Three lab hosts on the bridge: a server that accepts, never reads and never closes, and keeps writing a byte to
every connection (as Varnish does to a client that went away; it is also what lets a capture taken later know
the sequence number the server expects); an office client that sends a request and half-closes (FIN), so the
server's sockets sit in CLOSE-WAIT; and a middlebox that sends RSTs with the client's address from a raw socket
(tests/rst_injector.py). The sequence numbers are read from a real tcpdump -S in the client's namespace, never
guessed. During the product's capture more connections come and go as in the war story (SYN, request, FIN,
the server's ACK, the ASA's RST at expected - 1), so the parser also sees that sequence whole.
Sizes, ports, offsets and timings come from a random seed printed in every failure message.

What Linux does (asserted with the kernel version in the message): a RST far below or above the window is
dropped silently, one inside the window but not exact gets a challenge ACK (RFC 5961); either way the socket stays
in CLOSE-WAIT. Exactly the expected sequence resets it, and since 4.11 so does expected - 1 in CLOSE-WAIT (not in
ESTABLISHED).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import pytest

from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import Match
from diagnostics.parsers import facts_for
from tests import rst_injector
from tests.lab import HOST_PYTHON, Host, variant_name
from tests.lab_servers import lab_server
from tests.test_seed_scenarios_lab import collect, describe, small_playbook, ticket_for

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

SEQ = 1 << 32
INJECTOR = Path(rst_injector.__file__).resolve()
# Linux 4.11 ("tcp: accept RST for rcv_nxt - 1 after receiving a FIN") resets a socket in CLOSE-WAIT, LAST-ACK
# or CLOSING on a RST at exactly expected - 1: the Cisco ASA's off-by-one. Older kernels ignore it (RFC 5961).
MINUS_ONE_SINCE = (4, 11)

SERVER = """
import socket, sys, time
port, every = int(sys.argv[1]), float(sys.argv[2])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", port))
server.listen(128)
server.setblocking(False)
held = []
while True:
    try:
        while True:
            conn, _ = server.accept()
            conn.setblocking(False)
            held.append(conn)
    except BlockingIOError:
        pass
    for conn in list(held):
        try:
            conn.send(b".")
        except BlockingIOError:
            pass
        except OSError:  # reset: the kernel accepted a RST; the socket is gone
            held.remove(conn)
            conn.close()
    time.sleep(every)
"""

# argv: server, port, request sizes (comma-separated), how many stay ESTABLISHED (the first ones).
CLIENT = """
import socket, sys, time
server, port, established = sys.argv[1], int(sys.argv[2]), int(sys.argv[4])
held = []
for index, size in enumerate(int(s) for s in sys.argv[3].split(",")):
    conn = socket.create_connection((server, port))
    conn.sendall(b"G" * size)
    if index >= established:
        conn.shutdown(socket.SHUT_WR)
    held.append(conn)
    print(conn.getsockname()[1], flush=True)
print("ready", flush=True)
time.sleep(600)
"""

TCPDUMP_LINE = re.compile(
    r" IP (?P<src>[\d.]+)\.(?P<sport>\d+) > [\d.]+\.\d+: Flags \[(?P<flags>[^\]]*)\], "
    r"seq (?P<seq>\d+)(?::(?P<end>\d+))?(?:, ack (?P<ack>\d+))?"
)


@pytest.fixture
def spawned():
    """Background programs started inside lab hosts; killed (by their own process group) after the test."""
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def spawn(spawned: list, host: Host, *argv: str, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL):
    # Host._enter is the lab's own argv prefix into a host's namespaces (what Host.run uses).
    process = subprocess.Popen(
        [*host._enter(), *argv], stdin=stdin, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True
    )
    spawned.append(process)
    return process


def wait_for(condition, *, timeout: float, what: str, seed: int):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"seed {seed}: timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return value


def later(x: int, y: int) -> int:
    return x if (x - y) % SEQ < SEQ // 2 else y


def kernel() -> tuple[int, int]:
    found = re.match(r"(\d+)\.(\d+)", platform.release())
    assert found, platform.release()
    return int(found.group(1)), int(found.group(2))


def states(server: Host, port: int) -> dict[int, str]:
    """Client port -> TCP state of the server's sockets on `port` (ss, in the server's namespace)."""
    lines = server.run("ss", "-Htn", "state", "all", f"( sport = :{port} )").stdout.splitlines()
    rows = [line.split() for line in lines]
    return {int(fields[4].rsplit(":", 1)[1]): fields[0] for fields in rows if fields[0] != "LISTEN"}


@dataclass
class Connection:
    port: int  # the client's
    half_closed: bool = False
    expected: int | None = None  # the server's next expected sequence number, as seen on the wire
    ack: int = 0  # the last acknowledgement number the client sent
    offset: int | None = None  # of the forged RST from `expected`; None: no RST for this one
    kind: str = "control"


@dataclass
class Office:
    server: Host
    client: Host
    middlebox: Host
    port: int
    wire: Path  # tcpdump -S -l of everything the client sends the server, running in the client's namespace
    connections: list[Connection] = field(default_factory=list)

    def observe(self) -> dict[int, Connection]:
        """Client port -> what the wire shows so far: the next sequence number after the client's SYN, data and
        FIN (what the server expects), whether it sent a FIN, its last ACK number."""
        seen: dict[int, Connection] = {}
        for line in self.wire.read_text(errors="replace").split("\n")[:-1]:  # whole lines only
            if not (found := TCPDUMP_LINE.search(line)):
                continue
            conn = seen.setdefault(int(found["sport"]), Connection(int(found["sport"])))
            flags = found["flags"]
            end = (int(found["end"] or found["seq"]) + ("S" in flags) + ("F" in flags)) % SEQ
            conn.expected = end if conn.expected is None else later(end, conn.expected)
            conn.half_closed |= "F" in flags
            conn.ack = int(found["ack"]) if found["ack"] else conn.ack
        return seen

    def rsts(self, connections: list[Connection], *, with_ack: bool) -> list[list]:
        client, server = self.client.address, self.server.address
        return [
            [client, c.port, server, self.port, (c.expected + c.offset) % SEQ, c.ack if with_ack else None]
            for c in connections
            if c.offset is not None and c.expected is not None
        ]


def start_client(spawned, office: Office, rng, log: Path, *, count: int, established: int = 0):
    """`count` connections, each sending a request of random size; all but the first `established` then FIN."""
    sizes = ",".join(str(rng.randrange(0, 700)) for _ in range(count))
    argv = [HOST_PYTHON, "-I", "-S", "-c", CLIENT, office.server.address, str(office.port), sizes, str(established)]
    with open(log, "wb") as out:
        spawn(spawned, office.client, *argv, stdout=out)


def office(lab, rng, seed, spawned, tmp_path, *, stem: str, count: int, established: int = 0) -> Office:
    """A server holding `count` connections from one client, the first `established` still open both ways and
    the rest half-closed by the client (CLOSE-WAIT on the server); each one's expected sequence observed."""
    server = lab.add_host(variant_name(rng, f"{stem}srv", lab.hosts))
    client = lab.add_host(variant_name(rng, f"{stem}office", lab.hosts), start_sshd=False)
    middlebox = lab.add_host(variant_name(rng, f"{stem}asa", lab.hosts), start_sshd=False)
    port = rng.choice([80, 8080, rng.randrange(1024, 32768)])  # below the ephemeral range: flows orient by port
    spawn(spawned, server, HOST_PYTHON, "-I", "-S", "-c", SERVER, str(port), f"{rng.uniform(0.2, 0.6):.2f}")
    wait_for(lambda: f":{port} " in server.run("ss", "-Hltn").stdout, timeout=5, what="the server to listen", seed=seed)
    place = Office(server, client, middlebox, port, tmp_path / "client.tcpdump")
    with open(place.wire, "wb") as out:
        bpf = f"tcp and src host {client.address} and dst host {server.address} and dst port {port}"
        spawn(spawned, client, "tcpdump", "-i", "eth0", "-n", "-S", "-tt", "-l", bpf, stdout=out)
    wait_for(lambda: "listening on" in place.wire.read_text(errors="replace"), timeout=10, what="tcpdump", seed=seed)
    log = tmp_path / "client.out"
    start_client(spawned, place, rng, log, count=count, established=established)
    lines = wait_for(
        lambda: (text := log.read_text()).endswith("ready\n") and text.split(),
        timeout=15,
        what="the clients",
        seed=seed,
    )
    ports = [int(word) for word in lines[:-1]]
    wanted = {p: ("CLOSE-WAIT" if i >= established else "ESTAB") for i, p in enumerate(ports)}
    wait_for(
        lambda: all(states(server, port).get(p) == s for p, s in wanted.items()),
        timeout=10,
        what=f"the server's sockets to be {wanted}",
        seed=seed,
    )

    def fins_seen() -> dict[int, Connection] | None:
        # CLOSE-WAIT means the FINs were sent; tcpdump -l writes each line as it prints it, soon after.
        seen = place.observe()
        return seen if sum(c.half_closed for c in seen.values()) >= count - established else None

    seen = wait_for(fins_seen, timeout=5, what="the FINs on the wire", seed=seed)
    context = f"seed {seed}\n{place.wire.read_text()}"
    assert sorted(seen) == sorted(ports), context
    assert [seen[p].half_closed for p in ports] == [i >= established for i in range(count)], context
    place.connections = [seen[p] for p in ports]
    return place


def inject(spawned: list, office: Office) -> subprocess.Popen:
    """The middlebox's injector; write a batch (one JSON list per line) to its stdin to send it."""
    return spawn(spawned, office.middlebox, HOST_PYTHON, "-I", "-S", str(INJECTOR), stdin=subprocess.PIPE)


def send(injector: subprocess.Popen, batch: list[list]) -> None:
    assert injector.stdin is not None
    injector.stdin.write(json.dumps(batch).encode() + b"\n")
    injector.stdin.flush()


def receive_window_bound(server: Host) -> int:
    """The largest receive window the server could advertise: tcp_rmem's maximum (its own namespace's)."""
    return int(server.run("cat", "/proc/sys/net/ipv4/tcp_rmem").stdout.split()[2])


def far_offset(rng: random.Random, kind: str, bound: int) -> int:
    if kind == "below":  # older than anything the server still acknowledges
        return -rng.randrange(1000, 1 << 30)
    if kind == "above":  # beyond any window the server can advertise
        return rng.randrange(bound + 1, 1 << 30)
    return rng.randrange(1, 1000)  # "inside": in the window but not exact: RFC 5961's challenge ACK


# -- the segments themselves --------------------------------------------------------------------------------------


def test_the_forged_rst_carries_a_valid_tcp_checksum(rng):
    src, dst = f"10.213.{rng.randrange(256)}.{rng.randrange(2, 250)}", f"10.213.0.{rng.randrange(2, 250)}"
    seq, ack = rng.randrange(SEQ), rng.choice([None, rng.randrange(SEQ)])
    packet = rst_injector.ip_packet(src, dst, rst_injector.rst_segment(src, 40000, dst, 80, seq, ack))
    ip = dpkt.ip.IP(packet)
    tcp = ip.data
    assert isinstance(tcp, dpkt.tcp.TCP)
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack) == (40000, 80, seq, ack or 0)
    assert tcp.flags == (dpkt.tcp.TH_RST | (dpkt.tcp.TH_ACK if ack is not None else 0))
    sent = tcp.sum
    tcp.sum = 0
    ip.sum = 0
    repacked = dpkt.ip.IP(bytes(ip))  # dpkt computes both checksums when packing with them zeroed
    assert (repacked.data.sum, repacked.sum) == (sent, dpkt.ip.IP(packet).sum)


# -- what this kernel does with each kind of RST ----------------------------------------------------------------


def test_linux_ignores_a_forged_rst_unless_it_is_exact_or_the_asa_off_by_one_in_close_wait(
    lab, rng, seed, spawned, tmp_path
):
    kinds = ["exact", "minus-one", "below", "above", "inside", "control"]
    both_ways = ["exact", "minus-one"]  # the same two on connections the client has not half-closed
    place = office(
        lab, rng, seed, spawned, tmp_path, stem="k", count=len(kinds) + len(both_ways), established=len(both_ways)
    )
    bound = receive_window_bound(place.server)
    for conn, kind in zip(place.connections, [*both_ways, *kinds], strict=True):
        conn.kind = kind
        conn.offset = {"exact": 0, "minus-one": -1, "control": None}.get(kind)
        if kind in ("below", "above", "inside"):
            conn.offset = far_offset(rng, kind, bound)
    injector = inject(spawned, place)
    send(injector, place.rsts(place.connections, with_ack=rng.random() < 0.5))
    version = kernel()
    minus_one_resets = version >= MINUS_ONE_SINCE
    expected = {}
    for conn in place.connections:
        gone = conn.kind == "exact" or (conn.kind == "minus-one" and conn.half_closed and minus_one_resets)
        expected[conn.port] = None if gone else "CLOSE-WAIT" if conn.half_closed else "ESTAB"
    # A reset is immediate; give a kernel that ignores them the same time to (wrongly) act.
    wait_for(
        lambda: all(states(place.server, place.port).get(p) is None for p, s in expected.items() if s is None),
        timeout=5,
        what="the accepted RSTs to reset their sockets",
        seed=seed,
    )
    time.sleep(0.3)
    actual = {conn.port: states(place.server, place.port).get(conn.port) for conn in place.connections}
    table = "\n".join(
        f"  {c.kind:10} half_closed={c.half_closed} offset={c.offset} -> {actual[c.port]}" for c in place.connections
    )
    assert actual == expected, (
        f"seed {seed}: kernel {platform.release()} (expected - 1 in CLOSE-WAIT resets since "
        f"{'.'.join(map(str, MINUS_ONE_SINCE))}: {minus_one_resets})\n{table}"
    )


# -- the product sees it: capture -> flows -> middlebox-rst-out-of-window, citing the reset --------------------------


def test_forged_rsts_in_a_real_capture_are_flagged_and_cited(lab, kb, customer, tech, rng, seed, spawned, tmp_path):
    count = rng.randrange(24, 33)
    place = office(lab, rng, seed, spawned, tmp_path, stem="e", count=count)
    bound = receive_window_bound(place.server)
    shuffled = rng.sample(place.connections, count)
    asa = shuffled[: rng.randrange(1, 4)]
    ignored = shuffled[len(asa) : len(asa) + rng.randrange(3, 7)]
    for conn in asa:
        conn.kind, conn.offset = "asa", -1
    for index, conn in enumerate(ignored):  # each kind at least once, then any
        conn.kind = ["below", "above", "inside"][index] if index < 3 else rng.choice(["below", "above", "inside"])
        conn.offset = far_offset(rng, conn.kind, bound)
    controls = [c for c in place.connections if c.offset is None]
    late_count = rng.randrange(1, 3)  # the war story itself, inside the capture: SYN, request, FIN, ACK, RST - 1
    late: dict[int, Connection] = {}
    with_ack = rng.random() < 0.5
    every = rng.uniform(0.15, 0.5)
    window = rng.randrange(5, 8)
    asa_delay = rng.uniform(1.5, 2.0)  # after tcpdump starts: it is listening and has seen every socket write
    injector = inject(spawned, place)
    stop, failures = threading.Event(), []

    def middlebox():
        # Re-sends the ignored RSTs all along. The ASA's go once the capture runs and has seen the server write
        # (a capture knows the expected sequence only from packets it saw, and a reset socket writes no more);
        # then new connections come and go, each reset at expected - 1 as soon as its FIN is on the wire.
        try:
            asa_at, resend_at, asa_sent = None, 0.0, False
            known = {c.port for c in place.connections}
            while not stop.is_set():
                now = time.monotonic()
                if now >= resend_at:
                    send(injector, place.rsts(ignored, with_ack=with_ack))
                    resend_at = now + every
                if asa_at is None and place.server.processes(r"^tcpdump\s"):
                    asa_at = now + asa_delay
                if not asa_sent and asa_at is not None and now >= asa_at:
                    send(injector, place.rsts(asa, with_ack=with_ack))
                    start_client(spawned, place, rng, tmp_path / "late.out", count=late_count)
                    asa_sent = True
                if asa_sent and len(late) < late_count:
                    for port, conn in place.observe().items():
                        if port not in known and port not in late and conn.half_closed:
                            conn.kind, conn.offset = "late", -1
                            late[port] = conn
                            send(injector, place.rsts([conn], with_ack=with_ack))
                stop.wait(0.05)
        except Exception as error:  # noqa: BLE001 - reported by the test after join
            failures.append(error)

    thread = threading.Thread(target=middlebox, daemon=True)
    server = lab_server(customer, place.server)
    ticket = ticket_for(customer, tech, server, "The site hangs for people at the office")
    playbook = small_playbook("rst", [
        {"probe": "tcpdump", "params": {"seconds": window, "count": 10000, "bpf": f"tcp port {place.port}"}},
        {"probe": "sockets", "params": {}},
    ])  # fmt: skip
    thread.start()
    try:
        run = collect(ticket, server, playbook)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not failures, f"seed {seed}: {failures}"
    forged = [*asa, *ignored, *late.values()]
    context = f"seed {seed} kernel {platform.release()}\n{describe(run)}"
    assert len(late) == late_count, f"late connections seen on the wire: {sorted(late)}\n{context}"

    # What the kernel did: the ignored RSTs left their sockets in CLOSE-WAIT; those at expected - 1 reset them.
    minus_one_resets = kernel() >= MINUS_ONE_SINCE
    after = states(place.server, place.port)
    assert {c.port: after.get(c.port) for c in [*place.connections, *late.values()]} == {
        c.port: None if c.offset == -1 and minus_one_resets else "CLOSE-WAIT"
        for c in [*place.connections, *late.values()]
    }, context

    # What the capture says, flow by flow.
    flows = facts_for("tcpdump", bytes(run.evidence.get(probe="tcpdump").output))["flows"]
    ours = (place.client.address, place.server.address, place.port)
    by_port = {f["client_port"]: f for f in flows if (f["client"], f["server"], f["server_port"]) == ours}
    assert len(by_port) == len(flows), f"flows of other endpoints in the capture: {flows}\n{context}"
    table = "\n".join(f"  {c.kind:8} {c.port} offset={c.offset} -> {by_port.get(c.port)}" for c in forged + controls)
    for conn in forged:
        flow = by_port.get(conn.port)
        assert flow and flow["resets"] >= 1, f"{conn} not in the capture\n{table}\n{context}"
        assert (flow["rst_out_of_window"], flow["rst_offset"]) == (True, conn.offset), f"{conn}\n{table}\n{context}"
    for conn in late.values():
        flow = by_port[conn.port]
        assert flow["handshake_completed"] and flow["fins"] >= 1, f"{conn}\n{table}"
    assert controls and all(c.port in by_port for c in controls), f"controls missing\n{table}\n{context}"
    for conn in controls:
        flow = by_port[conn.port]
        assert (flow["rst_out_of_window"], flow["rst_offset"], flow["resets"]) == (False, None, 0), f"{conn}\n{table}"

    # The middlebox symptom matched on the flows and says why, citing the resets; with no send_timeout
    # evidence collected, the resets alone do not make it Varnish's send_timeout.
    match = Match.objects.get(run=run, symptom__key="middlebox-rst-out-of-window")
    assert match.matched, context
    assert not Match.objects.filter(run=run, symptom__key="close-wait-long-send-timeout", matched=True).exists()
    assert ranked_fixes(run=run)[0]["recipe"].key == "find-the-resetting-middlebox", context
    assert f"a peer sent a RST outside the expected sequence ({len(forged)} flow(s))" in match.why, context
    assert f"sockets in CLOSE-WAIT towards {place.client.address}" in match.why, context
    cited = [c["text"] for c in match.citations if c.get("probe") == "tcpdump"]
    assert cited, context
    offsets = {c.port: c.offset for c in forged}
    for text in cited:
        port = int(re.search(r"\bclient_port=(\d+)", text).group(1))
        assert "rst_out_of_window=True" in text and f"rst_offset={offsets[port]}" in text, (text, context)
