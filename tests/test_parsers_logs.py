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
