"""The pure parts of the SSH layer: output capping, the remote wrapper, fingerprints."""

from __future__ import annotations

import subprocess

from hypothesis import given
from hypothesis import strategies as st

from diagnostics import ssh


@given(chunks=st.lists(st.binary(max_size=300), max_size=40), cap=st.integers(2, 400))
def test_head_tail_keeps_the_start_and_the_end_and_counts_everything(chunks, cap):
    buffer = ssh.HeadTail(cap)
    for chunk in chunks:
        buffer.feed(chunk)
    data = b"".join(chunks)
    kept = buffer.value()
    assert buffer.total == len(data)
    half = cap // 2
    if len(data) <= 2 * half:
        assert kept == data and not buffer.truncated
    else:
        assert buffer.truncated
        assert kept.startswith(data[:half]) and kept.endswith(data[-half:])
        assert b"bytes not kept" in kept
        assert len(kept) < 2 * half + 60


def test_the_remote_wrapper_runs_the_command_under_timeout_with_a_c_locale():
    wrapped = ssh.remote_wrapper("echo \"$LC_ALL\"; echo 'quoted; $(not run)'", 5)
    out = subprocess.run(["sh", "-c", wrapped], capture_output=True, text=True, check=True).stdout
    assert out == "C\nquoted; $(not run)\n"


def test_the_remote_wrapper_kills_a_command_at_its_timeout():
    result = subprocess.run(["sh", "-c", ssh.remote_wrapper("sleep 30", 1)], capture_output=True, timeout=10)
    assert result.returncode == 124


def test_fingerprints_match_openssh(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    public = (tmp_path / "k.pub").read_text().split()
    expected = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert ssh.fingerprint_of(public[1]) == expected
