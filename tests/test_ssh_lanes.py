"""The pure parts of lanes: the framed script (run by a local sh), the frame reader, lane assignment."""

from __future__ import annotations

import subprocess

from hypothesis import given
from hypothesis import strategies as st

from diagnostics import probes, ssh, ssh_lanes

TOKEN = "0123456789abcdef0123456789abcdef"


def _read(stream: bytes, keys: list[str], chunks: list[int] | None = None) -> ssh_lanes.FrameReader:
    reader = ssh_lanes.FrameReader(TOKEN, keys, [ssh.HeadTail(1 << 20) for _ in keys])
    at = 0
    for size in chunks or [len(stream)]:
        reader.feed(stream[at : at + size])
        at += size
    reader.feed(stream[at:])
    return reader


def _run_script(sections: list[ssh_lanes.Section]) -> tuple[bytes, bytes]:
    """The script as a host's `sh -s` runs it (locally: the same POSIX sh)."""
    done = subprocess.run(
        ["sh", "-s"], input=ssh_lanes.lane_script(TOKEN, sections), capture_output=True, timeout=30, check=True
    )
    marker = ssh_lanes.start_marker(TOKEN)
    return done.stdout.split(marker, 1)[1], done.stderr.split(marker, 1)[1]


@given(outputs=st.lists(st.binary(max_size=2000), min_size=1, max_size=4), data=st.data())
def test_sections_come_back_byte_exact_however_the_stream_is_cut(outputs, data):
    keys = [str(n) for n in range(len(outputs))]
    stream = b"".join(
        f"{TOKEN} begin {k}\n".encode() + out + f"\n{TOKEN} end {k} {n}\n".encode()
        for n, (k, out) in enumerate(zip(keys, outputs, strict=True))
    )
    chunks = data.draw(st.lists(st.integers(1, 50), max_size=200))
    reader = _read(stream, keys, chunks)
    assert reader.ended == len(keys)
    assert [sink.value() for sink in reader.sinks] == outputs
    assert reader.statuses == list(range(len(keys)))


def test_a_section_without_its_end_frame_has_not_ended_and_keeps_what_came():
    reader = _read(f"{TOKEN} begin a\npartial output".encode(), ["a", "b"])
    assert reader.ended == 0
    reader.flush()  # the stream ended there (a dropped connection)
    assert reader.sinks[0].value() == b"partial output"


def test_frames_with_another_token_are_output_not_frames():
    other = "f" * 32
    body = f"{other} end a 0\n\n{other} end a 0\n{TOKEN[:-1]}x end a 0\n".encode()
    reader = _read(f"{TOKEN} begin a\n".encode() + body + f"\n{TOKEN} end a 7\n".encode(), ["a"])
    assert (reader.ended, reader.statuses, reader.sinks[0].value()) == (1, [7], body)


def test_the_script_runs_each_probe_under_its_own_timeout_with_its_status_and_streams():
    sections = [
        ssh_lanes.Section("a", ssh.remote_wrapper("echo out; echo err >&2; exit 4", 5)),
        ssh_lanes.Section("b", ssh.remote_wrapper("sleep 30; echo never", 1)),
        ssh_lanes.Section(
            "c", ssh.remote_wrapper("IFS= read -r pw; printf '%s|' \"$pw\"; cat", 5), stdin=b"s3cret 'quoted' $HOME\n"
        ),
        ssh_lanes.Section("d", ssh.remote_wrapper("cat; echo eof", 5)),
    ]
    out, err = _run_script(sections)
    keys = [s.key for s in sections]
    stdout, stderr = _read(out, keys), _read(err, keys)
    assert stdout.statuses == stderr.statuses == [4, 124, 0, 0]
    assert [s.value() for s in stdout.sinks] == [b"out\n", b"", b"s3cret 'quoted' $HOME|", b"eof\n"]
    assert [s.value() for s in stderr.sinks] == [b"err\n", b"", b"", b""]


def test_the_script_refuses_a_key_that_could_break_a_frame():
    for key in ("a b", "a\nb", "", "x'y"):
        try:
            ssh_lanes.lane_script(TOKEN, [ssh_lanes.Section(key, "true")])
        except ValueError:
            continue
        raise AssertionError(f"key {key!r} accepted")


def _spec(key: str, waits: float = 0) -> ssh.CommandSpec:
    return ssh.CommandSpec(key, "true", timeout=30, waits=waits)


def _keys(lanes) -> list[list[str]]:
    return [[spec.key for spec in lane] for lane in lanes]


def test_quick_probes_share_one_lane_and_each_waiting_probe_gets_its_own():
    specs = [_spec("0"), _spec("1", waits=1), _spec("2"), _spec("3", waits=15), _spec("4")]
    assert _keys(ssh_lanes.assign_lanes(specs, 6)) == [["3"], ["1"], ["0", "2", "4"]]


def test_only_quick_probes_make_one_lane():
    assert _keys(ssh_lanes.assign_lanes([_spec(str(n)) for n in range(8)], 6)) == [[str(n) for n in range(8)]]
    assert ssh_lanes.assign_lanes([], 3) == []


def test_lanes_are_capped_and_filled_longest_first_onto_the_least_loaded():
    specs = [_spec("0", 10), _spec("1", 8), _spec("2", 5), _spec("3", 4), _spec("4"), _spec("5")]
    # Two lanes: 10 and 8 start them, 5 joins the 8 (13), 4 the 10 (14), the quick ones the lighter 13.
    assert _keys(ssh_lanes.assign_lanes(specs, 2)) == [["0", "3"], ["1", "2", "4", "5"]]
    assert _keys(ssh_lanes.assign_lanes(specs, 1)) == [["0", "1", "2", "3", "4", "5"]]


def test_many_quick_probes_spill_next_to_a_short_wait():
    specs = [_spec("load", waits=1)] + [_spec(str(n)) for n in range(12)]
    lanes = _keys(ssh_lanes.assign_lanes(specs, 3))
    assert len(lanes) == 2 and lanes[0][0] == "load"
    assert sorted(k for lane in lanes for k in lane) == sorted(s.key for s in specs)


@given(waits=st.lists(st.sampled_from([0, 0, 0, 1, 5, 15, 60]), max_size=20), cap=st.integers(1, 8))
def test_assignment_keeps_every_spec_once_and_is_deterministic(waits, cap):
    specs = [_spec(str(n), w) for n, w in enumerate(waits)]
    lanes = ssh_lanes.assign_lanes(specs, cap)
    assert lanes == ssh_lanes.assign_lanes(list(specs), cap)
    assert sorted(int(s.key) for lane in lanes for s in lane) == list(range(len(specs)))
    assert len(lanes) <= cap and all(lane for lane in lanes)
    assert all([int(s.key) for s in lane] == sorted(int(s.key) for s in lane) for lane in lanes)


def test_probes_that_wait_by_design_say_so():
    assert probes.build("load", {}).waits == 1
    assert probes.build("tcpdump", {"seconds": 7}).waits == 7
    assert probes.build("strace", {"process": "sshd", "seconds": 3}).waits == 3
    assert probes.build("disk", {}).waits == 0 and probes.build("processes", {}).waits == 0
