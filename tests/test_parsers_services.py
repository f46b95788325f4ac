"""Service settings (tcpserver, varnish, sendmail...), resolver timings and mail queues."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.parsers import facts_for
from diagnostics.parsers.service_settings import seconds, tcpserver_options

FIXTURES = Path(__file__).parent / "fixtures"


def facts(probe: str, name: str) -> dict:
    return facts_for(probe, (FIXTURES / probe / name).read_bytes())


def params(name: str) -> list[dict]:
    return facts("service_settings", name)["service_params"]


def by_file(rows: list[dict], file: str) -> dict[str, str]:
    return {r["name"]: r["value"] for r in rows if r["file"] == file}


def test_varnish_send_timeout_is_600_seconds_by_default():
    rows = {r["name"]: r for r in params("varnish_param_show.txt")}
    assert len(rows) == 109 and {r["service"] for r in rows.values()} == {"varnish"}
    send = rows["send_timeout"]
    assert (send["value"], send["number"], send["unit"], send["default"], send["line_no"]) == (
        "600.000", 600.0, "seconds", True, 73)  # fmt: skip
    assert rows["first_byte_timeout"]["number"] == 120.0 and rows["first_byte_timeout"]["default"] is False
    assert rows["cli_limit"]["number"] == 48 * 1024 and rows["fetch_maxchunksize"]["number"] == 0.25 * 2**30
    assert rows["auto_restart"]["value"] == "on" and rows["auto_restart"]["number"] is None
    assert rows["accept_filter"]["value"] == "-" and rows["accept_filter"]["unit"] is None


def test_varnishadm_without_varnishd_gives_no_params():
    assert params("varnish_not_running.txt") == []


def test_tcpserver_without_R_does_ident_lookups_for_26_seconds():
    smtpd = by_file(params("tcpserver_sendmail.txt"), "/etc/sv/qmail-smtpd/run")
    assert smtpd == {"-v": "", "-c": "40", "-x": "/etc/tcp.smtp.cdb", "ident_lookups": "on", "ident_timeout": "26"}


def test_tcpserver_with_Rt0_does_not():
    submission = by_file(params("tcpserver_sendmail.txt"), "/etc/sv/qmail-submission/run")
    assert submission["ident_lookups"] == "off" and submission["-R"] == "" and submission["-t"] == "0"
    assert submission["-l"] == "0" and submission["-H"] == ""


def test_sendmail_timeouts_in_seconds():
    rows = {r["name"]: r for r in params("tcpserver_sendmail.txt") if r["service"] == "sendmail"}
    assert rows["confTO_IDENT"]["number"] == 0.0 and rows["confTO_HELO"]["number"] == 60.0
    assert rows["confTO_QUEUEWARN"]["number"] == 4 * 3600 and rows["confTO_MAIL"]["unit"] == "seconds"


def test_plesk_xinetd_exim_postfix_and_qmail_control_files():
    rows = params("plesk_exim_postfix.synthetic.txt")
    assert by_file(rows, "/etc/xinetd.d/smtp_psa")["ident_lookups"] == "off"
    assert by_file(rows, "/etc/xinetd.d/submission_psa")["ident_lookups"] == "on"
    exim = {r["name"]: r for r in rows if r["service"] == "exim"}
    assert exim["rfc1413_query_timeout"]["number"] == 5.0 and exim["rfc1413_hosts"]["value"] == "*"
    postfix = {r["name"]: r for r in rows if r["service"] == "postfix"}
    assert postfix["smtpd_timeout"]["number"] == 300.0 and postfix["smtpd_timeout"]["unit"] == "seconds"
    assert postfix["myhostname"]["number"] is None
    qmail = {r["name"]: r["number"] for r in rows if r["service"] == "qmail"}
    assert qmail == {"timeoutsmtpd": 1200.0, "timeoutremote": 1200.0}


@pytest.mark.parametrize(("args", "expected"), [
    ("-vRHl0 -t0 0 25 qmail-smtpd", [("-v", ""), ("-R", ""), ("-H", ""), ("-l", "0"), ("-t", "0")]),
    ("-R -r -t 5 0 smtp prog", [("-R", ""), ("-r", ""), ("-t", "5")]),
    ("-c40 -- 0 25", [("-c", "40")]),
    ("-Z 0 25", []),
])  # fmt: skip
def test_tcpserver_options_are_read_as_getopt_reads_them(args, expected):
    assert tcpserver_options(args.split()) == expected


def test_the_last_of_r_and_R_wins():
    text = b"==> /service/smtpd/run <==\nexec tcpserver -R -r 0 25 qmail-smtpd\n"
    rows = facts_for("service_settings", text)["service_params"]
    assert next(r for r in rows if r["name"] == "ident_lookups")["value"] == "on"


@pytest.mark.parametrize(("text", "expected"), [
    ("60s", 60.0), ("2m", 120.0), ("1h30m", 5400.0), ("600", 600.0), ("0s", 0.0), ("1w", 604800.0), ("5x", None),
    ("", None),
])  # fmt: skip
def test_durations(text, expected):
    assert seconds(text) == expected


def test_the_dead_first_nameserver_times_out_and_the_system_resolver_waits_for_it():
    table = facts("resolvers", "dead_first_nameserver.txt")
    dead, alive, system = table["resolvers"]
    assert (dead["nameserver"], dead["status"], dead["name"]) == ("10.213.20.10", "TIMEOUT", "mail.lab.test")
    assert dead["ms"] >= 2000 and dead["line_no"] == 9
    assert (alive["status"], alive["ms"]) == ("NOERROR", 25.0)
    assert (system["nameserver"], system["status"], system["ms"]) == ("system", "NOERROR", 6017.0)
    assert system["answer"] == "192.0.2.10      mail.lab.test"
    conf = [(r["key"], r["value"]) for r in table["resolv_conf"]]
    assert conf == [("search", "lab.test"), ("nameserver", "10.213.20.10"), ("nameserver", "10.213.20.11"),
                    ("options", "timeout:2"), ("options", "attempts:1")]  # fmt: skip
    assert table["nsswitch"][0]["database"] == "hosts" and table["nsswitch"][0]["sources"].endswith("dns")


def test_a_reverse_lookup_and_an_unreachable_nameserver():
    reverse = facts("resolvers", "reverse_lookup.txt")["resolvers"]
    assert [(r["status"], r["name"]) for r in reverse] == [("TIMEOUT", "192.0.2.25"), ("NXDOMAIN", "192.0.2.25"),
                                                           ("NXDOMAIN", "192.0.2.25")]  # fmt: skip
    unreachable = facts("resolvers", "host_tool_unreachable_nameserver.txt")["resolvers"]
    assert [r["status"] for r in unreachable] == ["ERROR", "NXDOMAIN"]


def test_untested_and_skipped_nameservers_have_no_time():
    text = b"==> lookups of web <==\nnameserver 10.0.0.1 - ms UNTESTED (no dig, host or nslookup)\n"
    (row,) = facts_for("resolvers", text)["resolvers"]
    assert row["status"] == "UNTESTED" and row["ms"] is None


def test_an_inline_comment_in_resolv_conf_is_not_part_of_the_value():
    text = (
        b"==> /etc/resolv.conf <==\n# generated\nnameserver 10.0.0.1 # old\nnameserver 10.0.0.2;backup\n"
        b"search corp.example example.com # two domains\ndomain corp.example ; ours\n"
        b"options timeout:2 # short\n"
    )
    conf = [(r["key"], r["value"]) for r in facts_for("resolvers", text)["resolv_conf"]]
    assert conf == [("nameserver", "10.0.0.1"), ("nameserver", "10.0.0.2"), ("search", "corp.example example.com"),
                    ("domain", "corp.example"), ("options", "timeout:2")]  # fmt: skip


def test_each_lookup_says_how_it_ended_and_which_tool_timed_it():
    rows = facts("resolvers", "refusing_and_dead.txt")["resolvers"]
    got = [(r["status"], r["outcome"], r["tool"]) for r in rows]
    assert got == [("CONNREFUSED", "refused", "dig"), ("CONNREFUSED", "refused", "dig"),
                   ("TIMEOUT", "timeout", "dig"), ("NXDOMAIN", "timeout", "getent")]  # fmt: skip
    refused, rejected, dead, system = rows
    assert refused["ms"] < 1000 and rejected["ms"] < 1000 and dead["ms"] >= 2000 and system["ms"] >= 2000
    assert not any(r["answered"] for r in (refused, rejected, dead))
    assert all(r["none_answered"] for r in rows)
    healthy = facts("resolvers", "refusing_then_answering.txt")["resolvers"]
    assert [(r["outcome"], r["answered"]) for r in healthy] == [("refused", False), ("ok", True), ("ok", True)]
    assert not any(r["none_answered"] for r in healthy)
    conf = [(r["key"], r["value"]) for r in facts("resolvers", "refusing_and_dead.txt")["resolv_conf"]]
    assert ("nameserver", refused["nameserver"]) in conf


def test_without_lookup_tools_a_slow_not_found_from_the_system_resolver_is_its_timeouts():
    # capture.py "refusing": dig, host and nslookup hidden; getent waited out the dead nameserver.
    untested, system = facts("resolvers", "no_lookup_tools_dead.txt")["resolvers"]
    assert (untested["status"], untested["outcome"], untested["tool"]) == ("UNTESTED", "untested", None)
    assert (system["nameserver"], system["status"], system["tool"], system["ms"]) == ("system", "NXDOMAIN", "getent",
                                                                                      4013.0)  # fmt: skip
    assert system["outcome"] == "timeout" and not system["answered"]
    quick = facts_for("resolvers", b"==> lookups of x <==\nresolver system 12 ms NXDOMAIN via getent\n")
    assert quick["resolvers"][0]["outcome"] == "nxdomain"


def test_a_fast_timeout_from_the_old_probe_is_read_as_the_refusal_it_was():
    # Before the probe told them apart it called dig's fast exit 9 (port unreachable) TIMEOUT.
    text = b"==> lookups of web <==\nnameserver 10.0.0.9 31 ms TIMEOUT\nnameserver 10.0.0.8 2004 ms TIMEOUT\n"
    rows = facts_for("resolvers", text)["resolvers"]
    assert [(r["outcome"], r["tool"]) for r in rows] == [("refused", None), ("timeout", None)]


def test_mail_queues_of_every_tool():
    rows = {r["tool"]: r for r in facts("mail_queue", "all_tools.synthetic.txt")["mail_queue"]}
    assert (rows["postqueue"]["messages"], rows["postqueue"]["size_kb"]) == (3, 12)
    assert rows["exim4"]["messages"] == 1842
    assert (rows["qmail-qstat"]["messages"], rows["qmail-qstat"]["unprocessed"]) == (27, 4)
    assert rows["mailq"]["messages"] == 2
    (empty,) = facts("mail_queue", "postfix_empty.synthetic.txt")["mail_queue"]
    assert empty["messages"] == 0
    assert facts("mail_queue", "none_found.txt") == {}


def test_tcpserver_options_are_read_from_the_running_processes_command_lines():
    # capture.py "owners": two tcpservers started by hand, no run script names them.
    rows = [r for r in params("socket_owners_tcpserver.txt") if r["name"] in ("ident_lookups", "ident_timeout")]
    by_file = {}
    for row in rows:
        by_file.setdefault(row["file"], {})[row["name"]] = row["value"]
    assert by_file == {"process 6 tcpserver": {"ident_lookups": "off", "ident_timeout": "0"},
                       "process 7 tcpserver": {"ident_lookups": "on", "ident_timeout": "26"}}  # fmt: skip


def test_sshd_settings_of_the_running_daemons_own_file():
    rows = facts("sshd_config", "sshd_T_running_f.txt")
    assert {r["file"] for r in rows["sshd_settings"]} == {"sshd -T -f /run/trlab/trl00o0g00/owners/sshd_config"}
    assert {r["name"]: r["value"] for r in rows["sshd_settings"]}["listenaddress"] == "10.213.144.10:22"
