"""Proof of effect on real lab hosts: what the probes measure (lookup times, the login time) and read
(the running daemon's own config) decides which symptom holds, not what is merely configured.

Each test draws its details (host names, how many resolvers, timeouts) from a random seed printed in
every failure message, so a signature is shown to hold on variants, not on one recorded host.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from diagnostics import services
from diagnostics.models import CollectionRun, Match, Playbook, RunState
from diagnostics.parsers import facts_for
from diagnostics.playbooks import DEFAULT_PLAYBOOKS
from diagnostics.selectors import run_detail
from tests.lab import variant_name
from tests.lab_servers import lab_server
from triage import services as desk

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("kb")]


def playbook(name_: str) -> Playbook:
    book = next(b for b in DEFAULT_PLAYBOOKS if b["name"] == name_)
    found, _ = Playbook.objects.get_or_create(
        name=name_, defaults={"description": book["description"], "steps": book["steps"]}
    )
    return found


def collect(customer, tech, host, book: Playbook) -> CollectionRun:
    server = lab_server(customer, host)
    ticket = desk.ticket_create(
        subject="Logins are slow", description="Logins are slow", customer=customer, servers=[server], created_by=tech
    )
    run = services.run_request(ticket=ticket, server=server, playbook=book, by=None, enqueue=False)
    run = services.run_execute(run_id=run.pk, worker="test")
    assert run.state == RunState.SUCCEEDED, run.reason
    return run


def matched(run: CollectionRun) -> dict[str, Match]:
    return {m.symptom.key: m for m in Match.objects.filter(run=run, matched=True).select_related("symptom")}


def describe(run: CollectionRun, seed: int) -> str:
    rows = [f"seed {seed} run {run.pk}: {run.reason}"]
    rows += [
        f"  {m.symptom.key} matched={m.matched} score={m.score} why={m.why}"
        for m in Match.objects.filter(run=run).select_related("symptom")
    ]
    rows += [run.evidence.get(probe="resolvers").text]
    return "\n".join(rows)


# -- resolvers: a fast refusal is its own finding; only a measured wait is "dead resolvers" -----------------


def test_resolvers_that_refuse_fast_are_refusing_not_dead(lab, customer, tech, rng, seed):
    # Nothing listens on :53 at one address (ICMP port unreachable); a REJECT rule at another, maybe.
    refusers = [lab.add_host(variant_name(rng, "oldns", lab.hosts), start_sshd=False)]
    if rng.random() < 0.5:
        rejecting = lab.add_host(variant_name(rng, "fwns", lab.hosts), start_sshd=False)
        rejecting.run("iptables", "-w", "5", "-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "REJECT")
        refusers.append(rejecting)
    for refuser in refusers:
        # Linux sends at most ~6 port-unreachables in a burst per peer, then 1/s: sshd's own lookups (UseDNS)
        # and hostname -f would use them up and later queries would really time out (dead, not refusing).
        refuser.run("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
    rng.shuffle(refusers)
    resolv = "".join(f"nameserver {r.address}{rng.choice(['', ' # retired'])}\n" for r in refusers)
    resolv += f"options timeout:{rng.choice([1, 2, 3])} attempts:{rng.choice([1, 2])}\n"
    host = lab.add_host(
        variant_name(rng, "shell", lab.hosts), own_pids=True, resolv_conf=resolv, sshd_options={"UseDNS": "yes"}
    )

    run = collect(customer, tech, host, playbook("Slow logins"))

    found, context = matched(run), describe(run, seed)
    assert "resolver-refusing" in found, context
    assert "dead-resolvers" not in found and "sshd-usedns-slow-resolvers" not in found, context
    cited = " ".join(c.get("text", "") for c in found["resolver-refusing"].citations)
    assert all(r.address in cited for r in refusers), context


def test_a_resolver_that_drops_queries_is_dead_and_its_wait_is_measured(lab, customer, tech, rng, seed):
    dead = lab.add_host(variant_name(rng, "ns", lab.hosts), start_sshd=False)
    dead.drop_dns()
    resolv = f"nameserver {dead.address}\noptions timeout:{rng.choice([1, 2])} attempts:1\n"
    host = lab.add_host(variant_name(rng, "shell", lab.hosts), own_pids=True, resolv_conf=resolv)

    run = collect(customer, tech, host, playbook("Slow logins"))

    found, context = matched(run), describe(run, seed)
    assert "dead-resolvers" in found and "resolver-refusing" not in found, context
    assert "ms" in found["dead-resolvers"].why, context


# -- the login the product measured is the proof that UseDNS costs this host time ------------------------------


def usedns_host(lab, rng, *, client_in_hosts: bool):
    dead = lab.add_host(variant_name(rng, "ns", lab.hosts), start_sshd=False)
    dead.drop_dns()
    hostname = variant_name(rng, "shell", lab.hosts)
    if client_in_hosts:  # sshd finds the client in /etc/hosts and never asks DNS (ip netns exec binds it)
        etc = Path("/etc/netns") / f"{lab.prefix}-{hostname}"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{lab.bridge_address} {variant_name(rng, 'desk')}.lab.test\n")
    wait = rng.choice([1, 2])  # what one lookup by sshd costs: the dead resolver's timeout
    resolv = f"nameserver {dead.address}\noptions timeout:{wait} attempts:1\n"
    return lab.add_host(hostname, own_pids=True, resolv_conf=resolv, sshd_options={"UseDNS": "yes"}), wait


def test_usedns_with_dead_resolvers_is_proved_by_the_slow_login_the_product_measured(lab, customer, tech, rng, seed):
    host, _ = usedns_host(lab, rng, client_in_hosts=False)

    run = collect(customer, tech, host, playbook("Slow logins"))

    found, context = matched(run), describe(run, seed)
    assert "sshd-usedns-slow-resolvers" in found, context
    session = run.evidence.get(probe="ssh_session")
    cited = [c for c in found["sshd-usedns-slow-resolvers"].citations if c["probe"] == "ssh_session"]
    assert cited and cited[0]["evidence_id"] == session.pk and cited[0]["text"].startswith("auth "), context
    assert "waited" in found["sshd-usedns-slow-resolvers"].why, context
    _, steps = run_detail(user=tech, run_id=run.pk)  # the run page shows the measured login, its cited line marked
    assert steps[-1].probe == "ssh_session" and steps[-1].has_citation, context


def test_usedns_and_dead_resolvers_with_a_quick_login_are_no_slow_login(lab, customer, tech, rng, seed):
    # The same configuration, but sshd never waits: the client is in /etc/hosts. Only the resolvers are dead.
    host, lookup_wait = usedns_host(lab, rng, client_in_hosts=True)

    run = collect(customer, tech, host, playbook("Slow logins"))

    found, context = matched(run), describe(run, seed)
    # The lab's premise, not a speed: a login that had asked the dead resolver would have waited its timeout.
    assert run.auth_seconds - run.handshake_seconds < lookup_wait, context
    assert "dead-resolvers" in found and "sshd-usedns-slow-resolvers" not in found, context


# -- probes read what is running -------------------------------------------------------------------------------


def test_sshd_settings_come_from_the_running_daemons_own_config_file(lab, customer, tech, rng, seed):
    # The lab's sshd runs with -f <its own file>; /etc/ssh/sshd_config says something else (or nothing).
    grace = rng.randrange(20, 120)
    host = lab.add_host(
        variant_name(rng, "jump", lab.hosts),
        own_pids=True,
        sshd_options={"UseDNS": rng.choice(["yes", "no"]), "LoginGraceTime": str(grace)},
    )
    config = (host.dir / "sshd_config").read_text()
    book = Playbook.objects.create(name="lab sshd", steps=[{"probe": "sshd_config", "params": {}}])

    run = collect(customer, tech, host, book)

    evidence = run.evidence.get(probe="sshd_config")
    settings = {r["name"]: r for r in facts_for("sshd_config", bytes(evidence.output))["sshd_settings"]}
    context = f"seed {seed}\n{evidence.text}"
    assert settings["logingracetime"]["value"] == str(grace), context
    assert settings["usedns"]["value"] == host.sshd_options["UseDNS"], context
    assert settings["listenaddress"]["value"] == f"{host.address}:22", context
    assert settings["usedns"]["file"] == f"sshd -T -f {host.dir / 'sshd_config'}", context
    assert "UseDNS" in config  # the file the daemon was started with is the one read


# -- counts judged against this host's own limits ----------------------------------------------------------------


def test_socket_counts_are_judged_against_each_hosts_own_limits(lab, customer, tech, rng, seed):
    from tests.fixtures.capture import CLOSE_ON_EOF_SERVER, HOST_PYTHON, background, ports_host

    peer = lab.add_host(variant_name(rng, "backend", lab.hosts), own_pids=True, private_tmp=True)
    peer.serve_silence(9100)
    peer.write_file("/tmp/close.py", CLOSE_ON_EOF_SERVER)
    background(peer, HOST_PYTHON, "-I", "-S", "/tmp/close.py", "9200")
    low, size = rng.randrange(20000, 50000), rng.randrange(60, 160)
    backlog = rng.choice([8, 16, 32])
    closed = int(size * rng.uniform(0.6, 0.9))  # TIME-WAIT sockets: most of the small range
    # The relay: a narrowed port range, used up towards the backend (connect() fails, and says so).
    small = ports_host(
        lab,
        variant_name(rng, "relay", lab.hosts),
        peer,
        port_range=f"{low} {low + size - 1}",
        held=size // 3,
        closed=closed,
        exhaust=True,
        backlog=backlog,
        queued=backlog - rng.randrange(backlog // 2),
    )
    # Its busy neighbour: as many sockets, the same TIME-WAIT, dozens waiting - against a wide range, a big backlog.
    big = ports_host(
        lab,
        variant_name(rng, "web", lab.hosts),
        peer,
        port_range=rng.choice(["32768 60999", "1024 65535"]),
        held=size,
        closed=closed,
        exhaust=False,
        backlog=4096,
        queued=rng.randrange(50, 70),
    )
    book = Playbook.objects.create(
        name="lab ports", steps=[{"probe": "sockets", "params": {}}, {"probe": "system_log", "params": {}}]
    )
    watched = {"ephemeral-port-exhaustion", "time-wait-storm", "accept-queue-backlog"}

    run = collect(customer, tech, small, book)
    found = matched(run)
    assert watched <= set(found), f"seed {seed}\n{[(m.symptom.key, m.why) for m in found.values()]}"
    assert f"{peer.address}:9100" in found["ephemeral-port-exhaustion"].why, found["ephemeral-port-exhaustion"].why

    run = collect(customer, tech, big, book)
    assert watched & set(matched(run)) == set(), f"seed {seed}\n{[(k, m.why) for k, m in matched(run).items()]}"


# -- a line naming an address this host does not have is not its evidence ------------------------------------


def test_an_address_conflict_counts_only_when_it_names_this_hosts_address(lab, customer, tech, rng, seed):
    hosts = [lab.add_host(variant_name(rng, "node", lab.hosts), own_pids=True, private_tmp=True) for _ in range(2)]
    mine, relayed = hosts
    mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
    for host, named in ((mine, mine.address), (relayed, mine.address)):  # the relay holds mine's line
        pid = rng.randrange(300, 9000)
        host.write_file(
            "/var/log/messages",
            (
                f"Nov {rng.randrange(1, 29):>2} 0{rng.randrange(10)}:12:44 {mine.name} NetworkManager[{pid}]: "
                f"<warn>  [1763771564.{rng.randrange(1000, 9999)}] device (eth0): IPv4 address conflict detected for "
                f"{named} by {mac}\n"
            ),
        )
    book = playbook("Network interface down")

    assert "duplicate-ip-address" in matched(collect(customer, tech, mine, book)), f"seed {seed}"
    assert "duplicate-ip-address" not in matched(collect(customer, tech, relayed, book)), f"seed {seed}"


# -- install logs under /var/log are read ------------------------------------------------------------------------

TERM_LOG = """Log started: {day} 10:14:02
Selecting previously unselected package {package}.
(Reading database ... 48211 files and directories currently installed.)
Preparing to unpack .../{package}_{version}_all.deb ...
Unpacking {package} ({version}) ...
Setting up {package} ({version}) ...
/var/lib/dpkg/info/{package}.postinst: {line}: /tmp/{script}: Permission denied
dpkg: error processing package {package} (--configure):
 installed {package} package post-installation script subprocess returned error exit status 126
Errors were encountered while processing:
 {package}
Log ended: {day} 10:14:09

"""


def test_an_install_that_could_not_run_its_script_from_a_noexec_tmp_is_read_from_the_install_log(
    lab, customer, tech, rng, seed
):
    # No Perl error in the mail log and no scanner running: only the package manager's log says why.
    host = lab.add_host(variant_name(rng, "mx", lab.hosts), tmp_noexec=True, own_pids=True)
    package = rng.choice(["mailscanner", "spamassassin", "clamav-unofficial-sigs"])
    host.run("mkdir", "-p", "/var/log/apt")
    host.write_file(
        "/var/log/apt/term.log",
        TERM_LOG.format(
            day=f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            package=package,
            line=rng.randrange(9, 99),
            version=f"{rng.randrange(1, 6)}.{rng.randrange(10)}.{rng.randrange(10)}-1",
            script=f"{package}-setup.{rng.choice(['sh', 'pl'])}",
        ),
    )

    run = collect(customer, tech, host, playbook("Mail scanner broken"))

    found = matched(run)
    assert "tmp-noexec-mailscanner" in found, f"seed {seed}\n{[(k, m.why) for k, m in found.items()]}"
    cited = [c for c in found["tmp-noexec-mailscanner"].citations if c["probe"] == "install_log"]
    assert cited and "Permission denied" in cited[0]["text"], f"seed {seed}"


def test_service_settings_are_read_from_the_process_that_owns_the_listening_socket(lab, customer, tech, rng, seed):
    # tcpserver started by hand (no run script anywhere): its options live only in its command line.
    from tests.fixtures.capture import background

    host = lab.add_host(variant_name(rng, "mail", lab.hosts), own_pids=True)
    flags = rng.choice(
        [
            (["-v"], "on", 26),
            (["-vR"], "off", 26),
            (["-Rt0"], "off", 0),
            (["-t", "9"], "on", 9),
            (["-vRHl0"], "off", 26),
        ]
    )
    port = rng.choice([25, 587, rng.randrange(2000, 3000)])
    background(host, "tcpserver", *flags[0], "-c", str(rng.randrange(10, 60)), "0", str(port), "/bin/echo", "220")
    for _ in range(50):
        if f":{port} " in host.run("ss", "-ltn").stdout:
            break
        time.sleep(0.1)
    book = Playbook.objects.create(name="lab settings", steps=[{"probe": "service_settings", "params": {}}])

    run = collect(customer, tech, host, book)

    evidence = run.evidence.get(probe="service_settings")
    rows = {
        r["name"]: r
        for r in facts_for("service_settings", bytes(evidence.output))["service_params"]
        if r["service"] == "tcpserver"
    }
    context = f"seed {seed}\n{evidence.text}"
    assert rows["ident_lookups"]["value"] == flags[1] and rows["ident_timeout"]["number"] == flags[2], context
    assert rows["ident_lookups"]["file"].startswith("process ") and rows["ident_lookups"]["file"].endswith(" tcpserver")
