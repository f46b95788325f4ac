"""War story 2 (MessageLabs): connections to an upstream complete the handshake and then hang, the 20-minute
timeouts hold every one of them, and the relay runs out of file descriptors.

The lab's scenario floods each connection until its send queue is full. These variants send one small
request that the upstream's kernel acknowledges and then wait for an answer that never comes: queues empty,
nothing moving, as a relay waiting for a greeting or a proxy waiting for a response looks. Other ports
(8080, 465), other fd limits (64, 256), one process holding every connection.
Decoy (busy neighbours): one process holding as many connections to one peer, near its fd limit too, but
every connection moves data all the time.
"""

from __future__ import annotations

import math

from tests.genlab.base import Env, Scenario, background, contained_host, wait_until
from tests.lab import HOST_PYTHON, Host

SUBJECT = "Outbound mail stuck, then 'Too many open files'"
# Shipped playbooks that list both the sockets and each process's descriptors against its limit.
EVIDENCE = ("Connections piling up", "Mail queue growing")
# How long every held connection must have moved nothing before the scenario is collected. The signature
# asks for 10 s of silence both ways (ss -i lastsnd/lastrcv); a little more keeps the lab off the edge.
QUIET_SECONDS = 11

WAITER = r"""
import os, socket, sys, time
marker = open("/tmp/relay.starting", "w")  # taken now: at the limit, no open() would work
upstream, port, count, request = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
held = []
for _ in range(count):
    try:
        conn = socket.create_connection((upstream, port), timeout=5)
    except OSError:
        break
    conn.sendall(request.replace(b"|", b"\r\n"))  # small: the upstream's kernel acks it, nothing comes back
    held.append(conn)
os.rename("/tmp/relay.starting", "/tmp/relay.ready")
time.sleep(3600)
"""

# Busy but healthy: each connection sends a line and reads the echo, over and over.
CHATTY = r"""
import os, selectors, socket, sys, time
peer, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
marker = open("/tmp/pool.starting", "w")
sel = selectors.DefaultSelector()
for _ in range(count):
    conn = socket.create_connection((peer, port), timeout=5)
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ)
    conn.send(b"ping\n")
os.rename("/tmp/pool.starting", "/tmp/pool.ready")
while True:
    for key, _ in sel.select(timeout=1):
        if key.fileobj.recv(4096):
            key.fileobj.send(b"ping\n")
    time.sleep(0.05)  # every connection moves a line about 20 times a second
"""

ECHO = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(512)
sel.register(server, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is server:
            conn, _ = server.accept()
            sel.register(conn, selectors.EVENT_READ)
        else:
            data = key.fileobj.recv(4096)
            if data:
                key.fileobj.send(data)
            else:
                sel.unregister(key.fileobj)
                key.fileobj.close()
"""


def limit_for(count: int, share: float) -> int:
    """The open-files limit at which `count` held sockets plus stdin/out/err and the marker use `share` of it."""
    return math.ceil((count + 4) / share)


def _quiet_for(relay: Host, peer: str, count: int, seconds: int) -> bool:
    """Whether `count` connections to `peer` have sent and received nothing for `seconds` (ss -i)."""
    out = relay.run("ss", "-tni", "state", "established", "dst", peer).stdout
    idle = 0
    for line in out.splitlines():
        fields = dict(f.split(":", 1) for f in line.split() if f.startswith(("lastsnd:", "lastrcv:")))
        if len(fields) == 2 and min(int(v) for v in fields.values()) >= seconds * 1000:
            idle += 1
    return idle >= count


def _waiting_relay(
    env: Env, *, name: str, upstream_name: str, port: int, count: int, limit: int, request: str
) -> tuple[Host, Host]:
    relay = contained_host(env, name)
    upstream = env.lab.add_host(upstream_name)
    upstream.serve_silence(port)  # accepts, never answers, never reads
    relay.write_file("/tmp/relay.py", WAITER)
    background(
        env,
        relay,
        "prlimit",
        f"--nofile={limit}:{limit}",
        HOST_PYTHON,
        "-I",
        "-S",
        "/tmp/relay.py",
        upstream.address,
        str(port),
        str(count),
        request,
    )
    wait_until(
        lambda: not relay.run("test", "-e", "/tmp/relay.ready", check=False).returncode,
        what=f"{count} connections from {name}",
    )
    return relay, upstream


def _scenario(name: str, relay: Host) -> Scenario:
    """An upstream variant: the relay holding connections to a silent upstream near its open-files limit."""
    return Scenario(
        name=name,
        story="upstream",
        host=relay,
        subject=SUBJECT,
        recipe="upstream-timeouts-and-fd-alerts",
        playbook="Mail queue growing",
        evidence=EVIDENCE,
    )


def api_proxy_8080_limit64(env: Env) -> tuple[Scenario, Host, int]:
    count = 52
    relay, upstream = _waiting_relay(
        env,
        name="proxy-api",
        upstream_name="api-up",
        port=8080,
        count=count,
        limit=limit_for(count, 0.875),
        request="GET /v2/submit HTTP/1.1|Host: api||",
    )
    return _scenario("upstream/quiet-8080-nofile64", relay), upstream, count


def smtps_relay_465_limit256(env: Env) -> tuple[Scenario, Host, int]:
    count = 215
    relay, upstream = _waiting_relay(
        env,
        name="relay-465",
        upstream_name="smart-465",
        port=465,
        count=count,
        limit=limit_for(count, 0.85),
        request="EHLO relay-465.lab|",
    )
    return _scenario("upstream/quiet-465-nofile256", relay), upstream, count


def wait_quiet(pairs: list[tuple[Scenario, Host, int]]) -> list[Scenario]:
    """Wait until every variant's connections have moved nothing for QUIET_SECONDS (built first, waited
    together, so the variants share the wait)."""
    for scenario, upstream, count in pairs:
        wait_until(
            lambda s=scenario, u=upstream, c=count: _quiet_for(s.host, u.address, c, QUIET_SECONDS),
            what=f"{scenario.name}: connections quiet",
            timeout=QUIET_SECONDS + 20,
        )
    return [scenario for scenario, _, _ in pairs]


def busy_pool_near_limit(env: Env) -> Scenario:
    """Healthy: 40 connections from one process to one peer, at 83% of its fd limit, all moving data."""
    count = 40
    app = contained_host(env, "app-busy")
    database = env.lab.add_host("db-busy", private_tmp=True)
    database.write_file("/tmp/echo.py", ECHO)
    background(env, database, HOST_PYTHON, "-I", "-S", "/tmp/echo.py", "6432")
    wait_until(lambda: ":6432 " in database.run("ss", "-ltn").stdout, what="the echo server")
    app.write_file("/tmp/pool.py", CHATTY)
    limit = limit_for(count, 0.83)
    background(
        env,
        app,
        "prlimit",
        f"--nofile={limit}:{limit}",
        HOST_PYTHON,
        "-I",
        "-S",
        "/tmp/pool.py",
        database.address,
        "6432",
        str(count),
    )
    wait_until(lambda: not app.run("test", "-e", "/tmp/pool.ready", check=False).returncode, what="the pool")
    return Scenario(
        name="decoy/busy-pool-near-fd-limit", story="upstream", host=app, subject="Just checking the app server"
    )
