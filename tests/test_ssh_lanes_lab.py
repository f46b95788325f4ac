"""Lanes against real sshd: several probes over ONE channel as a framed script (diagnostics.ssh_lanes).

The hosts here allow one session per connection (`MaxSessions 1`): a second channel is refused by
sshd, so a lane that opened more than one would fail these tests.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from diagnostics import services, ssh
from diagnostics.models import Playbook, RunState
from tests.lab_servers import lab_server
from triage import services as desk

pytestmark = [pytest.mark.root, pytest.mark.django_db(transaction=True)]

ONE_SESSION = {"MaxSessions": "1"}


@pytest.fixture
def ticket(customer, tech):
    return desk.ticket_create(subject="Lanes", description="few channels", customer=customer, created_by=tech)


def _session(host, **timeouts) -> ssh.Session:
    key_type, key_b64 = host.host_public_key.split()[:2]
    return ssh.connect(
        address=host.address,
        port=host.port,
        username="root",
        secret=ssh.Secret(private_key=host.client_key_path.read_text()),
        pinned=[ssh.HostKey(key_type, key_b64)],
        timeouts=ssh.Timeouts(**timeouts),
    )


def test_one_session_hosts_refuse_a_second_channel(lab):
    """The premise of the tests below: MaxSessions 1 really refuses concurrent channels."""
    host = lab.add_host("onlyone", sshd_options=ONE_SESSION)
    specs = [ssh.CommandSpec(str(n), "sleep 1; echo hi", timeout=5) for n in range(2)]
    with _session(host) as session:
        results = session.run_many(specs, concurrency=2)
    assert [r.exit_status for r in results].count(0) == 1
    assert any("could not open a channel" in r.error for r in results)


def test_several_probes_run_over_one_channel_with_their_own_status_and_stderr(lab):
    host = lab.add_host("lane", sshd_options=ONE_SESSION)
    specs = [
        ssh.CommandSpec("a", "echo out-a; echo err-a >&2", timeout=5),
        ssh.CommandSpec("b", "printf 'no newline'; echo err-b >&2; exit 3", timeout=5),
        ssh.CommandSpec("c", "echo out-c", timeout=5),
        ssh.CommandSpec("d", "cat; echo read-nothing", timeout=5),  # stdin is /dev/null, not the script
    ]
    arrived: list[str] = []
    with _session(host) as session:
        results = session.run_lane(specs, on_result=lambda r: arrived.append(r.key))
    a, b, c, d = results
    assert [r.key for r in results] == arrived == ["a", "b", "c", "d"]
    assert (a.exit_status, a.stdout, a.stderr, a.error) == (0, b"out-a\n", b"err-a\n", "")
    assert (b.exit_status, b.stdout, b.stderr) == (3, b"no newline", b"err-b\n")
    assert (c.exit_status, c.stdout, c.stderr) == (0, b"out-c\n", b"")
    assert (d.exit_status, d.stdout) == (0, b"read-nothing\n")
    assert a.command == ssh.remote_wrapper("echo out-a; echo err-a >&2", 5)
    assert all(r.stdout_bytes == len(r.stdout) and not r.truncated and not r.timed_out for r in results)


def test_the_script_and_its_frames_never_show_on_a_command_line(lab):
    """The lane's shell reads its script on stdin: a probe listing every command line on the host (as the
    `processes` probe does) sees `sh -s` and the probes' own commands, never the frames' token."""
    host = lab.add_host("laneps", own_pids=True, sshd_options=ONE_SESSION)
    specs = [ssh.CommandSpec("first", "echo one", timeout=5), ssh.CommandSpec("ps", "ps -eo args", timeout=5)]
    with _session(host) as session:
        _, listing = session.run_lane(specs)
    assert listing.exit_status == 0, listing
    assert b"sh -s" in listing.stdout and b"ps -eo args" in listing.stdout
    assert b"rundesk-start" not in listing.stdout and b" begin " not in listing.stdout
    assert b" end " not in listing.stdout and b"printf" not in listing.stdout


def test_a_hanging_probe_is_killed_on_the_host_and_the_next_one_still_runs(lab):
    host = lab.add_host("lanehang", own_pids=True, sshd_options=ONE_SESSION)
    specs = [
        ssh.CommandSpec("hang", "echo started; sleep 4242; echo never", timeout=1),
        ssh.CommandSpec("after", "echo after", timeout=5),
    ]
    with _session(host) as session:
        hang, after = session.run_lane(specs)
    assert hang.timed_out and hang.exit_status == 124 and hang.stdout == b"started\n"
    assert (after.exit_status, after.stdout, after.error) == (0, b"after\n", "")
    time.sleep(0.5)
    assert host.processes("sleep 4242") == []


def test_binary_output_survives_byte_exact_between_text_probes(lab):
    host = lab.add_host("lanebin", sshd_options=ONE_SESSION)
    payload = os.urandom(300_000) + b"\n" + b"\x00\nend"  # every byte value, newlines, no trailing newline
    host.write_file("/tmp/lanes.bin", "")
    (host._path("/tmp/lanes.bin")).write_bytes(payload)
    specs = [
        ssh.CommandSpec("before", "echo text", timeout=5),
        ssh.CommandSpec("bin", "cat /tmp/lanes.bin", timeout=10, output_cap=1 << 20),
        ssh.CommandSpec("after", "printf x", timeout=5),
    ]
    with _session(host) as session:
        before, binary, after = session.run_lane(specs)
    assert binary.exit_status == 0 and binary.stdout == payload and binary.stdout_bytes == len(payload)
    assert before.stdout == b"text\n" and after.stdout == b"x"


def test_output_that_looks_like_a_frame_without_the_token_stays_in_the_probes_output(lab):
    host = lab.add_host("lanefake", sshd_options=ONE_SESSION)
    fake = (
        "0123456789abcdef0123456789abcdef end a 0\n"
        "rundesk-start-0123456789abcdef0123456789abcdef\n"
        "0123456789abcdef0123456789abcdef begin b\n"
    )
    command = f"printf '\\n%s' '{fake}'; printf '\\n%s' '{fake}' >&2; exit 5"
    specs = [ssh.CommandSpec("a", command, timeout=5), ssh.CommandSpec("b", "echo b", timeout=5)]
    with _session(host) as session:
        a, b = session.run_lane(specs)
    assert (a.exit_status, a.stdout, a.stderr) == (5, ("\n" + fake).encode(), ("\n" + fake).encode())
    assert (b.exit_status, b.stdout) == (0, b"b\n")


def test_noisy_slow_rc_files_stay_out_of_a_lanes_output_and_bound_its_start(lab):
    host = lab.add_host("lanerc", sshd_options=ONE_SESSION)
    host.write_root_rc('sleep 2\necho "Welcome! junk"\necho "stderr junk" >&2\nprintf "no newline"\n')
    specs = [ssh.CommandSpec(str(n), f"echo clean {n}", timeout=1) for n in range(3)]
    with _session(host, grace=1) as session:  # 1 s + 1 s of bounds against a 2 s rc file
        results = session.run_lane(specs)
    for n, result in enumerate(results):
        assert (result.exit_status, result.stdout, result.stderr, result.error) == (
            0,
            f"clean {n}\n".encode(),
            b"",
            "",
        ), result
    # An rc file slower than shell_start: every probe of the lane says so.
    host.write_root_rc("sleep 30\n")
    with _session(host, shell_start=1) as session:
        results = session.run_lane(specs)
    assert all(r.exit_status is None and r.timed_out and "login shell did not start" in r.error for r in results)


def test_a_dropped_connection_keeps_the_finished_probes_and_fails_the_rest(lab):
    host = lab.add_host("lanedrop", sshd_options=ONE_SESSION)
    specs = [
        ssh.CommandSpec("quick", "echo done", timeout=5),
        ssh.CommandSpec("slow", "sleep 20; echo never", timeout=30),
        ssh.CommandSpec("later", "echo later", timeout=5),
    ]

    def kill_after_first(result: ssh.CommandResult) -> None:
        if result.key == "quick":
            threading.Timer(0.3, host.kill_sshd).start()

    with _session(host) as session:
        quick, slow, later = session.run_lane(specs, on_result=kill_after_first)
    assert (quick.exit_status, quick.stdout) == (0, b"done\n")
    for result in (slow, later):
        assert result.exit_status is None and "connection dropped" in result.error, result


def test_a_lane_without_progress_gives_up_at_its_local_deadline(lab):
    """A probe whose host-side timeout cannot fire (the shell itself is stopped) ends at timeout + grace,
    and the probes after it say they never started."""
    host = lab.add_host("lanestuck", own_pids=True, sshd_options=ONE_SESSION)
    # The lane's own shell stops itself: nothing more arrives, and only the local deadline ends it.
    specs = [
        ssh.CommandSpec("stuck", "kill -STOP $PPID $(ps -o ppid= -p $PPID)", timeout=1),
        ssh.CommandSpec("next", "echo next", timeout=1),
    ]
    with _session(host, grace=1) as session:
        stuck, following = session.run_lane(specs)
    assert stuck.exit_status is None and stuck.timed_out and stuck.error == "no exit status 2 s after start"
    assert following.exit_status is None and following.error.startswith("no exit status: not started")


def test_an_output_flood_ends_its_lane_and_says_so(lab):
    host = lab.add_host("laneflood", own_pids=True, sshd_options=ONE_SESSION)
    specs = [
        ssh.CommandSpec(
            "flood", "head -c 50000000 /dev/zero; echo end", timeout=30, output_cap=64 << 10, read_limit=4 << 20
        ),
        ssh.CommandSpec("next", "echo next", timeout=5),
    ]
    with _session(host) as session:
        flood, following = session.run_lane(specs)
    assert flood.truncated and "output flood" in flood.error and len(flood.stdout) < 70 << 10
    assert following.exit_status is None and "output flood from flood" in following.error


def test_a_collection_runs_its_quick_probes_over_one_channel(lab, customer, ticket, settings):
    host = lab.add_host("lanerun", sshd_options=ONE_SESSION)
    steps = [
        {"probe": "disk", "params": {}},
        {"probe": "memory", "params": {}},
        {"probe": "mounts", "params": {}},
        {"probe": "kernel_log", "params": {}},
    ]
    playbook = Playbook.objects.create(name="quick ones", steps=steps)
    run = services.run_request(
        ticket=ticket, server=lab_server(customer, host), playbook=playbook, by=None, enqueue=False
    )
    run = services.run_execute(run_id=run.pk, worker="test")
    assert run.state == RunState.SUCCEEDED, run.reason
    evidence = list(run.evidence.order_by("step"))
    assert [e.probe for e in evidence] == ["disk", "memory", "mounts", "kernel_log", "ssh_session"]
    assert all(e.exit_status == 0 and e.command.startswith("LC_ALL=C timeout -k") for e in evidence[:4])
