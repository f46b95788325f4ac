"""pcap flows from real captures: unanswered SYNs to 113 (seed 1) and the ASA's off-by-one RST (seed 3)."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest

from diagnostics.parsers import facts_for
from diagnostics.parsers.pcap import parse_pcap

FIXTURES = Path(__file__).parent / "fixtures" / "tcpdump"


def capture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(("name", "linktype"), [("ident_113_any_sll2.pcap", 276), ("ident_113_eth0.pcap", 1)])
def test_syns_to_113_are_retransmitted_and_never_answered(name, linktype):
    facts = facts_for("tcpdump", capture(name))
    ident = [f for f in facts["flows"] if f["server_port"] == 113]
    assert len(ident) == 2
    for flow in ident:
        assert (flow["client"], flow["server"]) == ("10.213.33.10", "10.213.33.11")
        assert flow["syns"] == 9 and flow["retransmitted_syns"] == 8 and flow["synacks"] == 0
        assert not flow["handshake_completed"] and flow["resets"] == 0
        assert 19 < flow["duration"] < 20
    (summary,) = facts["packets_summary"]
    assert summary["linktype"] == linktype and not summary["truncated"] and summary["tcp"] == summary["total"]


def test_the_smtp_sessions_complete_their_handshake_but_wait_26_seconds_for_the_greeting():
    smtp = [f for f in facts_for("tcpdump", capture("ident_113_any_sll2.pcap"))["flows"] if f["server_port"] == 25]
    assert len(smtp) == 2
    assert all(f["handshake_completed"] and f["client"] == "10.213.33.11" and f["fins"] == 2 for f in smtp)
    assert all(26 < f["duration"] < 26.2 for f in smtp)


def test_the_asa_rst_one_below_the_expected_sequence_is_out_of_window():
    (flow,) = facts_for("tcpdump", capture("asa_off_by_one_rst.pcap"))["flows"]
    assert (flow["client"], flow["server_port"], flow["handshake_completed"]) == ("10.213.204.11", 8081, True)
    assert flow["fins"] == 1 and flow["resets"] == 1
    assert flow["rst_out_of_window"] and flow["rst_offset"] == -1


def test_a_capture_cut_mid_record_keeps_the_whole_records_and_says_truncated():
    data = capture("ident_113_eth0.pcap")
    (summary,) = parse_pcap(data[:-7])["packets_summary"]
    assert summary["truncated"] and summary["total"] == 17
    (header_only,) = parse_pcap(data[:30])["packets_summary"]
    assert header_only["truncated"] and header_only["total"] == 0


def test_after_the_runners_cut_the_tail_records_are_found_again():
    data = capture("asa_off_by_one_rst.pcap")
    cut = data[:300] + b"\n[... 123456 bytes not kept ...]\n" + data[-200:]
    facts = parse_pcap(cut)
    (summary,) = facts["packets_summary"]
    assert summary["truncated"] and summary["last_ts"] == parse_pcap(data)["packets_summary"][0]["last_ts"]
    (flow,) = facts["flows"]
    assert flow["resets"] == 1 and flow["rst_out_of_window"]


def test_not_a_pcap_gives_no_facts():
    assert facts_for("tcpdump", b"probe: tcpdump not installed\n") == {}
    assert facts_for("tcpdump", b"\x00" * 100) == {}


def _pcap(linktype: int, packets: list[bytes], *, big_endian: bool = False, nano: bool = False) -> bytes:
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for index, packet in enumerate(packets):
        out += struct.pack(order + "IIII", 1_700_000_000 + index, 500 if not nano else 500_000, len(packet),
                           len(packet)) + packet  # fmt: skip
    return out


def _tcp(
    src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int = 0, data: bytes = b""
) -> dpkt.ip.IP:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, data=data)
    ip = dpkt.ip.IP(src=bytes(map(int, src.split("."))), dst=bytes(map(int, dst.split("."))), p=6, data=tcp)
    ip.len = len(ip)
    return ip


SYN, ACK, RST, FIN = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_RST, dpkt.tcp.TH_FIN
C, S = "192.0.2.1", "192.0.2.2"
# A handshake, 5 bytes from the client, the server's ACK: the server next expects 1006.
HANDSHAKE = [
    _tcp(C, S, 40000, 80, SYN, 1000), _tcp(S, C, 80, 40000, SYN | ACK, 5000, 1001),
    _tcp(C, S, 40000, 80, ACK, 1001, 5001), _tcp(C, S, 40000, 80, ACK, 1001, 5001, b"hello"),
    _tcp(S, C, 80, 40000, ACK, 5001, 1006),
]  # fmt: skip


@pytest.mark.parametrize(("rst", "out_of_window", "offset"), [
    (_tcp(C, S, 40000, 80, RST, 1006), False, None),
    (_tcp(C, S, 40000, 80, RST | ACK, 1005, 5001), True, -1),
    (_tcp(C, S, 40000, 80, RST, 1106), True, 100),
])  # fmt: skip
def test_a_rst_is_in_window_only_at_exactly_the_next_expected_sequence(rst, out_of_window, offset):
    (flow,) = parse_pcap(_pcap(101, [bytes(p) for p in [*HANDSHAKE, rst]]))["flows"]
    assert flow["handshake_completed"] and flow["resets"] == 1
    assert (flow["rst_out_of_window"], flow["rst_offset"]) == (out_of_window, offset)


def test_a_rst_refusing_a_syn_is_not_out_of_window():
    packets = [_tcp(C, S, 40001, 113, SYN, 7), _tcp(S, C, 113, 40001, RST | ACK, 0, 8)]
    (flow,) = parse_pcap(_pcap(101, [bytes(p) for p in packets]))["flows"]
    assert flow["resets"] == 1 and not flow["rst_out_of_window"] and flow["client_port"] == 40001


@pytest.mark.parametrize(("big_endian", "nano"), [(False, False), (True, False), (False, True), (True, True)])
def test_both_byte_orders_and_nanosecond_captures(big_endian, nano):
    data = _pcap(101, [bytes(HANDSHAKE[0])], big_endian=big_endian, nano=nano)
    (summary,) = parse_pcap(data)["packets_summary"]
    assert summary["tcp"] == 1 and summary["first_ts"] == pytest.approx(1_700_000_000.0005)


def test_a_flow_seen_without_its_syn_takes_the_higher_port_as_the_client():
    (flow,) = parse_pcap(_pcap(101, [bytes(HANDSHAKE[4]), bytes(HANDSHAKE[3])]))["flows"]
    assert (flow["client_port"], flow["server_port"], flow["syns"]) == (40000, 80, 0)


def test_udp_and_non_ip_frames_are_counted_not_flowed():
    udp = dpkt.ip.IP(src=b"\x01\x02\x03\x04", dst=b"\x05\x06\x07\x08", p=17, data=dpkt.udp.UDP(sport=1, dport=53))
    (summary,) = parse_pcap(_pcap(101, [bytes(udp), b"\x00\x01garbage"]))["packets_summary"]
    assert (summary["udp"], summary["other"], summary["tcp"]) == (1, 1, 0)


def test_a_bridged_hosts_any_capture_counts_each_packet_once_so_a_refused_ident_is_no_retransmit():
    """A container's connect to a closed port 113, refused at once, seen by `-i any` on its veth and on the
    bridge (same bytes), and NATed on eth0 (another 4-tuple): one SYN and one RST per connection."""
    facts = facts_for("tcpdump", capture("bridged_refused_113_any.pcap"))
    ident = sorted((f for f in facts["flows"] if f["server_port"] == 113), key=lambda f: (f["client"], f["first_ts"]))
    assert [f["client"] for f in ident] == ["10.213.223.10"] * 2 + ["172.17.0.2"] * 2
    for flow in ident:
        assert flow["server"] == "10.213.223.11" and flow["packets"] == 2
        assert (flow["syns"], flow["retransmitted_syns"], flow["synacks"], flow["resets"]) == (1, 0, 0, 1)
    (summary,) = facts["packets_summary"]
    assert (summary["linktype"], summary["total"], summary["duplicates"], summary["tcp"]) == (276, 12, 4, 8)


def test_the_ident_signatures_flow_condition_does_not_hold_on_the_bridged_refusal():
    flows = facts_for("tcpdump", capture("bridged_refused_113_any.pcap"))["flows"]
    assert not [f for f in flows if f["server_port"] == 113 and f["synacks"] == 0 and f["syns"] >= 2]


def test_linux_cooked_v1_captures_from_tcpdumps_own_tests_parse():
    """tcpdump's tests/tcp-handshake-nano.pcap (SLL v1, nanosecond stamps) and resp_2_inline.pcap (SLL v1,
    a redis session on loopback, where every packet is seen once and must stay counted once)."""
    facts = facts_for("tcpdump", capture("tcpdump_tests_tcp-handshake-nano.pcap"))
    (flow,) = facts["flows"]
    assert (flow["client"], flow["client_port"], flow["server"], flow["server_port"]) == (
        "131.155.215.69", 46656, "137.116.81.94", 80)  # fmt: skip
    assert flow["handshake_completed"] and (flow["syns"], flow["synacks"], flow["packets"]) == (1, 1, 3)
    assert flow["first_ts"] == pytest.approx(1418145369.924505, abs=1e-6)
    assert facts["packets_summary"][0]["linktype"] == 113 and facts["packets_summary"][0]["duplicates"] == 0
    redis = facts_for("tcpdump", capture("tcpdump_tests_resp_2_inline.pcap"))
    (summary,) = redis["packets_summary"]
    assert summary["duplicates"] == 0 and summary["tcp"] == summary["total"]
    (session,) = redis["flows"]
    assert session["server_port"] == 6379 and session["handshake_completed"] and session["packets"] == summary["total"]
