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
    ("[fe80::1%eth0]:22", ("fe80::1", 22)),
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
    text = "Proto Recv-Q Send-Q Local Address Foreign Address State PID/Program name\n" \
           "udp        0      0 0.0.0.0:68              0.0.0.0:*                           312/dhclient\n"
    (row,) = facts_for("listening", text.encode())["listening"]
    assert (row["proto"], row["local_port"], row["process"], row["pid"]) == ("udp", 68, "dhclient", 312)


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
