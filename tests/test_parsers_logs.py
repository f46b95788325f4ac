"""Log lines from the log probes (real outputs) and the formats a support desk meets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from diagnostics.parsers import facts_for
from diagnostics.parsers.logs import MONTHS, parse_line, parse_log_lines

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = dt.datetime(2026, 11, 22, 0, 45, tzinfo=dt.UTC)


def lines(probe: str, name: str, **kwargs) -> list[dict]:
    return facts_for(probe, (FIXTURES / probe / name).read_bytes(), **kwargs)["log_lines"]


def test_the_irq_line_in_var_log_messages():
    rows = lines("system_log", "messages_irq.txt", recorded_at=RECORDED)
    irq = next(r for r in rows if "No irq handler" in r["message"])
    assert irq == {
        "file": "/var/log/messages", "line_no": 4, "timestamp": "2026-11-08T16:49:42", "uptime": 3018172.820223,
        "host": "mail", "program": "kernel", "pid": None, "message": "do_IRQ: 1.221 No irq handler for vector (irq -1)",
    }  # fmt: skip


def test_without_a_recording_date_a_classic_syslog_stamp_has_no_year():
    rows = lines("system_log", "messages_irq.txt")
    assert rows[2]["timestamp"] == "--11-08T16:49:42"
    assert [r["line_no"] for r in rows] == list(range(2, 11))


def test_a_december_line_read_in_january_is_last_years():
    row = parse_line("Dec 31 23:59:59 web cron[1]: x", 1, None, dt.datetime(2027, 1, 1, 0, 5))
    assert row["timestamp"] == "2026-12-31T23:59:59"


def test_programs_and_pids_of_the_mail_and_auth_logs():
    mail = lines("mail_log", "maillog.txt")
    assert {(r["program"], r["host"]) for r in mail} == {("sendmail", "mail")}
    greeting = [r for r in mail if "during client greeting" in r["message"]]
    assert [(r["pid"], r["line_no"]) for r in greeting] == [(24480, 4), (24530, 6)]
    auth = lines("auth_log", "auth_log.txt")
    assert auth[0]["program"] == "sshd" and auth[0]["pid"] == 812 and "reverse mapping" in auth[0]["message"]


def test_dmesg_with_wall_clock_times():
    rows = lines("kernel_log", "dmesg_T.txt")
    assert len(rows) == 25 and all(r["program"] == "kernel" and r["file"] is None for r in rows)
    assert all(r["timestamp"].startswith("2026-11-22T00:") for r in rows)


def test_log_tail_has_no_header_and_a_missing_file_has_no_facts():
    rows = lines("log_tail", "messages.txt")
    assert rows[0]["file"] is None and rows[0]["line_no"] == 1 and rows[0]["message"].startswith("bnx2: eth0")
    assert facts_for("log_tail", (FIXTURES / "log_tail" / "missing_file.txt").read_bytes()) == {}


def test_journalctls_own_lines_are_not_log_lines():
    assert lines("mail_log", "journal_fallback.txt") == []


FORMATS = [
    # line, timestamp, uptime, host, program, pid, message
    ("[3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)", None, 3018172.820223, None, "kernel", None,
     "do_IRQ: 1.221 No irq handler for vector (irq -1)"),
    ("[Sat Nov 21 23:51:32 2026] bnx2: eth0 NIC Copper Link is Down", "2026-11-21T23:51:32", None, None, "kernel",
     None, "bnx2: eth0 NIC Copper Link is Down"),
    ("2026-11-21T23:51:32.123456+00:00 web sshd[12]: Connection closed", "2026-11-21T23:51:32.123456+00:00", None,
     "web", "sshd", 12, "Connection closed"),
    ("2026-11-21T23:51:32+01:00 web kernel: [12.5] eth0: link up", "2026-11-21T23:51:32+01:00", 12.5, "web", "kernel",
     None, "eth0: link up"),
    ("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed", "--10-11T22:14:15", None, "mymachine", "su", 230,
     "'su root' failed"),
    ("Nov 21 23:51:32 web last message repeated 3 times", "--11-21T23:51:32", None, "web", None, None,
     "last message repeated 3 times"),
    ("Nov 21 23:51:32 mx postfix/smtpd[4711]: connect from unknown[192.0.2.1]", "--11-21T23:51:32", None, "mx",
     "postfix/smtpd", 4711, "connect from unknown[192.0.2.1]"),
    ("2026/11/21 23:51:32 [error] 123#0: *1 upstream timed out", "2026-11-21T23:51:32", None, None, "nginx", 123,
     "[error] *1 upstream timed out"),
    ("[Sat Nov 21 23:51:32.123456 2026] [core:error] [pid 123:tid 456] AH00124: x", "2026-11-21T23:51:32.123456",
     None, None, None, 123, "[core:error] [pid 123:tid 456] AH00124: x"),
    ("Sat Nov 21 23:51:32 2026 -> ClamAV update process started", "2026-11-21T23:51:32", None, None, None, None,
     "ClamAV update process started"),
    ("@400000006920fb3c1d2b3c4d tcpserver: status: 1/40", "2025-11-21T23:52:18.489372Z", None, None, "tcpserver",
     None, "status: 1/40"),
    ('192.0.2.1 - - [21/Nov/2026:23:51:32 +0100] "GET / HTTP/1.1" 503 0', "2026-11-21T23:51:32+01:00", None, None,
     None, None, '192.0.2.1 - - [21/Nov/2026:23:51:32 +0100] "GET / HTTP/1.1" 503 0'),
    ("a line in no format at all", None, None, None, None, None, "a line in no format at all"),
    ("Foo 99 99:99:99 x y: z", None, None, None, None, None, "Foo 99 99:99:99 x y: z"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "timestamp", "uptime", "host", "program", "pid", "message"), FORMATS)
def test_log_formats(line, timestamp, uptime, host, program, pid, message):
    row = parse_line(line, 7, None)
    assert (row["timestamp"], row["uptime"], row["host"], row["program"], row["pid"], row["message"]) == (
        timestamp, uptime, host, program, pid, message)  # fmt: skip
    assert row["line_no"] == 7


def test_exim_lines_are_exims_under_an_exim_header():
    text = "==> /var/log/exim4/mainlog <==\n2026-11-21 23:51:32 [4242] 1vAbCd-000123-Xy <= a@b.example\n"
    (row,) = parse_log_lines(text)
    assert (row["program"], row["pid"], row["timestamp"], row["line_no"]) == ("exim", 4242, "2026-11-21T23:51:32", 2)


def test_the_runners_cut_marker_is_not_a_log_line():
    text = "Nov  8 16:49:42 a b: one\n[... 999 bytes not kept ...]\nne cut short\nNov  8 16:49:43 a b: two\n"
    rows = parse_log_lines(text)
    assert [r["line_no"] for r in rows] == [1, 3, 4] and rows[1]["timestamp"] is None


# (line's date, recorded_at UTC, year it must get). A host ahead of UTC writes "Jan  1" while our clock
# still says Dec 31; one behind writes "Nov 30" while ours says Dec 1 (the slack is one day either way).
YEARS = [
    ("Jan  1 05:59:00", dt.datetime(2026, 12, 31, 20, 0, tzinfo=dt.UTC), 2027),
    ("Dec  1 09:00:00", dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC), 2026),
    ("Jan  2 09:00:00", dt.datetime(2026, 12, 30, 9, 0, tzinfo=dt.UTC), 2026),
    ("Dec 31 23:59:59", dt.datetime(2027, 1, 1, 0, 5, tzinfo=dt.UTC), 2026),
    ("Nov 23 10:00:00", dt.datetime(2026, 11, 22, 0, 45, tzinfo=dt.UTC), 2026),
    ("Nov 24 10:00:00", dt.datetime(2026, 11, 22, 0, 45, tzinfo=dt.UTC), 2025),
    ("Feb 29 10:00:00", dt.datetime(2025, 3, 1, 0, 0, tzinfo=dt.UTC), 2024),
]


@pytest.mark.parametrize(("stamp", "recorded_at", "year"), YEARS)
def test_a_year_less_syslog_line_gets_the_latest_year_not_after_the_recording(stamp, recorded_at, year):
    text = f"{stamp} web cron[1]: x\n"
    month, day, time = stamp.split()
    expected = f"{year}-{MONTHS[month]:02d}-{int(day):02d}T{time}"
    assert parse_line(text.rstrip(), 1, None, recorded_at)["timestamp"] == expected
    assert parse_log_lines(text, recorded_at=recorded_at)[0]["timestamp"] == expected


def test_busybox_syslogd_lines_get_host_program_and_pid_past_the_facility_level():
    """Real BusyBox v1.35 syslogd output (capture.py busybox): "host facility.level tag[pid]: msg", and with
    -S no host and no facility.level."""
    rows = lines("system_log", "busybox_syslogd.txt", recorded_at=dt.datetime(2026, 12, 3, 0, 1, tzinfo=dt.UTC))
    full = [(r["host"], r["program"], r["pid"], r["message"]) for r in rows if r["file"] == "/var/log/messages"]
    assert full[1:6] == [
        ("router", "dnsmasq", None, "started, version 2.90 cachesize 150"),
        ("router", "dropbear", None, "Child connection from 192.0.2.25:40110"),
        ("router", "dropbear", 16, "Password auth succeeded for 'root' from 192.0.2.25:40110"),
        ("router", "crond", None, "USER root pid 411 cmd /usr/sbin/ntpd -q -n -p pool.ntp.org"),
        ("router", "root", None, "backup finished"),
    ]
    assert full[0] == ("router", None, None, "syslogd started: BusyBox v1.35.0")
    small = [(r["host"], r["program"], r["pid"], r["message"]) for r in rows if r["file"] == "/var/log/syslog"]
    assert small[1:3] == [
        (None, "udhcpc", None, "lease of 192.0.2.77 obtained, lease time 86400"),
        (None, "dropbear", 23, "Bad password attempt for 'admin' from 192.0.2.26:51022"),
    ]
    assert rows[0]["timestamp"] == "2026-12-02T23:58:50" and rows[-1]["timestamp"] == "2026-12-02T23:58:52"


RFC5424 = [
    # line, timestamp, host, program, pid, message
    ("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
     "2003-08-24T05:14:15.000003-07:00", "192.0.2.1", "myproc", 8710, "%% It's time to make the do-nuts."),
    ("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \ufeff'su root' failed for lonvick",
     "2003-10-11T22:14:15.003Z", "mymachine.example.com", "su", None, "'su root' failed for lonvick"),
    ('<190>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
     'eventID="10\\] 11"][examplePriority@32473 class="high"] An application event log entry',
     "2003-10-11T22:14:15.003Z", "mymachine.example.com", "evntslog", None, "An application event log entry"),
    ("1 2026-12-02T23:58:50.123456+00:00 mail postfix/smtpd 4711 - - connect from unknown[192.0.2.1]",
     "2026-12-02T23:58:50.123456+00:00", "mail", "postfix/smtpd", 4711, "connect from unknown[192.0.2.1]"),
    ("<1>12 - mymachine - - ID47 - asd asdaasd", None, "mymachine", None, None, "asd asdaasd"),
    ("<13>1 2026-12-02T23:58:50Z - - - - -", "2026-12-02T23:58:50Z", None, None, None, ""),
]  # fmt: skip


@pytest.mark.parametrize(("line", "timestamp", "host", "program", "pid", "message"), RFC5424)
def test_rfc5424_lines_get_their_fields(line, timestamp, host, program, pid, message):
    row = parse_line(line, 3, None)
    assert (row["timestamp"], row["host"], row["program"], row["pid"], row["message"]) == (
        timestamp, host, program, pid, message)  # fmt: skip
    assert line.endswith(row["message"])  # line_prefilter's promise: the message is a suffix of its line


# Where we read a line differently from jc 1.26, on purpose. RFC 5424: a line without VERSION is not
# RFC 5424 (we read it as RFC 3339 syslog). BSD: jc leaves "[pid]: " in the content (we take the pid
# out: test_differential_*); jc cuts "sshd(pam_unix)[21839]" at "(", we keep the tag whole; a first word
# ending in ":" after the time is a tag with no host (BusyBox -S writes "tag: msg"), jc takes it for the host.
JC_5424_NOT_COMPARED = ("2003-10-11T22:14:15.003Z mymachine.example.com evntslog",)  # line starts
JC_BSD_NOT_COMPARED = {"avas sshd(pam_unix)[21839]", "avas: last message repeated"}


def test_differential_rfc5424_against_jc_on_jcs_own_fixture():
    """jc's tests/fixtures/generic/syslog-5424.out, verbatim: on every line both parse, the fields agree."""
    import jc

    text = (FIXTURES / "log_tail" / "jc_syslog-5424.txt").read_text()
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    theirs = jc.parse("syslog", text, quiet=True)
    assert len(theirs) == len(numbered)
    ours = {r["line_no"]: r for r in parse_log_lines(text)}
    compared = 0
    for (line_no, line), record in zip(numbered, theirs, strict=True):
        if "unparsable" in record or line.startswith(JC_5424_NOT_COMPARED):
            continue
        row = ours[line_no]
        assert (row["timestamp"], row["host"], row["program"], row["pid"], row["message"]) == (
            record["timestamp"],
            record["hostname"],
            record["appname"],
            record["proc_id"],
            record["message"] or "",
        )
        compared += 1
    assert compared == 6


def test_differential_bsd_syslog_against_jc_on_jcs_own_fixture():
    """jc's tests/fixtures/generic/syslog-3164.out, verbatim: host, program and message agree with jc's
    hostname, tag and content (which keeps the "[pid]: " we take out)."""
    import jc

    text = (FIXTURES / "log_tail" / "jc_syslog-3164.txt").read_text()
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    theirs = jc.parse("syslog_bsd", text, quiet=True)
    assert len(theirs) == len(numbered)
    ours = {r["line_no"]: r for r in parse_log_lines(text, recorded_at=RECORDED)}
    compared = 0
    for (line_no, line), record in zip(numbered, theirs, strict=True):
        if "unparsable" in record or any(skip in line for skip in JC_BSD_NOT_COMPARED):
            continue
        row = ours[line_no]
        content = (f"[{row['pid']}]: " if row["pid"] else "") + row["message"]
        assert (row["host"], row["program"], content.strip()) == (record["hostname"], record["tag"], record["content"])
        month, day, time = record["date"].split()
        assert row["timestamp"] == f"2026-{MONTHS[month]:02d}-{int(day):02d}T{time}"
        compared += 1
    assert compared == 28
