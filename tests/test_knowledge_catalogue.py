"""The shipped catalogue of common failures: each symptom matches its recorded fault and not a healthy twin.

Every case lives in ``tests/fixtures/catalogue/<symptom>/`` as ``positive.<probe>.txt`` and
``negative.<probe>.txt``: one probe's stdout each, fed to the real matcher as a collection's
evidence. How each was obtained is said per case below and in that folder's README:

* real -- the product's own probe command run on this machine (a tmpfs filled for real);
* edited -- a real fixture from ``tests/fixtures/`` with the fault's lines added or its numbers
  changed, in the exact format of the tool (syslog, dmesg -T, ss, df, vmstat, ip -s link ...),
  because the fault (a failing disk, an OOM kill, a SYN flood) cannot be produced in the lab.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from diagnostics.knowledge import matcher
from diagnostics.knowledge.yaml_io import parse_kb
from diagnostics.management.commands.load_kb import SEED
from diagnostics.parsers import facts_for

FIXTURES = Path(__file__).parent / "fixtures"
CATALOGUE = FIXTURES / "catalogue"
WAR_STORY_SYMPTOMS = {
    "ident-lookup-timeout",
    "upstream-hang-fd-exhaustion",
    "tmp-noexec-mailscanner",
    "close-wait-long-send-timeout",
    "middlebox-rst-out-of-window",
    "dead-resolvers",
    "bnx2-irq-link-flap",
}

# (symptom, probe whose line proves it, text of that line, where the evidence came from)
CASES = [
    (
        "disk-full",
        "disk",
        "4096     4096         0     100% /var/log",
        "real: df -PT/-Pi here with a 4 MB tmpfs on /var/log filled by dd; negative half full",
    ),
    (
        "inodes-full",
        "disk",
        "200    200        0  100% /var/log",
        "real: tmpfs with nr_inodes=200 filled with empty files; negative 61 of 200",
    ),
    (
        "oom-killer",
        "kernel_log",
        "Out of memory: Killed process 1432 (mysqld)",
        "edited from kernel_log/dmesg_T.txt (+ OOM report lines) and memory/web.txt (oom_kill 3)",
    ),
    (
        "conntrack-table-full",
        "kernel_log",
        "table full, dropping packet",
        "edited from kernel_log/dmesg_T.txt; negative has the harmless nf_conntrack helper notice",
    ),
    (
        "syn-flood-backlog",
        "system_log",
        "Possible SYN flooding on port 0.0.0.0:80",
        "edited from system_log/messages_irq.txt's healthy lines",
    ),
    (
        "accept-queue-backlog",
        "sockets",
        "LISTEN     129    1024",
        "edited from sockets/varnish_close_wait.txt (LISTEN Recv-Q 0 -> 129); negative is the real file",
    ),
    (
        "ephemeral-port-exhaustion",
        "log_tail",
        "(99: Cannot assign requested address)",
        "edited: nginx error.log lines + sockets/after_off_by_one_rst.txt with 28190 TIME-WAIT; "
        "negative keeps the sockets, drops the error",
    ),
    (
        "time-wait-storm",
        "sockets",
        "time_wait=28190",
        "edited from sockets/after_off_by_one_rst.txt; negative 1190 TIME-WAIT; judged against the port range "
        "(the kernel's default here): a facts citation of the tcp_limits row",
    ),
    (
        "clock-skew",
        "system_log",
        "System clock wrong by 3620.512345 seconds",
        "edited from system_log/messages_irq.txt's healthy lines (chronyd lines)",
    ),
    (
        "tls-certificate-expired",
        "mail_log",
        "sslv3 alert certificate expired",
        "edited from mail_log/maillog.txt (postfix smtpd TLS lines)",
    ),
    (
        "tls-handshake-failures",
        "mail_log",
        "no shared cipher",
        "edited from mail_log/maillog.txt; negative has one failure (below the three needed)",
    ),
    (
        "resolver-servfail",
        "resolvers",
        "nameserver 10.213.20.10 31 ms SERVFAIL",
        "edited from resolvers/dead_first_nameserver.txt (TIMEOUT -> SERVFAIL / NOERROR)",
    ),
    (
        "mtu-black-hole",
        "mail_log",
        "timed out while sending message body",
        "edited: maillog.txt + postfix body timeouts, interfaces/web.txt with eth0 mtu 1400; "
        "negative keeps the timeouts with the real mtu 1500",
    ),
    (
        "swap-storm",
        "load",
        "812 1440",
        "edited from load/web.txt (vmstat si/so) and memory/web.txt (pswpin/pswpout); "
        "negative keeps the counters with the real idle vmstat",
    ),
    (
        "readonly-remount-io-errors",
        "kernel_log",
        "Remounting filesystem read-only",
        "edited from kernel_log/dmesg_T.txt; negative has normal ext4 mount/remount lines",
    ),
    (
        "disk-io-errors",
        "kernel_log",
        "I/O error, dev sdb, sector 1953525048",
        "edited from kernel_log/dmesg_T.txt; negative has the same errors on a loop device (snap)",
    ),
    (
        "mail-queue-stuck",
        "mail_log",
        "status=deferred",
        "edited: postqueue summary of 2187 requests + maillog.txt with deferrals; negative 3 requests",
    ),
    (
        "open-files-limit-reached",
        "fd_usage",
        "7 python3 32 32",
        "real: fd_usage/backend_fd_limit.txt (32 of 32); negative real fd_usage/web.txt",
    ),
    (
        "sshd-maxstartups-throttling",
        "auth_log",
        "beginning MaxStartups throttling",
        "edited from auth_log/auth_log.txt",
    ),
    (
        "daemon-segfaults",
        "kernel_log",
        "php-fpm8.2[23147]: segfault at 10",
        "edited from kernel_log/dmesg_T.txt; negative has a single segfault (two needed)",
    ),
    ("kernel-hung-tasks", "kernel_log", "blocked for more than 120 seconds", "edited from kernel_log/dmesg_T.txt"),
    ("kernel-soft-lockup", "kernel_log", "soft lockup - CPU#1 stuck for 23s!", "edited from kernel_log/dmesg_T.txt"),
    (
        "nic-errors",
        "interfaces",
        "rx_errors=14823",
        "edited from interfaces/web.txt (eth0 RX errors 14823 of 9120776 packets); negative is the real file; "
        "a facts citation: errors judged against the packets",
    ),
    (
        "nic-link-flapping",
        "kernel_log",
        "eno1: NIC Link is Down",
        "edited from kernel_log/dmesg_T.txt; negative has one down/up (three needed)",
    ),
    (
        "load-above-cpus",
        "load",
        "load5=10.4",
        "edited from load/web.txt (load 10.40 on 2 CPUs); negative is the real file (2.60); "
        "a facts citation: load has no line of its own",
    ),
    (
        "zombie-process-pile",
        "processes",
        "[sh] <defunct>",
        "edited from processes/web.txt (+25 zombies of pid 2187); negative 3 zombies",
    ),
    (
        "smtp-outbound-port25-blocked",
        "mail_log",
        ":25: Connection timed out",
        "edited from mail_log/maillog.txt; negative 2 timeouts, 4 deliveries sent",
    ),
    (
        "greylisting-deferral-storm",
        "mail_log",
        "Recipient address rejected: Greylist",
        "edited from mail_log/maillog.txt; negative 2 greylisted, 10 sent",
    ),
    (
        "mail-insufficient-storage",
        "mail_log",
        "452 4.3.1 Insufficient system storage",
        "edited from mail_log/maillog.txt",
    ),
    (
        "cron-jobs-failing",
        "system_log",
        "(CRON) error (grandchild #24501 failed",
        "edited from system_log/messages_irq.txt's healthy lines",
    ),
    (
        "syslog-rate-limited",
        "system_log",
        "begins to drop messages from pid 2210",
        "edited from system_log/messages_irq.txt's healthy lines",
    ),
    (
        "apache-max-request-workers",
        "log_tail",
        "server reached MaxRequestWorkers setting",
        "written in Apache 2.4's error_log format (log_tail prints the file as is)",
    ),
    (
        "nginx-worker-connections",
        "log_tail",
        "1024 worker_connections are not enough",
        "written in nginx's error.log format",
    ),
    (
        "php-fpm-max-children",
        "log_tail",
        "server reached pm.max_children setting (5)",
        "written in php-fpm's log format",
    ),
    (
        "mysql-too-many-connections",
        "log_tail",
        "(HY000/1040): Too many connections",
        "written in PHP's error_log format",
    ),
    (
        "sshd-usedns-slow-resolvers",
        "sshd_config",
        "usedns yes",
        "edited from sshd_config/sshd_T.txt (usedns no -> yes) + real resolvers/dead_first_nameserver.txt "
        "+ real ssh_session/slow_usedns_login.txt; negative is the real files with ssh_session/quick_login.txt",
    ),
    (
        "resolver-refusing",
        "resolvers",
        "CONNREFUSED via dig",
        "real: resolvers/refusing_and_dead.txt (nothing on :53, a REJECT rule, a DROP rule); negative real "
        "resolvers/refusing_then_answering.txt (the first refuses, the second answers)",
    ),
    ("neighbour-table-overflow", "kernel_log", "neighbor table overflow!", "edited from kernel_log/dmesg_T.txt"),
    (
        "tcp-out-of-memory",
        "kernel_log",
        "TCP: out of memory -- consider tuning tcp_mem",
        "edited from kernel_log/dmesg_T.txt",
    ),
    ("duplicate-ip-address", "kernel_log", "IPv6 duplicate address", "edited from kernel_log/dmesg_T.txt"),
    (
        "dovecot-max-userip-connections",
        "mail_log",
        "mail_max_userip_connections=10",
        "edited from mail_log/maillog.txt",
    ),
]

# The healthy lab host ("basics" and "fallbacks" scenarios' web host and the healthy sockets
# listing of the "rst" scenario), real captures all, without the outputs where that host was
# given a fault (/tmp noexec, the IRQ lines in its logs, the dead nameserver).
HEALTHY = {
    "disk": "disk/web.txt",
    "memory": "memory/web.txt",
    "load": "load/web.txt",
    "processes": "processes/web.txt",
    "fd_usage": "fd_usage/web.txt",
    "interfaces": "interfaces/web.txt",
    "listening": "listening/web.txt",
    "sshd_config": "sshd_config/sshd_T.txt",
    "kernel_log": "kernel_log/dmesg_T.txt",
    "auth_log": "auth_log/auth_log.txt",
    "mail_queue": "mail_queue/none_found.txt",
    "mail_log": "mail_log/journal_fallback.txt",
    "service_settings": "service_settings/varnish_not_running.txt",
    "strace": "strace/no_such_process.txt",
    "sockets": "sockets/after_off_by_one_rst.txt",
}


def outputs(key: str, kind: str) -> dict[str, str]:
    files = sorted((CATALOGUE / key).glob(f"{kind}.*.txt"))
    assert files, f"no {kind} evidence for {key}"
    return {f.name.split(".")[1]: f.read_text() for f in files}


def line_of(text: str, needle: str) -> int | None:
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    return None


def test_the_seed_file_loads_without_errors_and_has_the_whole_catalogue():
    document, errors = parse_kb(SEED.read_text())
    assert errors == []
    keys = {s["key"] for s in document["symptoms"]}
    assert keys >= WAR_STORY_SYMPTOMS | {case[0] for case in CASES}
    assert len(keys - WAR_STORY_SYMPTOMS) >= 30


def test_no_two_symptoms_or_recipes_share_a_key():
    raw = yaml.safe_load(SEED.read_text())
    for kind in ("symptoms", "recipes"):
        counts = Counter(item["key"] for item in raw[kind])
        assert [key for key, n in counts.items() if n > 1] == [], kind


def test_every_symptom_has_a_recipe_with_steps_snippets_and_references():
    raw = yaml.safe_load(SEED.read_text())
    fixed = {key for recipe in raw["recipes"] for key in recipe["fixes"]}
    assert {s["key"] for s in raw["symptoms"]} - fixed == set()
    for recipe in raw["recipes"]:
        assert recipe["steps"] and recipe["snippets"] and recipe["references"], recipe["key"]
        assert recipe["risk"] in ("low", "medium", "high") and recipe["needs"] in ("none", "restart", "reboot")


def test_every_catalogue_symptom_has_a_case_and_every_case_folder_a_symptom():
    raw = yaml.safe_load(SEED.read_text())
    new = {s["key"] for s in raw["symptoms"]} - WAR_STORY_SYMPTOMS
    assert new == {case[0] for case in CASES}
    assert {d.name for d in CATALOGUE.iterdir() if d.is_dir()} == new


@pytest.mark.parametrize(("key", "probe", "needle", "source"), CASES, ids=[case[0] for case in CASES])
def test_the_fault_matches_its_symptom_citing_the_line_that_shows_it(kb, make_run, key, probe, needle, source):
    evidence = outputs(key, "positive")
    run = make_run(evidence)
    by_key = {m.symptom.key: m for m in matcher.match_run(run=run)}
    match = by_key.get(key)
    assert match is not None and match.matched, f"{key} did not match ({source})"
    assert match.score >= match.symptom.threshold and match.confidence != "possible"
    expected_line = line_of(evidence[probe], needle)
    cited = [c for c in match.citations if c["probe"] == probe and needle in c["text"]]
    assert cited, f"{key}: no citation of {needle!r} in {match.citations}"
    if expected_line is None:  # a fact row with no line of its own (load, memory): cited as its fields
        assert all(c["line_start"] is None for c in cited)
    else:  # a regex may span lines (ip -s link's header and counters): the needle's line is inside
        assert any(c["line_start"] <= expected_line <= c["line_end"] for c in cited if c["line_start"])


@pytest.mark.parametrize(("key", "probe", "needle", "source"), CASES, ids=[case[0] for case in CASES])
def test_the_healthy_twin_does_not_match(kb, make_run, key, probe, needle, source):
    run = make_run(outputs(key, "negative"))
    matched = {m.symptom.key for m in matcher.match_run(run=run) if m.matched}
    assert key not in matched


def test_a_healthy_host_matches_nothing_in_the_whole_knowledge_base(kb, make_run):
    run = make_run({probe: (FIXTURES / path).read_text() for probe, path in HEALTHY.items()})
    matches = matcher.match_run(run=run)
    assert [(m.symptom.key, m.score) for m in matches if m.matched] == []
    threshold = {m.symptom.key: m.symptom.threshold for m in matches}
    assert [m.symptom.key for m in matches if m.score >= threshold[m.symptom.key] and m.matched] == []


# Symptoms that need two kinds of evidence: their healthy twin keeps one, so the admin sees a near-miss.
NEAR_MISSES = [
    "ephemeral-port-exhaustion",
    "mtu-black-hole",
    "swap-storm",
    "mail-queue-stuck",
    "sshd-usedns-slow-resolvers",
]


@pytest.mark.parametrize("key", NEAR_MISSES)
def test_half_the_evidence_is_a_near_miss_not_a_match(kb, make_run, key):
    by_key = {m.symptom.key: m for m in matcher.match_run(run=make_run(outputs(key, "negative")))}
    assert by_key[key].near_miss and not by_key[key].matched
    assert 0 < by_key[key].score < 1


def test_usedns_with_dead_resolvers_but_a_quick_login_is_no_slow_login(kb, make_run):
    # Proof of effect: the product's own login was quick, so UseDNS yes did not cost this host anything.
    evidence = {
        **outputs("sshd-usedns-slow-resolvers", "positive"),
        "ssh_session": (FIXTURES / "ssh_session/quick_login.txt").read_text(),
    }
    by_key = {m.symptom.key: m for m in matcher.match_run(run=make_run(evidence))}
    assert not by_key["sshd-usedns-slow-resolvers"].matched and by_key["sshd-usedns-slow-resolvers"].near_miss


PORTS = {"small": "sockets/small_port_range_exhausted.txt", "default": "sockets/default_port_range_busy.txt"}


def test_counts_are_judged_against_the_hosts_own_limits_not_absolute_numbers(kb, make_run):
    # Real captures (capture.py "ports"): a relay whose 100-port range ran out towards one peer, 60 TIME-WAIT
    # and a backlog-16 listener with 14 waiting; a host with the default range and a 4096 backlog, 80 sockets
    # to the same peer, 60 TIME-WAIT and 60 waiting (which the old absolute rule, 50 waiting, called a backlog).
    error = (FIXTURES / "system_log/eaddrnotavail.txt").read_text()
    small = {
        m.symptom.key
        for m in matcher.match_run(
            run=make_run({"sockets": (FIXTURES / PORTS["small"]).read_text(), "system_log": error})
        )
        if m.matched
    }
    assert {"ephemeral-port-exhaustion", "time-wait-storm", "accept-queue-backlog"} <= small
    busy = {
        m.symptom.key
        for m in matcher.match_run(
            run=make_run({"sockets": (FIXTURES / PORTS["default"]).read_text(), "system_log": error})
        )
        if m.matched
    }
    assert busy & {"ephemeral-port-exhaustion", "time-wait-storm", "accept-queue-backlog"} == set()


def test_dead_resolvers_on_a_host_without_dig_are_measured_through_the_system_resolver(kb, make_run):
    evidence = {"resolvers": (FIXTURES / "resolvers/no_lookup_tools_dead.txt").read_text()}
    by_key = {m.symptom.key: m for m in matcher.match_run(run=make_run(evidence))}
    assert by_key["dead-resolvers"].matched and "4013 ms" in by_key["dead-resolvers"].why
    assert "resolver-refusing" not in by_key  # not even a near miss: nothing refused


def test_interface_errors_are_judged_against_the_traffic_they_came_with(kb, make_run):
    # Edited from the positive case: the same 14823 errors after ten billion packets are no faulty NIC.
    busy = outputs("nic-errors", "positive")["interfaces"].replace("9120776  14823", "9120776000  14823")
    busy = busy.replace("eth0: 8841021904 9120776 14823", "eth0: 8841021904 9120776000 14823")
    rows = {r["name"]: r for r in facts_for("interfaces", busy.encode())["interfaces"]}
    assert rows["eth0"]["rx_errors"] == 14823 and rows["eth0"]["rx_error_ratio"] < 0.00001
    matched = {m.symptom.key for m in matcher.match_run(run=make_run({"interfaces": busy})) if m.matched}
    assert "nic-errors" not in matched
