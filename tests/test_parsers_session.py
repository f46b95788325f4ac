"""The product's own timed login (``ssh_session``), recorded by capture.py's "logins" scenario."""

from __future__ import annotations

from pathlib import Path

from diagnostics.parsers import facts_for
from diagnostics.probes import session_output

FIXTURES = Path(__file__).parent / "fixtures" / "ssh_session"


def test_a_login_that_waited_on_dead_resolvers_shows_the_wait_in_the_servers_part():
    (row,) = facts_for("ssh_session", (FIXTURES / "slow_usedns_login.txt").read_bytes())["ssh_session"]
    assert row["target"] == "root@10.213.159.12:22" and row["line_no"] == 5
    assert (row["connect_seconds"], row["handshake_seconds"], row["auth_seconds"]) == (0.0014, 0.0472, 2.0654)
    assert row["auth_wait_seconds"] == 2.0182


def test_a_quick_login_has_a_quick_server_part():
    (row,) = facts_for("ssh_session", (FIXTURES / "quick_login.txt").read_bytes())["ssh_session"]
    assert row["auth_wait_seconds"] == 0.0061


def test_the_runner_text_reads_back_and_a_phase_never_reached_is_none():
    text = session_output(
        target="deploy@192.0.2.7:2222", timings={"connect": 0.5, "banner": 1.25, "handshake": None, "auth": None}
    )
    (row,) = facts_for("ssh_session", text.encode())["ssh_session"]
    assert (row["target"], row["banner_seconds"], row["auth_seconds"], row["auth_wait_seconds"]) == (
        "deploy@192.0.2.7:2222", 1.25, None, None)  # fmt: skip


def test_a_target_reached_through_jump_hosts_reads_back_with_its_whole_path():
    text = session_output(target="root@10.0.0.5:22 via bastion1, bastion2", timings={"connect": 0.5, "auth": 1.0})
    (row,) = facts_for("ssh_session", text.encode())["ssh_session"]
    assert row["target"] == "root@10.0.0.5:22 via bastion1, bastion2"
