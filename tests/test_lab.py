"""The SSH lab is real: hosts in network namespaces answer SSH with their own keys, keep their own /tmp and
process list, and the faults it injects (dropped SYNs, silent peers, changed host keys, killed sshd, slow DNS)
behave on the wire as they would on a customer's server. Clients are the OpenSSH client and paramiko."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from tests.lab import FAKE_BANNER, Host, Lab, cleanup_stale, leftovers

pytest_plugins = ["tests.lab"]  # the lab and lab_host fixtures
pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parent.parent


def ssh(host: Host, *command: str, tmp_path: Path, timeout: float = 15, **options) -> subprocess.CompletedProcess:
    """Run `command` on `host` with the OpenSSH client, pinning the host's current key."""
    known_hosts = host.write_known_hosts(tmp_path / f"known_hosts_{host.name}")
    return subprocess.run(
        host.ssh_argv(*command, known_hosts=known_hosts, **options),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def connect(host: Host, port: int, timeout: float = 2) -> socket.socket:
    return socket.create_connection((host.address, port), timeout=timeout)


def eventually(condition, timeout: float = 10):
    """Poll `condition` until it returns something truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        time.sleep(0.05)
    return result


def process_start(pid: int) -> str | None:
    """The start time of a live (not zombie) process, to tell it from a later one that reuses its pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else fields[19]


def pinned_client(host: Host) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    key_type, key = host.host_public_key.split()[:2]
    client.get_host_keys().add(host.address, key_type, paramiko.PKey.from_type_string(key_type, base64.b64decode(key)))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


@pytest.fixture(scope="module")
def web(lab: Lab) -> Host:
    return lab.add_host("web", private_tmp=True, own_pids=True)


@pytest.fixture(scope="module")
def db(lab: Lab) -> Host:
    return lab.add_host("db", private_tmp=True)


def test_each_host_answers_ssh_as_root_by_key_at_its_own_address(web, db, tmp_path):
    for host in (web, db):
        result = ssh(host, "id -un; ip -4 -o addr show dev eth0", tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("root\n")
        assert f" {host.address}/24 " in result.stdout


def test_a_file_in_a_private_tmp_is_seen_only_by_its_host(web, db, tmp_path):
    name = f"/tmp/lab-proof-{os.getpid()}"
    web.write_file(name, "only on web\n")
    web.write_file("/var/log/messages", "kernel: web's own log\n")

    assert ssh(web, f"cat {name} /var/log/messages", tmp_path=tmp_path).stdout == "only on web\nkernel: web's own log\n"
    on_db = ssh(db, f"cat {name}", tmp_path=tmp_path)
    assert on_db.returncode == 1 and "No such file" in on_db.stderr
    assert not Path(name).exists()


def test_a_host_with_its_own_pids_lists_only_its_own_sshd_tree(web, db, tmp_path):
    listing = ssh(web, "ps -e -o pid=,comm=", tmp_path=tmp_path).stdout.split("\n")
    commands = {line.split()[1] for line in listing if line.strip()}
    assert commands <= {"python", "python3", "sshd", "bash", "ps"}, listing
    assert len(listing) < 10, listing
    assert "reaper.py" in ssh(web, "tr '\\0' ' ' < /proc/1/cmdline", tmp_path=tmp_path).stdout
    # Without its own PID namespace a host sees the whole machine, this test process included.
    assert str(os.getpid()) in ssh(db, "ps -e -o pid=", tmp_path=tmp_path).stdout.split()


def test_hosts_reach_each_other_and_the_bridge_but_have_no_route_out(lab, web, db):
    banner = db.run("bash", "-c", f"exec 3<>/dev/tcp/{web.address}/22; head -c 8 <&3").stdout
    assert banner == "SSH-2.0-"

    with socket.create_server((lab.bridge_address, 0)) as server:
        port = server.getsockname()[1]
        web.run("bash", "-c", f"exec 3<>/dev/tcp/{lab.bridge_address}/{port}; echo hello-root >&3")
        conn, (peer, _) = server.accept()
        with conn:
            assert peer == web.address
            assert conn.recv(100) == b"hello-root\n"

    routes = web.run("ip", "-4", "route").stdout.splitlines()
    assert len(routes) == 1 and routes[0].startswith(f"{lab.subnet} dev eth0 "), routes


def test_a_script_in_a_noexec_tmp_cannot_run_over_ssh(lab, web, tmp_path):
    noexec = lab.add_host("noexec", tmp_noexec=True)
    for host in (noexec, web):
        host.write_file("/tmp/hello.sh", "#!/bin/sh\necho hello\n", mode=0o755)

    refused = ssh(noexec, "/tmp/hello.sh", tmp_path=tmp_path)
    assert refused.returncode == 126 and "Permission denied" in refused.stderr
    assert ssh(web, "/tmp/hello.sh", tmp_path=tmp_path).stdout == "hello\n"


def test_drop_syn_turns_connects_into_timeouts(lab_host):
    connect(lab_host, 22).close()
    lab_host.drop_syn()

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connect(lab_host, 22, timeout=1.5)
    assert time.monotonic() - started >= 1.4

    lab_host.restore_network()
    connect(lab_host, 22).close()


def test_serve_silence_accepts_and_never_sends_a_byte(lab_host):
    lab_host.serve_silence(2222)
    with connect(lab_host, 2222) as conn:
        conn.settimeout(1)
        with pytest.raises(TimeoutError):
            conn.recv(1)


def test_serve_banner_then_silence_sends_one_banner_line_then_nothing(lab_host):
    lab_host.serve_banner_then_silence(2200)
    with connect(lab_host, 2200) as conn:
        conn.settimeout(1)
        received = b""
        while not received.endswith(b"\n"):
            received += conn.recv(100)
        assert received == FAKE_BANNER == b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
        conn.sendall(b"SSH-2.0-client\r\n" + b"\0" * 1000)  # nobody reads it, and nothing comes back
        with pytest.raises(TimeoutError):
            conn.recv(1)


def test_a_rotated_host_key_is_refused_by_a_client_that_pinned_the_old_one(lab_host, tmp_path):
    old_fingerprint = lab_host.host_key_fingerprint
    pinned_old = lab_host.write_known_hosts(tmp_path / "pinned_old")
    assert (
        old_fingerprint
        in subprocess.run(["ssh-keygen", "-lf", str(pinned_old)], capture_output=True, text=True, check=True).stdout
    )

    lab_host.rotate_host_key()

    assert lab_host.host_key_fingerprint != old_fingerprint
    refused = subprocess.run(
        lab_host.ssh_argv("true", known_hosts=pinned_old), capture_output=True, text=True, timeout=15, check=False
    )
    assert refused.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    assert "Host key verification failed" in refused.stderr
    assert ssh(lab_host, "true", tmp_path=tmp_path).returncode == 0


def test_kill_sshd_drops_a_running_session(lab_host, tmp_path):
    known_hosts = lab_host.write_known_hosts(tmp_path / "known_hosts")
    session = subprocess.Popen(
        lab_host.ssh_argv("sleep 30", known_hosts=known_hosts),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: lab_host.processes(r"^sleep 30$"))

        lab_host.kill_sshd()

        _, stderr = session.communicate(timeout=5)
    finally:
        session.kill()
        session.wait()
    assert session.returncode == 255
    assert "closed by remote host" in stderr or "Broken pipe" in stderr, stderr
    # SIGKILL is sent to the whole tree at once; the kernel takes its time to finish them on a busy machine.
    eventually(lambda: lab_host.processes("sleep|sshd") == [])
    with pytest.raises(ConnectionRefusedError):
        connect(lab_host, 22)

    lab_host.start_sshd()
    assert ssh(lab_host, "true", tmp_path=tmp_path).returncode == 0


def test_the_password_user_logs_in_with_its_password_and_root_with_the_encrypted_key(lab_host):
    with pinned_client(lab_host) as client:
        client.connect(
            lab_host.address,
            username=lab_host.user,
            password=lab_host.password,
            timeout=5,
            look_for_keys=False,
            allow_agent=False,
        )
        _, stdout, _ = client.exec_command("id -un")
        assert stdout.read() == f"{lab_host.user}\n".encode()

    with pinned_client(lab_host) as client, pytest.raises(paramiko.AuthenticationException):
        client.connect(
            lab_host.address,
            username=lab_host.user,
            password="not-the-password",
            timeout=5,
            look_for_keys=False,
            allow_agent=False,
        )

    with pinned_client(lab_host) as client:
        client.connect(
            lab_host.address,
            username="root",
            key_filename=str(lab_host.client_key_encrypted_path),
            passphrase=lab_host.client_key_passphrase,
            timeout=5,
            look_for_keys=False,
            allow_agent=False,
        )
        _, stdout, _ = client.exec_command("id -un")
        assert stdout.read() == b"root\n"


def test_use_dns_with_a_blackholed_resolver_slows_logins_down(lab, tmp_path):
    blackhole = lab.add_host("blackhole", start_sshd=False)
    blackhole.drop_dns()
    resolv_conf = f"nameserver {blackhole.address}\noptions timeout:3 attempts:1\n"
    fast = lab.add_host("dns-no", resolv_conf=resolv_conf)
    slow = lab.add_host("dns-yes", resolv_conf=resolv_conf, sshd_options={"UseDNS": "yes"})
    assert slow.run("cat", "/etc/resolv.conf").stdout == resolv_conf

    def login_seconds(host: Host) -> float:
        # In 2 of about 9 full parallel runs the UseDNS sshd closed the connection right after logging
        # "Connection from", with nothing else in its log, and never when the test ran alone or beside
        # busy loops. What this test proves is the lab's delay, measured on a login that succeeds, so a
        # login closed that way is tried once more (what both attempts logged is shown if both fail).
        for attempt in (1, 2):
            started = time.monotonic()
            result = ssh(host, "true", tmp_path=tmp_path)
            if result.returncode == 0:
                return time.monotonic() - started
            if attempt == 1 and "Connection closed by" in result.stderr:
                continue
        raise AssertionError(f"{result.stderr}\nsshd:\n{host.sshd_log()[-3000:]}")

    fast_seconds, slow_seconds = login_seconds(fast), login_seconds(slow)
    print(f"login with UseDNS no: {fast_seconds:.2f} s, with UseDNS yes: {slow_seconds:.2f} s")
    assert slow_seconds - fast_seconds >= 2, (fast_seconds, slow_seconds)


def test_teardown_leaves_no_namespace_link_or_process_behind(tmp_path):
    with Lab() as doomed:
        one = doomed.add_host("one", private_tmp=True, own_pids=True)
        two = doomed.add_host("two", resolv_conf="nameserver 127.0.0.1\n")
        two.serve_silence(2222)
        session = subprocess.Popen(
            one.ssh_argv("sleep 60", known_hosts=one.write_known_hosts(tmp_path / "kh")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(lambda: one.processes("^sleep 60$"))
        started = {
            pid: process_start(pid)
            for host in (one, two)
            for pid in (int(line.split()[0]) for line in host.processes("."))
        }
        assert len(started) >= 5
        assert Path(f"/etc/netns/{two.namespace}/resolv.conf").exists()
    session.wait(timeout=5)
    doomed.teardown()  # a second time is harmless

    assert doomed.prefix not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert doomed.prefix not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    assert doomed.prefix not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [pid for pid, start in started.items() if process_start(pid) == start]
    assert not doomed.dir.exists()
    assert not Path(f"/etc/netns/{two.namespace}").exists()


def test_cleanup_stale_removes_what_a_crashed_run_left_and_spares_live_labs(lab, web):
    # Its own prefix, so no other pytest-xdist worker's Lab() cleans it up first.
    prefix = f"cr{os.getpid()}"
    crashed = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time; from tests.lab import Lab; lab = Lab({prefix!r}); "
            "lab.add_host('orphan', own_pids=True).serve_silence(2222); print('up', flush=True); time.sleep(60)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    with crashed:
        assert crashed.stdout.readline() == "up\n"
        assert leftovers(prefix)
        crashed.kill()

    removed = cleanup_stale(prefix)

    assert leftovers(prefix) == []
    assert any(prefix in item for item in removed)
    assert not any(lab.prefix in item for item in removed)
    assert web.processes("sshd")
