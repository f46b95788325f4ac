"""The six seed scenarios end to end: a lab host that really has the fault -> ticket -> collection -> the right
fix ranked first, citing the lines that prove it; and a healthy host that gets no suggestion at all.

Each test draws its own host names, timestamps, addresses of noise, noise volume and timing windows from a
random seed (printed in every failure message), so the signatures are shown to generalise, not memorise.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta

import pytest

from diagnostics import services
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import CollectionRun, Match, Playbook, RunState
from diagnostics.playbooks import DEFAULT_PLAYBOOKS
from tests.fixtures.capture import DNS_SERVER
from tests.lab import HOST_PYTHON, Host, variant_name
from tests.lab_servers import lab_server as lab_server_of
from triage import services as desk

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("kb")]


def lab_server(customer, host: Host):
    """The desk's Server for a lab host, contained first (Host.contain): its load average, vm counters
    and kernel log are its own, so what the tests run beside it cannot put a fault on it."""
    host.contain()
    return lab_server_of(customer, host)


@pytest.fixture
def spawned():
    """Background programs started inside lab hosts; killed (by their own process group) after the test."""
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def background(spawned: list, host: Host, *argv: str) -> subprocess.Popen:
    # Host._enter is the lab's own argv prefix into a host's namespaces (what Host.run uses).
    process = subprocess.Popen(
        [*host._enter(), *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    spawned.append(process)
    return process


def syslog_time(moment: datetime) -> str:
    return f"{moment:%b} {moment.day:>2} {moment:%H:%M:%S}"


def noise_lines(rng: random.Random, hostname: str, start: datetime, count: int) -> list[tuple[datetime, str]]:
    """Ordinary syslog chatter: cron, postfix, systemd, dhclient, sshd logins."""
    templates = [
        "CRON[{pid}]: (root) CMD (/usr/lib/sa/sa1 1 1)",
        "systemd[1]: Started Session {n} of user root.",
        "postfix/qmgr[{pid}]: {queue}: removed",
        "postfix/smtpd[{pid}]: connect from unknown[198.51.100.{o}]",
        "dhclient[{pid}]: bound to 203.0.113.{o} -- renewal in {n} seconds.",
        "sshd[{pid}]: Accepted publickey for deploy from 198.51.100.{o} port {port} ssh2",
        'rsyslogd: [origin software="rsyslogd"] rsyslogd was HUPed',
        "ntpd[{pid}]: adjusting local clock by 0.00{n}s",
    ]
    lines, moment = [], start
    for _ in range(count):
        moment += timedelta(seconds=rng.randrange(1, 400))
        text = rng.choice(templates).format(
            pid=rng.randrange(300, 60000),
            n=rng.randrange(2, 900),
            o=rng.randrange(2, 250),
            port=rng.randrange(1024, 65535),
            queue="".join(rng.choices("0123456789ABCDEF", k=10)),
        )
        lines.append((moment, f"{syslog_time(moment)} {hostname} {text}"))
    return lines


def ticket_for(customer, tech, server, subject: str):
    return desk.ticket_create(
        subject=subject, description=subject, customer=customer, servers=[server], created_by=tech
    )


def default_playbook(name: str, **params) -> Playbook:
    """A default playbook by name; `params` override a probe's parameters (e.g. shorter capture windows)."""
    book = next(b for b in DEFAULT_PLAYBOOKS if b["name"] == name)
    steps = [{"probe": s["probe"], "params": {**s["params"], **params.get(s["probe"], {})}} for s in book["steps"]]
    playbook, _ = Playbook.objects.get_or_create(
        name=name, defaults={"description": book["description"], "steps": steps}
    )
    return playbook


def small_playbook(label: str, steps: list[dict]) -> Playbook:
    return Playbook.objects.create(name=f"lab {label}", steps=steps)


def collect(ticket, server, playbook) -> CollectionRun:
    run = services.run_request(ticket=ticket, server=server, playbook=playbook, by=None, enqueue=False)
    run = services.run_execute(run_id=run.pk, worker="test")
    assert run.state == RunState.SUCCEEDED, run.reason
    return run


def describe(run: CollectionRun) -> str:
    lines = [f"run {run.pk}: {run.reason}"]
    for match in Match.objects.filter(run=run).select_related("symptom").order_by("-score"):
        lines.append(f"  {match.symptom.key} matched={match.matched} score={match.score} why={match.why}")
    for fix in ranked_fixes(run=run):
        lines.append(f"  fix {fix['recipe'].key} {fix['score']} {[c.get('text') for c in fix['citations']][:6]}")
    return "\n".join(lines)


def assert_first_fix(run: CollectionRun, recipe: str, tell: str | re.Pattern, seed: int) -> dict:
    fixes = ranked_fixes(run=run)
    context = f"seed {seed}\n{describe(run)}"
    assert fixes, context
    assert fixes[0]["recipe"].key == recipe, context
    texts = [citation.get("text", "") for citation in fixes[0]["citations"]]
    pattern = tell if isinstance(tell, re.Pattern) else re.compile(re.escape(tell))
    assert any(pattern.search(text) for text in texts), f"no citation matches {pattern.pattern!r}: {texts}\n{context}"
    return fixes[0]


# -- 1. bnx2: "No irq handler for vector" and the link flapping, in the host's own /var/log/messages -----------


def test_bnx2_irq_lines_in_the_logs_rank_disable_msi_first(lab, customer, tech, rng, seed):
    hostname = variant_name(rng, "mx", lab.hosts)
    host = lab.add_host(hostname, private_tmp=True)
    start = datetime(2026, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(0, 24), rng.randrange(60))
    lines = noise_lines(rng, hostname, start, rng.randrange(20, 400))
    uptime = rng.uniform(1e4, 9e6)
    irq_at = lines[rng.randrange(len(lines))][0] + timedelta(seconds=rng.randrange(1, 30))
    interface = rng.choice(["eth0", "eth1", "em1"])
    fault = [
        (
            irq_at,
            f"kernel: [{uptime:.6f}] do_IRQ: {rng.randrange(0, 16)}.{rng.randrange(32, 255)} "
            "No irq handler for vector (irq -1)",
        )
    ]
    moment = irq_at
    for _ in range(rng.randrange(1, 3)):
        moment += timedelta(seconds=rng.randrange(5, 300))
        fault.append((moment, f"kernel: [{uptime + 1:.6f}] bnx2: {interface} NIC Copper Link is Down"))
        moment += timedelta(seconds=rng.randrange(2, 9))
        fault.append(
            (
                moment,
                f"kernel: [{uptime + 2:.6f}] bnx2: {interface} NIC Copper Link is Up, "
                f"{rng.choice([100, 1000])} Mbps full duplex",
            )
        )
    fault = [(when, f"{syslog_time(when)} {hostname} {text}") for when, text in fault]
    text = "\n".join(line for _, line in sorted(lines + fault, key=lambda pair: pair[0])) + "\n"
    host.write_file(rng.choice(["/var/log/messages", "/var/log/syslog", "/var/log/kern.log"]), text)
    server = lab_server(customer, host)
    ticket = ticket_for(customer, tech, server, "The server drops off the network every few days")
    run = collect(ticket, server, default_playbook("Network interface down"))
    assert_first_fix(run, "bnx2-disable-msi", "No irq handler for vector", seed)


# -- 2. dead resolvers: resolv.conf points at a host that drops DNS, sshd does UseDNS --------------------------


def test_dead_resolvers_and_usedns_rank_the_resolver_fix_first(lab, customer, tech, rng, seed):
    blackholes = [lab.add_host(variant_name(rng, "ns", lab.hosts)) for _ in range(rng.randrange(1, 3))]
    for blackhole in blackholes:
        blackhole.drop_dns()
    timeout = rng.choice([1, 2])
    resolv = "".join(f"nameserver {b.address}\n" for b in blackholes)
    resolv = (
        rng.choice(["", f"search {variant_name(rng, 'corp')}.test\n"])
        + resolv
        + f"options timeout:{timeout} attempts:1\n"
    )
    host = lab.add_host(variant_name(rng, "shell", lab.hosts), resolv_conf=resolv, sshd_options={"UseDNS": "yes"})
    server = lab_server(customer, host)
    ticket = ticket_for(customer, tech, server, "SSH logins take ages")
    run = collect(ticket, server, default_playbook("Slow logins"))
    # The login itself waited on the dead resolvers, and that time is part of the run's evidence.
    assert run.auth_seconds - run.handshake_seconds >= 0.8 * timeout, (seed, run.handshake_seconds, run.auth_seconds)
    assert f"Login took {run.auth_seconds:.2f} s" in run.reason
    fix = assert_first_fix(run, "fix-resolvers-usedns-no", "TIMEOUT", seed)
    cited = " ".join(c.get("text", "") for c in fix["citations"])
    assert all(b.address in cited for b in blackholes), (seed, cited)


# -- 3. /tmp mounted noexec on a host running MailScanner --------------------------------------------------------


def test_tmp_noexec_with_mailscanner_ranks_the_tmp_fix_first(lab, customer, tech, rng, seed, spawned):
    hostname = variant_name(rng, "scan", lab.hosts)
    host = lab.add_host(hostname, tmp_noexec=True, own_pids=True)
    corroboration = rng.choice(["process", "perl", "both"])
    start = datetime(2026, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(0, 24))
    lines = noise_lines(rng, hostname, start, rng.randrange(10, 200))
    if corroboration in ("perl", "both"):
        when = lines[-1][0] + timedelta(seconds=rng.randrange(1, 60))
        module = rng.choice(["Mail/SpamAssassin.pm", "Mail/ClamAV.pm", "Digest/SHA1.pm"])
        lines.append(
            (
                when,
                f"{syslog_time(when)} {hostname} MailScanner[{rng.randrange(300, 60000)}]: "
                f"Can't locate {module} in @INC (@INC contains: /usr/lib/MailScanner /etc/perl) "
                "at /usr/sbin/MailScanner line 88.",
            )
        )
    host.write_file(rng.choice(["/var/log/maillog", "/var/log/mail.log"]), "\n".join(line for _, line in lines) + "\n")
    if corroboration in ("process", "both"):
        background(spawned, host, "bash", "-c", "exec -a MailScanner sleep 1000")
        deadline = time.monotonic() + 5
        while not host.processes("MailScanner") and time.monotonic() < deadline:
            time.sleep(0.05)
    server = lab_server(customer, host)
    ticket = ticket_for(customer, tech, server, "Mail is not being scanned since the upgrade")
    run = collect(ticket, server, default_playbook("Mail scanner broken"))
    assert_first_fix(run, "tmp-exec-for-installs", re.compile(r"/tmp\b.*\bnoexec\b"), seed)


# -- the healthy host: nothing above any symptom's threshold -----------------------------------------------------


def test_a_healthy_host_gets_no_fix(lab, customer, tech, rng, seed, spawned):
    dns = lab.add_host(variant_name(rng, "dns", lab.hosts), private_tmp=True)
    dns.write_file("/tmp/dns.py", DNS_SERVER)
    background(spawned, dns, HOST_PYTHON, "-I", "-S", "/tmp/dns.py")
    deadline = time.monotonic() + 5
    while ":53 " not in dns.run("ss", "-lun").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    hostname = variant_name(rng, "web", lab.hosts)
    resolv = (
        f"search {variant_name(rng, 'corp')}.test\nnameserver {dns.address}\noptions timeout:{rng.choice([1, 2])}\n"
    )
    # Its own processes too: the suite's other workers must not show up in its process and fd lists.
    host = lab.add_host(
        hostname,
        private_tmp=True,
        own_pids=True,
        resolv_conf=resolv,
        sshd_options={"UseDNS": rng.choice(["yes", "no"])},
    )
    start = datetime(2026, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(0, 24))
    host.write_file(
        "/var/log/messages",
        "\n".join(line for _, line in noise_lines(rng, hostname, start, rng.randrange(10, 300))) + "\n",
    )
    server = lab_server(customer, host)
    ticket = ticket_for(customer, tech, server, "Just checking")
    for playbook in ("Host health", "Slow logins"):
        run = collect(ticket, server, default_playbook(playbook))
        assert not Match.objects.filter(run=run, matched=True).exists(), f"seed {seed}\n{describe(run)}"
        assert ranked_fixes(run=run) == [], f"seed {seed}\n{describe(run)}"
    resolvers = run.evidence.get(probe="resolvers").text
    assert re.search(rf"^nameserver {re.escape(dns.address)} \d+ ms NOERROR via dig$", resolvers, re.M), resolvers


# -- 4. ident: tcpserver (no -R) asks each client's identd, and the client's firewall drops port 113 -------------


def ident_scenario(lab, customer, tech, rng, spawned) -> CollectionRun:
    """tcpserver without -R on port 25; one or two offices that drop inbound :113 keep connecting to it."""
    mail = lab.add_host(variant_name(rng, "mail", lab.hosts), own_pids=True)
    clients = [lab.add_host(variant_name(rng, "office", lab.hosts)) for _ in range(rng.randrange(1, 3))]
    for client in clients:
        client.drop_syn(113)
    background(spawned, mail, "tcpserver", "-v", "-c", "40", "0", "25", "/bin/echo", "220", "mail.lab", "ESMTP")
    deadline = time.monotonic() + 5
    while "0.0.0.0:25 " not in mail.run("ss", "-ltn").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    pause = rng.uniform(0.3, 1.0)
    for client in clients:  # keeps sending mail: a new SMTP connection every `pause` seconds
        loop = (
            f"for i in $(seq 60); do (timeout 40 bash -c 'exec 3<>/dev/tcp/{mail.address}/25; cat <&3' &); "
            f"sleep {pause:.2f}; done"
        )
        background(spawned, client, "bash", "-c", loop)
    time.sleep(rng.uniform(1.0, 2.0))
    window = rng.randrange(4, 8)
    playbook = small_playbook(
        "ident",
        [
            {"probe": "sockets", "params": {}},
            {"probe": "strace", "params": {"process": "tcpserver", "seconds": window}},
            {"probe": "tcpdump", "params": {"seconds": window, "bpf": "tcp port 113"}},
            {"probe": "service_settings", "params": {}},
        ],
    )
    server = lab_server(customer, mail)
    ticket = ticket_for(customer, tech, server, "Outlook waits 30 seconds after pressing Send")
    return collect(ticket, server, playbook)


IDENT_RECIPES = {"tcpserver-disable-ident", "sendmail-disable-ident", "exim-disable-ident"}


def test_ident_callbacks_to_a_firewalled_client_rank_an_ident_fix_first(lab, customer, tech, rng, seed, spawned):
    run = ident_scenario(lab, customer, tech, rng, spawned)
    fixes = ranked_fixes(run=run)
    context = f"seed {seed}\n{describe(run)}"
    assert fixes and fixes[0]["recipe"].key in IDENT_RECIPES, context
    assert [s.key for s in fixes[0]["symptoms"]] == ["ident-lookup-timeout"], context
    assert "tcpserver-disable-ident" in {f["recipe"].key for f in fixes if f["score"] == fixes[0]["score"]}, context
    texts = [c.get("text", "") for c in fixes[0]["citations"]]
    assert any(re.search(r"SYN-SENT.*:113\b.*tcpserver", text) for text in texts), context


def test_ident_on_a_tcpserver_host_ranks_the_tcpserver_fix_first(lab, customer, tech, rng, seed, spawned):
    run = ident_scenario(lab, customer, tech, rng, spawned)
    fix = assert_first_fix(run, "tcpserver-disable-ident", re.compile(r"113\b"), seed)
    context = f"seed {seed}\n{describe(run)}"
    assert fix["fit"] is not None and fix["fit"].applies, context
    assert "tcpserver" in fix["fit"].why and fix["fit"].citations, context
    # exim and sendmail do not run here: listed under the tcpserver fix as alternatives that do not fit.
    alternatives = {a.recipe.key: a.fits for a in fix.alternatives}
    assert alternatives == dict.fromkeys(IDENT_RECIPES - {"tcpserver-disable-ident"}, False), context


# -- 5. varnish: client sockets in CLOSE-WAIT behind a silent backend, with the shipped send_timeout ------------


def test_varnish_close_wait_with_long_send_timeout_ranks_lower_send_timeout_first(
    lab, customer, tech, rng, seed, spawned
):
    cache = lab.add_host(variant_name(rng, "cache", lab.hosts), own_pids=True, private_tmp=True)
    browsers = [
        lab.add_host(variant_name(rng, "browser", lab.hosts), own_pids=True) for _ in range(rng.randrange(1, 3))
    ]
    backend_port = rng.randrange(8000, 9000)
    cache.serve_silence(backend_port)
    cache.run("mount", "-t", "tmpfs", "varnish", "/var/lib/varnish")
    cache.run(
        "varnishd",
        "-a",
        ":80",
        "-b",
        f"127.0.0.1:{backend_port}",
        "-s",
        "malloc,32m",
        "-p",
        f"first_byte_timeout={rng.randrange(90, 300)}",
        timeout=30,
    )
    deadline = time.monotonic() + 15
    while "0.0.0.0:80 " not in cache.run("ss", "-ltn").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    hangups = rng.randrange(24, 40)
    request = (
        f"exec 3<>/dev/tcp/{cache.address}/80; printf 'GET /slow/%s HTTP/1.1\\r\\nHost: cache\\r\\n\\r\\n' "
        f'"$1" >&3; sleep {rng.uniform(0.2, 1.0):.2f}'
    )
    browser = rng.choice(browsers)  # one office behind one firewall: the pile-up is towards one peer
    for index in range(hangups):
        background(spawned, browser, "bash", "-c", request, "req", str(index))
    deadline = time.monotonic() + 10
    while cache.run("ss", "-tn", "state", "close-wait").stdout.count("\n") <= 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    playbook = small_playbook(
        "cache",
        [
            {"probe": "sockets", "params": {}},
            {"probe": "service_settings", "params": {}},
            {"probe": "processes", "params": {}},
            {"probe": "fd_usage", "params": {}},
        ],
    )
    server = lab_server(customer, cache)
    ticket = ticket_for(customer, tech, server, "The site hangs under load")
    run = collect(ticket, server, playbook)
    fix = assert_first_fix(run, "varnish-lower-send-timeout", "send_timeout", seed)
    assert any("CLOSE-WAIT" in c.get("text", "") for c in fix["citations"]), f"seed {seed}\n{describe(run)}"


# -- 6. upstream: connections that handshake and then hang, until the process runs out of descriptors ----------

HANGER = """
import os, socket, sys, time
marker = open("/tmp/hanger.starting", "w")  # its descriptor is taken now: at the limit, no open() would work
upstream, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(count):
    try:
        conn = socket.create_connection((upstream, port))
    except OSError:  # EMFILE: every descriptor is in use
        break
    conn.setblocking(False)
    try:
        while True:
            conn.send(b"x" * 65536)
    except BlockingIOError:
        pass
    held.append(conn)
os.rename("/tmp/hanger.starting", "/tmp/hanger.ready")
time.sleep(600)
"""


@pytest.mark.parametrize("exhausted", [False, True], ids=["nearly-out", "out"])
def test_upstream_hang_until_fds_run_out_ranks_the_timeout_fix_first(
    lab, customer, tech, rng, seed, spawned, exhausted
):
    relay = lab.add_host(variant_name(rng, "relay", lab.hosts), own_pids=True, private_tmp=True)
    upstream = lab.add_host(variant_name(rng, "smarthost", lab.hosts))
    port = rng.choice([25, 587, 2525, rng.randrange(10000, 20000)])
    upstream.serve_silence(port)  # accepts, never reads: the handshake completes, then nothing
    count = rng.randrange(20, 40)
    # stdin/out/err, the marker and the held sockets: 83-88% of the limit, or every descriptor in use
    limit = count + 4 if exhausted else -(-(count + 4) * 100 // rng.randrange(83, 89))
    relay.write_file("/tmp/hanger.py", HANGER)
    background(
        spawned,
        relay,
        "prlimit",
        f"--nofile={limit}:{limit}",
        HOST_PYTHON,
        "-I",
        "-S",
        "/tmp/hanger.py",
        upstream.address,
        str(port),
        str(count),
    )
    deadline = time.monotonic() + 15
    while relay.run("test", "-e", "/tmp/hanger.ready", check=False).returncode and time.monotonic() < deadline:
        time.sleep(0.1)
    server = lab_server(customer, relay)
    ticket = ticket_for(customer, tech, server, "Outbound mail stuck, then 'Too many open files'")
    playbook = small_playbook(
        "upstream",
        [
            {"probe": "sockets", "params": {}},
            {"probe": "fd_usage", "params": {}},
            {"probe": "processes", "params": {}},
            {"probe": "memory", "params": {}},
        ],
    )
    run = collect(ticket, server, playbook)
    assert_first_fix(run, "upstream-timeouts-and-fd-alerts", upstream.address, seed)
    if exhausted:  # the limit is reached too, but as a consequence: its fix is shown below the cause's
        fixes = {f["recipe"].key: f for f in ranked_fixes(run=run)}
        context = f"seed {seed}\n{describe(run)}"
        assert [s.key for s in fixes["raise-nofile-limit"]["causes"]] == ["upstream-hang-fd-exhaustion"], context
