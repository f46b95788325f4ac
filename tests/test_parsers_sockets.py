"""Socket tables from ss, netstat and /proc/net/tcp (real captures), and listening sockets."""

# ruff: noqa: S104 - "0.0.0.0" here is text in a socket listing, nothing binds to it

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from diagnostics.parsers import facts_for
from diagnostics.parsers.sockets import parse_sockets, proc_address, split_endpoint, state_name

FIXTURES = Path(__file__).parent / "fixtures"


def facts(probe: str, name: str) -> dict:
    return facts_for(probe, (FIXTURES / probe / name).read_bytes())


def test_varnish_leaves_24_client_sockets_in_close_wait_owned_by_cache_main():
    table = facts("sockets", "varnish_close_wait.txt")
    assert {"state": "CLOSE-WAIT", "count": 24} in table["socket_states"]
    close_wait = [s for s in table["sockets"] if s["state"] == "CLOSE-WAIT"]
    assert len(close_wait) == 24
    assert Counter((s["process"], s["pid"], s["local_port"]) for s in close_wait) == {("cache-main", 23, 80): 24}
    first = close_wait[0]
    assert (first["peer_address"], first["peer_port"], first["recv_q"], first["send_q"]) == (
        "10.213.197.11", 33350, 1, 0)  # fmt: skip
    assert first["timer"] == "keepalive,119min,0" and first["line_no"] == 6


def test_a_listener_with_two_owners_names_the_first():
    listener = facts("sockets", "varnish_close_wait.txt")["sockets"][0]
    assert (listener["state"], listener["process"], listener["pid"], listener["peer_port"]) == (
        "LISTEN", "cache-main", 23, None)  # fmt: skip


def test_tcpservers_ident_connects_show_as_syn_sent_to_port_113():
    table = facts("sockets", "ident_syn_sent_113.txt")
    syn_sent = [s for s in table["sockets"] if s["state"] == "SYN-SENT"]
    assert [(s["process"], s["peer_port"], s["send_q"]) for s in syn_sent] == [("tcpserver", 113, 1)] * 2
    assert syn_sent[0]["timer"] == "on,1.112ms,5"
    assert {"state": "SYN-SENT", "count": 2} in table["socket_states"]


def test_a_quiet_hung_upstream_shows_how_long_each_connection_has_moved_nothing():
    # genlab's upstream/quiet-8080-nofile64: 52 requests sent and acknowledged, no answer for 11 s.
    table = facts("sockets", "hung_upstream_quiet.txt")
    quiet = [s for s in table["sockets"] if s["state"] == "ESTAB"]
    assert len(quiet) == 52 and {(s["peer_address"], s["peer_port"], s["process"]) for s in quiet} == {
        ("10.213.7.12", 8080, "python3")}  # fmt: skip
    assert all(s["send_q"] == 0 and s["recv_q"] == 0 for s in quiet)
    assert min(min(s["last_send_ms"], s["last_recv_ms"]) for s in quiet) >= 10000
    listener = table["sockets"][0]
    assert (listener["state"], listener["process"], listener["last_send_ms"]) == ("LISTEN", "sshd", None)


def test_listings_without_ss_i_fields_leave_them_unknown():
    sockets = facts("sockets", "varnish_close_wait.txt")["sockets"]
    assert {(s["last_send_ms"], s["last_recv_ms"]) for s in sockets} == {(None, None)}


def test_after_the_off_by_one_rst_no_socket_of_the_connection_is_left():
    sockets = facts("sockets", "after_off_by_one_rst.txt")["sockets"]
    assert not [s for s in sockets if s["local_port"] == 8081 and s["state"] != "LISTEN"]


@pytest.mark.parametrize("name", ["netstat_fallback.txt", "proc_net_tcp_fallback.txt"])
def test_the_fallbacks_give_the_same_sockets_in_the_same_spelling(name):
    table = facts("sockets", name)
    assert table["socket_states"] == [{"state": "ESTAB", "count": 7}, {"state": "LISTEN", "count": 2}]
    held = sorted(s["peer_port"] for s in table["sockets"] if s["local_port"] == 8080 and s["state"] == "ESTAB")
    assert held == [49968, 49982, 49986]
    listener = next(s for s in table["sockets"] if s["local_port"] == 8080 and s["state"] == "LISTEN")
    assert listener["local_address"] == "0.0.0.0" and listener["peer_port"] is None


def test_netstat_names_the_program_and_its_timer():
    sockets = facts("sockets", "netstat_fallback.txt")["sockets"]
    ssh = next(s for s in sockets if s["local_port"] == 22 and s["state"] == "ESTAB")
    assert (ssh["process"], ssh["pid"], ssh["timer"]) == ("sshd", 10, "keepalive (7199.91/0/0)")


def test_proc_net_tcp_decodes_queues_and_timers():
    sockets = facts("sockets", "proc_net_tcp_fallback.txt")["sockets"]
    ssh = next(s for s in sockets if s["local_port"] == 22 and s["state"] == "ESTAB")
    assert (ssh["peer_address"], ssh["send_q"], ssh["recv_q"], ssh["timer"], ssh["process"]) == (
        "10.213.13.1", 0x50, 0, "on", None)  # fmt: skip


def test_without_summary_lines_the_states_are_counted():
    text = "==> ss -tanpo <==\nState Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n" + (
        "CLOSE-WAIT 1 0 10.0.0.1:80 10.0.0.2:5000\n" * 3)  # fmt: skip
    assert parse_sockets(text)["socket_states"] == [{"state": "CLOSE-WAIT", "count": 3}]


@pytest.mark.parametrize(("raw", "expected"), [
    ("ESTABLISHED", "ESTAB"), ("CLOSE_WAIT", "CLOSE-WAIT"), ("FIN_WAIT1", "FIN-WAIT-1"), ("UNCONN", "CLOSE"),
    ("NEW-SYN-RECV", "SYN-RECV"), ("time_wait", "TIME-WAIT"), ("LISTEN", "LISTEN"),
])  # fmt: skip
def test_states_are_spelled_as_ss_spells_them(raw, expected):
    assert state_name(raw) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1:25", ("10.0.0.1", 25)), ("[::ffff:10.0.0.1]:25", ("::ffff:10.0.0.1", 25)), ("*:22", ("*", 22)),
    ("0.0.0.0:*", ("0.0.0.0", None)), ("127.0.0.53%lo:53", ("127.0.0.53", 53)), (":::22", ("::", 22)),
    ("[fe80::1%eth0]:22", ("fe80::1%eth0", 22)),
    ("[fe80::9cc5:aeff:fec5:34ae]%eth0:123", ("fe80::9cc5:aeff:fec5:34ae%eth0", 123)),
    ("[::]%eth0:*", ("::", None)), ("0.0.0.0%virbr0:67", ("0.0.0.0", 67)), ("*%ens33:ipv6-icmp", ("*", None)),
    ("[2001:db8::1]:443", ("2001:db8::1", 443)),
])  # fmt: skip
def test_endpoints_in_every_spelling(text, expected):
    assert split_endpoint(text) == expected


def test_proc_addresses_of_both_families():
    assert proc_address("0100007F:0019") == ("127.0.0.1", 25)
    assert proc_address("0000000000000000FFFF00000100007F:0071") == ("::ffff:127.0.0.1", 113)
    assert proc_address("zz:0019") == (None, None)


def test_listening_sockets_from_ss_and_netstat():
    ss = facts("listening", "cache_host.txt")["listening"]
    assert [(r["proto"], r["local_address"], r["local_port"], r["process"]) for r in ss] == [
        ("tcp", "0.0.0.0", 80, "cache-main"), ("tcp", "10.213.197.10", 22, "sshd"),
        ("tcp", "127.0.0.1", 39095, "varnishd"), ("tcp", "0.0.0.0", 8080, "python3"), ("tcp", "::", 80, "cache-main"),
    ]  # fmt: skip
    netstat = facts("listening", "netstat_fallback.txt")["listening"]
    assert [(r["local_port"], r["process"], r["pid"]) for r in netstat] == [(8080, "python3", 6), (22, "sshd", 5)]
    assert facts("listening", "neither_installed.txt") == {}


def test_udp_listeners_without_a_state_column_in_netstat():
    text = (
        "Proto Recv-Q Send-Q Local Address Foreign Address State PID/Program name\n"
        "udp        0      0 0.0.0.0:68              0.0.0.0:*                           312/dhclient\n"
    )
    (row,) = facts_for("listening", text.encode())["listening"]
    assert (row["proto"], row["local_port"], row["process"], row["pid"]) == ("udp", 68, "dhclient", 312)


def test_the_older_ss_owner_format_keeps_process_pid_and_fd():
    """insights-core's recorded `ss -tupna` of a RHEL host with iproute2 before 3.15: users:(("sshd",1231,3))."""
    text = (FIXTURES / "listening" / "insights_ss_tupna_old_users.txt").read_text()
    rows = facts_for("listening", text.encode())["listening"]
    sshd = [
        (r["local_address"], r["local_port"], r["process"], r["pid"], r["fd"]) for r in rows if r["local_port"] == 22
    ]
    # (the listening probe runs ss -l; this listing has every state, so the established session is here too)
    assert sshd == [("*", 22, "sshd", 1231, 3), ("192.168.0.106", 22, "sshd", 11427, 3), ("::", 22, "sshd", 1231, 4)]
    assert [r["local_port"] for r in rows if r["process"] is None or r["pid"] is None or r["fd"] is None] == [739]
    sockets = parse_sockets("==> ss -tanpo <==\n" + text)["sockets"]
    estab = [
        (s["local_port"], s["peer_address"], s["process"], s["pid"], s["fd"]) for s in sockets if s["state"] == "ESTAB"
    ]
    assert estab == [(22, "192.168.0.101", "sshd", 11427, 3), (739, "192.168.0.105", None, None, None)]


def test_the_current_ss_owner_format_gives_the_fd_too():
    listener = facts("sockets", "varnish_close_wait.txt")["sockets"][0]
    assert (listener["process"], listener["pid"], listener["fd"]) == ("cache-main", 23, 3)


def test_a_scoped_link_local_listener_loses_its_brackets_and_keeps_its_zone():
    """jc's tests/fixtures/generic/ss-wide.out: ntpd bound to [fe80::9cc5:aeff:fec5:34ae]%eth0:123."""
    rows = facts_for("listening", (FIXTURES / "listening" / "jc_ss-wide.txt").read_bytes())["listening"]
    ntp = [r for r in rows if r["process"] == "ntpd" and r["local_address"].startswith("fe80")]
    assert [(r["local_address"], r["local_port"], r["pid"], r["fd"]) for r in ntp] == [
        ("fe80::9cc5:aeff:fec5:34ae%eth0", 123, 1367093, 24)
    ]
    assert not [r for r in rows if "[" in (r["local_address"] or "") or "]" in (r["local_address"] or "")]


def _jc_address(row: dict) -> str:
    """jc keeps ss's brackets and puts the %zone in "interface"; ours keeps the zone on link-local IPv6 only."""
    address = row["local_address"].removeprefix("[").removesuffix("]")
    link_local = address.lower().startswith("fe80:")
    return f"{address}%{row['interface']}" if link_local and row.get("interface") else address


@pytest.mark.parametrize("name", ["jc_ss-wide.txt", "jc_ss-sudo-tulpen.txt"])
def test_differential_listening_against_jc_on_jcs_own_ss_fixtures(name):
    import jc

    text = (FIXTURES / "listening" / name).read_text()
    theirs = [r for r in jc.parse("ss", text, quiet=True) if r["netid"] in ("tcp", "udp")]
    ours = facts_for("listening", text.encode())["listening"]
    assert len(ours) == len(theirs) > 20
    for row, record in zip(ours, theirs, strict=True):
        owners = record.get("opts", {}).get("process_id", {})
        pid, owner = next(iter(owners.items())) if owners else (None, {})
        assert (row["proto"], row["local_address"], row["local_port"], row["process"], row["pid"], row["fd"]) == (
            record["netid"],
            _jc_address(record),
            record.get("local_port_num"),
            owner.get("user"),
            int(pid) if pid else None,
            int(owner["file_descriptor"]) if owner else None,
        )


def test_socket_counts_are_judged_against_the_hosts_own_port_range():
    # capture.py "ports": a relay whose 100-port range ran out towards its smarthost.
    facts = facts_for("sockets", (FIXTURES / "sockets" / "small_port_range_exhausted.txt").read_bytes())
    (limits,) = facts["tcp_limits"]
    assert (limits["port_range_low"], limits["port_range_high"], limits["ephemeral_ports"]) == (40000, 40099, 100)
    assert (limits["limits_source"], limits["somaxconn"], limits["max_tw_buckets"]) == ("host", 4096, 131072)
    assert (limits["time_wait"], limits["time_wait_ratio"]) == (60, 0.6)
    assert limits["busiest_peer"] == "10.213.98.10:9100" and limits["busiest_peer_sockets"] == 100
    assert limits["busiest_peer_ratio"] == 1.0
    (queue,) = [s for s in facts["sockets"] if s["state"] == "LISTEN" and s["local_port"] == 7000]
    assert (queue["recv_q"], queue["send_q"], queue["backlog_ratio"]) == (14, 16, 0.875)


def test_the_same_load_is_far_from_the_limits_of_a_host_with_the_default_range():
    facts = facts_for("sockets", (FIXTURES / "sockets" / "default_port_range_busy.txt").read_bytes())
    (limits,) = facts["tcp_limits"]
    assert limits["ephemeral_ports"] == 28232 and limits["busiest_peer_sockets"] == 80
    assert limits["busiest_peer_ratio"] < 0.01 and limits["time_wait_ratio"] < 0.01
    (queue,) = [s for s in facts["sockets"] if s["state"] == "LISTEN" and s["local_port"] == 7000]
    assert queue["recv_q"] == 60 and queue["backlog_ratio"] < 0.02


def test_without_the_limits_section_the_kernel_defaults_are_assumed_and_said():
    (limits,) = facts_for("sockets", (FIXTURES / "sockets" / "after_off_by_one_rst.txt").read_bytes())["tcp_limits"]
    assert (limits["limits_source"], limits["ephemeral_ports"], limits["somaxconn"]) == ("default", 28232, None)
    assert [s["backlog_ratio"] for s in facts_for("sockets", b"state ESTAB 1\n")["sockets"]] == []
