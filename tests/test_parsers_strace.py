"""strace parsing over real captures: tcpserver's ident lookup (seed 1) and a blocking connect()."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.parsers import facts_for
from diagnostics.parsers.strace import parse_strace

FIXTURES = Path(__file__).parent / "fixtures" / "strace"


def facts(name: str) -> dict:
    return facts_for("strace", (FIXTURES / name).read_bytes())


def test_tcpservers_ident_lookup_is_a_connect_to_113_that_waits_26_seconds_and_times_out():
    waits = [w for w in facts("tcpserver_ident_113.txt")["connect_waits"] if w["port"] == 113]
    assert len(waits) == 2
    for wait in waits:
        assert wait["address"] == "10.213.33.11" and wait["family"] == "AF_INET"
        assert not wait["blocking"] and wait["outcome"] == "timeout" and not wait["unfinished"]
        assert 26.0 <= wait["waited"] < 26.2
    first = waits[0]
    assert (first["pid"], first["fd"], first["line_no"], first["end_line_no"]) == (27, 1, 26, 55)


def test_the_poll_split_by_another_process_is_joined_into_one_call_with_its_full_duration():
    calls = facts("tcpserver_ident_113.txt")["syscalls"]
    poll = next(c for c in calls if c["syscall"] == "poll" and c["pid"] == 27 and c["resumed"])
    assert poll["args"] == "[{fd=1, events=POLLOUT}], 1, 26020"
    assert poll["result"] == "0" and poll["duration"] == 26.046075
    assert (poll["line_no"], poll["end_line_no"], poll["fd"], poll["time"]) == (27, 54, 1, "00:41:23.171009")
    accept = next(c for c in calls if c["syscall"] == "accept" and c["resumed"] and c["port"])
    assert accept["args"].startswith("3, {sa_family=AF_INET, sin_port=htons(34568)")
    assert (accept["pid"], accept["address"], accept["result"]) == (9, "10.213.33.11", "0")


def test_the_connect_itself_returns_einprogress_at_once():
    connects = [c for c in facts("tcpserver_ident_113.txt")["syscalls"] if c["syscall"] == "connect"]
    ident = [c for c in connects if c["port"] == 113]
    assert [c["errno"] for c in ident] == ["EINPROGRESS", "EINPROGRESS"] and all(c["duration"] < 0.001 for c in ident)
    dns = [c for c in connects if c["port"] == 53]
    assert dns and {c["errno"] for c in dns} == {"ENETUNREACH"} and {c["result"] for c in dns} == {"-1"}


def test_lines_without_a_pid_prefix_belong_to_the_only_traced_process():
    calls = facts("tcpserver_ident_113.txt")["syscalls"]
    assert calls[0]["pid"] == 9 and calls[0]["syscall"] == "accept" and calls[0]["line_no"] == 3


def test_a_call_still_blocked_when_strace_detaches_is_unfinished():
    last = facts("tcpserver_ident_113.txt")["syscalls"][-1]
    assert last["syscall"] == "accept" and last["unfinished"] and last["duration"] is None
    assert last["result"] is None and last["pid"] == 9 and last["end_line_no"] is None


def test_a_blocking_connect_times_out_and_the_next_one_is_still_waiting_at_the_end():
    table = facts("bash_connect_timeout.txt")
    timed_out, waiting = table["connect_waits"]
    assert timed_out["blocking"] and timed_out["outcome"] == "ETIMEDOUT" and timed_out["waited"] == 6.034237
    assert (timed_out["pid"], timed_out["port"], timed_out["address"]) == (6, 113, "10.213.190.11")
    assert waiting["unfinished"] and waiting["outcome"] == "unfinished" and waiting["pid"] == 17
    # This capture predates the probe's "window ended at" note and nothing is stamped after the connect:
    # how long it had waited is unknown, not 0.
    assert waiting["waited"] is None
    connect = next(c for c in table["syscalls"] if c["errno"] == "ETIMEDOUT")
    assert connect["syscall"] == "connect" and connect["duration"] == 6.034237 and connect["fd"] == 3


@pytest.mark.parametrize("name", ["no_such_process.txt", "not_installed.txt"])
def test_probe_notes_alone_give_no_facts(name):
    assert facts(name) == {}


STRACE_CASES = [
    # (line, syscall, fd, family, address, port, result, errno, duration)
    ('12:00:00.000001 connect(5, {sa_family=AF_INET6, sin6_port=htons(113), sin6_flowinfo=htonl(0), '
     'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ECONNREFUSED '
     "(Connection refused) <0.000100>", "connect", 5, "AF_INET6", "2001:db8::1", 113, "-1", "ECONNREFUSED", 0.0001),
    ('12:00:00.000001 connect(5, {sa_family=AF_INET6, sin6_port=htons(22), sin6_flowinfo=htonl(0), '
     'inet_pton(AF_INET6, "fe80::1", &sin6_addr), sin6_scope_id=if_nametoindex("eth0")}, 28) = 0 <0.000100>',
     "connect", 5, "AF_INET6", "fe80::1%eth0", 22, "0", None, 0.0001),
    ('12:00:00.000001 connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT '
     "(No such file or directory) <0.000020>", "connect", 3, "AF_UNIX", "/var/run/nscd/socket", None, "-1", "ENOENT",
     0.00002),
    ('12:00:00.000001 write(1, "a) = b", 6) = 6 <0.000010>', "write", 1, None, None, None, "6", None, 0.00001),
    ("12:00:00.000001 select(4, NULL, [3], NULL, {tv_sec=26, tv_usec=0}) = 0 (Timeout) <26.026>", "select", None,
     None, None, None, "0", None, 26.026),
    ("12:00:00.000001 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 3, 0) = 0x7f2a1c000000 <0.000010>", "mmap", None, None,
     None, None, "0x7f2a1c000000", None, 0.00001),
    ("12:00:00.000001 read(7<socket:[1234]>, \"\", 4096) = 0 <0.000010>", "read", 7, None, None, None, "0", None,
     0.00001),
]  # fmt: skip


@pytest.mark.parametrize(("line", "syscall", "fd", "family", "address", "port", "result", "errno", "duration"),
                         STRACE_CASES)  # fmt: skip
def test_one_call_per_line_formats(line, syscall, fd, family, address, port, result, errno, duration):
    (call,) = parse_strace(line)["syscalls"]
    assert (call["syscall"], call["fd"], call["family"], call["address"], call["port"]) == (
        syscall, fd, family, address, port)  # fmt: skip
    assert (call["result"], call["errno"], call["duration"], call["unfinished"]) == (result, errno, duration, False)


def test_select_on_a_pending_nonblocking_connect_is_its_wait():
    text = (
        "[pid 40] 10:00:00.000000 connect(3, {sa_family=AF_INET, sin_port=htons(113), "
        'sin_addr=inet_addr("192.0.2.9")}, 16) = -1 EINPROGRESS (Operation now in progress) <0.000050>\n'
        "[pid 41] 10:00:00.100000 close(9) = 0 <0.000010>\n"
        "[pid 40] 10:00:00.000100 select(4, NULL, [3], NULL, {tv_sec=26, tv_usec=0}) = 0 (Timeout) <25.999900>\n"
        "[pid 40] 10:00:26.000100 close(3) = 0 <0.000010>\n"
    )
    (wait,) = parse_strace(text)["connect_waits"]
    assert wait["outcome"] == "timeout" and wait["waited"] == 26.0 and wait["end_line_no"] == 3


def test_a_wait_that_spans_midnight_is_not_negative():
    text = (
        "23:59:59.500000 connect(3, {sa_family=AF_INET, sin_port=htons(113), sin_addr=inet_addr(\"192.0.2.9\")}, 16"
        " <unfinished ...>\n"
        "00:00:01.500000 <... connect resumed>) = -1 ETIMEDOUT (Connection timed out)\n"
    )  # fmt: skip
    (call,) = parse_strace(text)["syscalls"]
    assert call["resumed"] and call["duration"] == 2.0 and call["errno"] == "ETIMEDOUT"


def test_garbage_and_half_lines_are_skipped():
    text = "hello\n[pid 3] 10:00:00.1 connect(3, {sa_fam\n<... read resumed>) = 0\n--- SIGPIPE ---\n"
    calls = parse_strace(text)["syscalls"]
    assert [(c["syscall"], c["unfinished"]) for c in calls] == [("connect", True), ("read", False)]


def test_waits_in_pselect6_poll_and_epoll_are_seen_with_their_outcomes():
    """glibc's select() is pselect6; selectors' default is epoll (epoll_ctl says which fd it waits on); a
    refused connect wakes poll/epoll with POLLERR|POLLHUP, which is a failure, not readiness."""
    waits = facts("python_connect_waits.txt")["connect_waits"]
    assert [(w["port"], w["fd"], w["outcome"]) for w in waits] == [
        (113, 3, "timeout"),
        (114, 3, "error"),
        (113, 4, "timeout"),
        (114, 4, "error"),
        (113, 4, "unfinished"),
    ]
    assert all(w["pid"] == 7 and w["address"] == "10.213.230.11" and not w["blocking"] for w in waits)
    assert 3.0 < waits[0]["waited"] < 3.1 and 3.0 < waits[2]["waited"] < 3.1
    assert waits[1]["waited"] < 0.01 and waits[3]["waited"] < 0.01
    assert [w["end_line_no"] for w in waits[:4]] == [5, 8, 12, 17]


def test_a_connect_still_waiting_when_the_window_closes_waited_at_least_until_the_window_end():
    last = facts("python_connect_waits.txt")["connect_waits"][-1]
    assert last["unfinished"] and last["outcome"] == "unfinished" and last["end_line_no"] is None
    # connect at 23:59:10.417289, "probe: window ended at 23:59:16.462875"
    assert last["waited"] == 6.045586


def test_the_poll_result_keeps_its_revents():
    calls = facts("python_connect_waits.txt")["syscalls"]
    poll = next(c for c in calls if c["syscall"] == "poll")
    assert poll["result"] == "1" and poll["detail"] == "([{fd=3, revents=POLLOUT|POLLERR|POLLHUP}])"
    pselect = next(c for c in calls if c["syscall"] == "pselect6")
    assert pselect["result"] == "0" and pselect["detail"] == "(Timeout)" and pselect["duration"] == 3.003078


def test_an_unfinished_poll_on_a_pending_connect_waits_until_the_window_end_not_until_the_poll_started():
    text = (
        "probe: tracing 1 process(es) named tcpserver\n"
        "[pid 27] 00:41:23.170812 connect(1, {sa_family=AF_INET, sin_port=htons(113), "
        'sin_addr=inet_addr("192.0.2.9")}, 16) = -1 EINPROGRESS (Operation now in progress) <0.000060>\n'
        "[pid 27] 00:41:23.171009 poll([{fd=1, events=POLLOUT}], 1, 26020 <unfinished ...>\n"
        "strace: Process 27 detached\n"
        "probe: window ended at 00:41:35.170812\n"
    )
    (wait,) = parse_strace(text)["connect_waits"]
    assert wait["unfinished"] and wait["outcome"] == "unfinished" and wait["waited"] == 12.0
    (wait,) = parse_strace(text.replace("probe: window ended at 00:41:35.170812\n", ""))["connect_waits"]
    assert wait["unfinished"] and wait["waited"] is None  # no note and nothing after the poll: unknown, not 0.0002 s


def test_a_poll_woken_by_another_descriptor_leaves_the_connect_waiting():
    text = (
        "[pid 5] 10:00:00.000000 connect(3, {sa_family=AF_INET, sin_port=htons(113), "
        'sin_addr=inet_addr("192.0.2.9")}, 16) = -1 EINPROGRESS (Operation now in progress) <0.000050>\n'
        "[pid 5] 10:00:00.000100 poll([{fd=3, events=POLLOUT}, {fd=7, events=POLLIN}], 2, 30000) = 1 "
        "([{fd=7, revents=POLLIN}]) <1.000000>\n"
        "[pid 5] 10:00:01.000200 poll([{fd=3, events=POLLOUT}, {fd=7, events=POLLIN}], 2, 30000) = 0 (Timeout) "
        "<29.000000>\n"
    )
    (wait,) = parse_strace(text)["connect_waits"]
    assert wait["outcome"] == "timeout" and wait["waited"] == 30.0002 and wait["end_line_no"] == 3
