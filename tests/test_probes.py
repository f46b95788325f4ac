"""Probes build bounded, read-only sh commands from strictly validated parameters.

Safety is shown, not assumed: built commands are parsed by `sh -n`, and run for
real here with stand-ins for strace and tcpdump that print the arguments they
received, so a value that passed validation is seen arriving as one intact
argument. Nothing here captures packets or traces a process.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnostics import playbooks
from diagnostics.probes import KINDS, LOG_PATHS, MAX_TIMEOUT, REGISTRY, Param, ProbeCommand, ProbeError, build
from diagnostics.probes import shell as probe_shell
from diagnostics.probes.bpf import MAX_LENGTH as BPF_MAX_LENGTH
from diagnostics.ssh import remote_wrapper

# What the probes that refuse to run without a parameter need at minimum.
REQUIRED = {"strace": {"process": "tcpserver"}, "log_tail": {"log_path": "/var/log/maillog"}}

# Characters that would let a value escape its argument if it were ever pasted unquoted.
DANGEROUS = set("'\"`$\\;\n\r\0")


def minimal(name: str) -> dict:
    return dict(REQUIRED.get(name, {}))


def sh_parses(command: str) -> bool:
    """`sh -n` reads the command without executing anything."""
    return subprocess.run(["sh", "-n", "-c", command], capture_output=True, check=False).returncode == 0


def run(command: ProbeCommand, *, env: dict | None = None, timeout: float | None = None):
    started = time.monotonic()
    result = subprocess.run(
        ["sh", "-c", command.command],
        capture_output=True,
        env=env,
        timeout=timeout or command.timeout,
        check=False,
    )
    return result, time.monotonic() - started


def echo_tool(directory: Path, name: str, *, sleep: int = 0) -> None:
    """A stand-in for `name` that prints each argument it was given on its own line."""
    body = 'for a in "$@"; do printf "arg:%s\\n" "$a"; done\n'
    if sleep:
        body += f"exec sleep {sleep}\n"
    (directory / name).write_text("#!/bin/sh\n" + body)
    (directory / name).chmod(0o755)


def args_seen(stdout: bytes) -> list[str]:
    return [line[4:] for line in stdout.decode().splitlines() if line.startswith("arg:")]


# -- every probe ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_probe_builds_with_its_defaults_into_one_bounded_line_sh_can_parse(name):
    command = build(name, minimal(name))

    assert isinstance(command, ProbeCommand)
    assert command.command.strip()
    assert "\n" not in command.command
    assert 1 <= command.timeout <= MAX_TIMEOUT
    assert command.output_cap > 0
    assert sh_parses(command.command)


def test_the_registry_holds_every_probe_the_design_names():
    assert {
        "processes", "sockets", "listening", "fd_usage", "mounts", "kernel_log", "system_log", "log_tail",
        "mail_log", "resolvers", "sshd_config", "strace", "tcpdump", "service_settings", "disk", "memory", "load",
    } <= set(REGISTRY)  # fmt: skip


def test_every_probe_describes_itself_and_its_parameters_for_the_forms():
    for probe in REGISTRY.values():
        assert probe.title and probe.description
        for param in probe.params:
            assert param.kind in KINDS and param.help


@pytest.mark.parametrize(("name", "param"), [("strace", "process"), ("log_tail", "log_path")])
def test_a_probe_refuses_to_build_without_its_required_parameter(name, param):
    with pytest.raises(ProbeError, match=rf"^{param}: required") as error:
        build(name)
    assert error.value.param == param


def test_an_unknown_probe_is_a_probe_error():
    with pytest.raises(ProbeError, match="no probe called 'rm'"):
        build("rm", {})


def test_an_unknown_parameter_is_a_probe_error_naming_it():
    with pytest.raises(ProbeError, match=r"^verbose: not a parameter of the sockets probe") as error:
        build("sockets", {"verbose": 1})
    assert error.value.param == "verbose"


def test_parameters_must_come_as_a_mapping():
    with pytest.raises(ProbeError, match="name/value pairs"):
        build("processes", ["lines", 5])  # type: ignore[arg-type]


def test_defaults_are_filled_in_when_validating():
    assert REGISTRY["strace"].validate({"process": "tcpserver"}) == {
        "process": "tcpserver",
        "seconds": 15,
        "syscalls": "connect,accept,accept4,read,write,sendto,recvfrom,poll,ppoll,select,pselect6,"
        "epoll_wait,epoll_pwait,epoll_ctl,close",
    }
    assert REGISTRY["fd_usage"].validate({"process": ""}) == {"process": None}


def test_only_the_packet_capture_is_binary_and_it_may_keep_megabytes():
    assert [name for name, probe in REGISTRY.items() if probe.binary] == ["tcpdump"]
    assert build("tcpdump").output_cap >= 10 * 1024 * 1024


@pytest.mark.parametrize("name", ["strace", "tcpdump"])
def test_a_capture_is_allowed_its_window_plus_slack(name):
    assert build(name, {**minimal(name), "seconds": 60}).timeout == 70
    assert build(name, {**minimal(name), "seconds": 1}).timeout == 11


# -- parameter kinds, table-driven -------------------------------------------------------------------------

GOOD = {
    "process": ["tcpserver", "qmail-smtpd", "php-fpm7.4", "varnishd", "postfix@smtp", "c++", "a" * 64],
    "port": [1, 25, 113, 65535],
    "interface": ["any", "eth0", "ens3", "bond0.12", "eth0:1", "br-1a2b3c4d5e6f"],
    "seconds": [1, 20, 60],
    "count": [1, 1000, 10000],
    "lines": [1, 300, 5000],
    "log_path": list(LOG_PATHS),
    "bpf": [
        "tcp port 113",
        "host 10.0.0.1 and (tcp port 25 or tcp port 113)",
        "tcp[tcpflags] & (tcp-syn|tcp-rst) != 0",
        "src net 192.168.0.0/16 and not dst port 22",
        "ip6 and host 2001:db8::1",
        "udp portrange 1024-2048",
        "tcp[13:1] & 0x12 = 0x12",
        "icmp[icmptype] = icmp-echo or less 64",
    ],
    "syscalls": ["connect", "connect,poll", "%network", "%network,connect", "accept4,recvfrom", "file"],
    "host": ["mail.example.com", "example.com.", "_dmarc.example.com", "localhost", "10.0.0.1", "2001:db8::1"],
}

BAD = {
    "process": ["-9", "--help", "tcp server", "a;b", "$(reboot)", "a" * 65, "tcp\nserver", "tcpserver\n", "pä"],
    "port": [0, 65536, -1, True, "25", 25.0],
    "interface": ["-i", "--help", "eth0;", "a" * 16, "eth 0", "eth0\n", "eth0/1"],
    "seconds": [0, 61, -5, True, False, "10", 1.5],
    "count": [0, 10001, True, "100"],
    "lines": [0, 5001, False, "50"],
    "log_path": ["/etc/shadow", "/var/log/../../etc/shadow", "/var/log/messages ", "/var/log/messages\n",
                 "-o/etc/passwd", "var/log/messages", "/var/log/*"],
    "bpf": ["port 25; reboot", "$(x)", "`id`", "tcp port 113 '", '"', "host mail.example.com", "-w /tmp/x",
            "tcp port 113)", "(tcp port 113", "port 25 | rm", "portrange 100-1", "tcp port 113\n",
            "tcp\tport 113", "host 10.0.0.300", "tcp port 25 or " * 20 + "tcp port 113", "   "],
    "syscalls": ["connect;id", "%bogus", "Connect", "connect,,poll", "-e", "a" * 33, "connect poll", "connect\n"],
    "host": ["-x", "--help", "a..b", "exa mple.com", "$(id).example.com", "1.2.3.999", "fe80::1%eth0",
             "a" * 64 + ".com", "example.com\n", "é.example"],
}  # fmt: skip


def kind_param(kind: str) -> Param:
    return Param(f"the_{kind}", kind, required=True, help="help")


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, values in GOOD.items() for v in values])
def test_each_parameter_kind_accepts_good_values(kind, value):
    cleaned = kind_param(kind).clean(value)
    assert cleaned is not None
    assert not DANGEROUS & set(str(cleaned))


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, values in BAD.items() for v in values])
def test_each_parameter_kind_rejects_bad_values_naming_the_parameter(kind, value):
    with pytest.raises(ProbeError, match=rf"^the_{kind}: ") as error:
        kind_param(kind).clean(value)
    assert error.value.param == f"the_{kind}"


def test_every_parameter_kind_is_covered_by_the_tables():
    assert set(GOOD) == set(BAD) == set(KINDS)


@pytest.mark.parametrize("kind", ["port", "seconds", "count", "lines"])
def test_whole_number_kinds_refuse_booleans_text_and_fractions(kind):
    for value in (True, False, "10", 10.0, b"10", [10]):
        with pytest.raises(ProbeError, match="must be a whole number"):
            kind_param(kind).clean(value)


@pytest.mark.parametrize("kind", ["process", "interface", "log_path", "bpf", "syscalls", "host"])
def test_text_kinds_refuse_numbers_bytes_and_lists(kind):
    for value in (7, 1.0, b"eth0", ["eth0"], {"x": 1}):
        with pytest.raises(ProbeError, match="must be text"):
            kind_param(kind).clean(value)


def test_a_probe_error_from_a_real_probe_names_the_parameter_and_the_range():
    with pytest.raises(ProbeError, match=r"^seconds: must be from 1 to 60 seconds, not 90$") as error:
        build("strace", {"process": "tcpserver", "seconds": 90})
    assert error.value.param == "seconds"


def test_optional_text_left_blank_means_the_default():
    assert build("fd_usage", {"process": ""}) == build("fd_usage")
    assert build("tcpdump", {"bpf": None}) == build("tcpdump")


def test_a_capture_filter_is_respaced_from_its_tokens():
    cleaned = kind_param("bpf").clean("tcp[tcpflags]&(tcp-syn|tcp-rst)!=0")
    assert cleaned == "tcp[tcpflags] & (tcp-syn | tcp-rst) != 0"


def test_a_capture_filter_over_the_length_limit_is_refused():
    with pytest.raises(ProbeError, match="limit is"):
        kind_param("bpf").clean("tcp port 25 " + " " * BPF_MAX_LENGTH)


def test_syscall_lists_are_normalised_and_deduplicated():
    assert kind_param("syscalls").clean("connect, poll,connect") == "connect,poll"


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump (CI installs it)")
@pytest.mark.parametrize("bpf", GOOD["bpf"])
def test_accepted_capture_filters_compile_in_tcpdump(bpf, tmp_path):
    # -d only compiles the filter; an empty cooked-capture file stands in for `-i any`.
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 113))
    cleaned = kind_param("bpf").clean(bpf)
    result = subprocess.run(["tcpdump", "-d", "-r", str(empty), "--", cleaned], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr


# -- injection --------------------------------------------------------------------------------------------

INJECTIONS = [
    "; rm -rf /",
    "$(reboot)",
    "`id`",
    "a\nb",
    "x' ; id; '",
    "--help",
    "-o/etc/passwd",
    "tcpserver\x00",
    "tcpserver\n",
    "a|b",
    "a && b",
    ">x",
    "<x",
    "*",
    "${IFS}",
    '"quoted"',
    "eth0 -w /tmp/x",
]

TEXT_SLOTS = [(probe.name, param.name) for probe in REGISTRY.values() for param in probe.params]


@pytest.mark.parametrize(("name", "param"), TEXT_SLOTS)
@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_attempts_are_refused_by_every_parameter(name, param, payload):
    with pytest.raises(ProbeError) as error:
        build(name, {**minimal(name), param: payload})
    assert error.value.param == param


SHELLISH = st.sampled_from(
    [";", "|", "&", "$(", "${", "`", "\n", "\r", "'", '"', ">", "<", "*", "?", " ", "\t", "\0", "\\", "(", ")",
     "[", "]", "!", "#", "~", "-", "--", "=", "%", ",", ".", ":", "/", "@", "+", "a", "Z", "0", "9", "tcp", " port ",
     "113", " and ", "host ", "10.0.0.1", "connect", "eth0", "any", "tcp-syn", "&&", "!=", "é"]
)  # fmt: skip
TEXTS = st.one_of(st.lists(SHELLISH, max_size=10).map("".join), st.text(max_size=24))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=TEXTS)
def test_any_text_is_refused_or_lands_single_quoted_in_a_command_sh_can_parse(value):
    for name, param in TEXT_SLOTS:
        probe = REGISTRY[name]
        raw = {**minimal(name), param: value}
        try:
            command = probe.build(raw)
        except ProbeError as error:
            assert error.param == param
            continue
        cleaned = probe.validate(raw)[param]
        if cleaned is None:  # blank text: the default applies
            continue
        assert isinstance(cleaned, (str, int))
        assert not DANGEROUS & set(str(cleaned)), cleaned
        assert not str(cleaned).startswith("-")
        assert shlex.quote(str(cleaned)) in command.command
        assert sh_parses(command.command)


@settings(max_examples=150, deadline=None)
@given(value=st.one_of(st.integers(), st.booleans(), st.floats(), st.text(max_size=6), st.none()))
def test_any_number_is_refused_or_lands_within_bounds(value):
    for probe in REGISTRY.values():
        for param in probe.params:
            if not param.integer:
                continue
            try:
                command = probe.build({**minimal(probe.name), param.name: value})
            except ProbeError as error:
                assert error.param == param.name
                continue
            cleaned = probe.validate({**minimal(probe.name), param.name: value})[param.name]
            if cleaned is None:  # an optional number left out, as the sockets port filter may be
                assert param.default is None and not param.required
                continue
            low, high = param.bounds
            assert type(cleaned) is int and low <= cleaned <= high
            assert str(cleaned) in command.command


# -- running the commands here (with stand-ins for the capture tools) --------------------------------------


def path_with(directory: Path) -> dict:
    return {**os.environ, "PATH": f"{directory}:/usr/bin:/bin"}


@pytest.fixture
def bare_path(tmp_path, monkeypatch):
    """A PATH holding only sh and a few basics, and no sbin directories appended."""
    monkeypatch.setattr(probe_shell, "SBIN_DIRS", ())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "cat", "echo", "timeout", "printf"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return {"PATH": str(bin_dir), "LC_ALL": "C"}


@pytest.mark.parametrize(("name", "tool"), [("tcpdump", "tcpdump"), ("strace", "strace")])
def test_a_missing_capture_tool_is_a_recorded_result_with_status_127(name, tool, bare_path):
    result, _ = run(build(name, minimal(name)), env=bare_path)

    assert result.stdout == f"probe: {tool} not installed\n".encode()
    assert result.returncode == 127


def test_a_capture_filter_reaches_tcpdump_whole_after_double_dash(tmp_path):
    echo_tool(tmp_path, "tcpdump")
    bpf = "host 10.0.0.1 and (tcp port 25 or tcp port 113)"
    env = path_with(tmp_path)
    env.pop("SSH_CONNECTION", None)

    result, _ = run(build("tcpdump", {"bpf": bpf, "seconds": 5, "count": 50, "interface": "eth0"}), env=env)

    assert result.returncode == 0
    assert args_seen(result.stdout) == ["-i", "eth0", "-s", "0", "-U", "-w", "-", "-c", "50", "--", bpf]


def test_the_capture_leaves_out_our_own_ssh_session(tmp_path):
    echo_tool(tmp_path, "tcpdump")
    env = {**path_with(tmp_path), "SSH_CONNECTION": "192.0.2.7 51234 198.51.100.1 22"}

    with_filter, _ = run(build("tcpdump", {"bpf": "tcp port 113"}), env=env)
    without, _ = run(build("tcpdump"), env=env)

    own = "not (host 192.0.2.7 and tcp port 51234 and tcp port 22)"
    assert args_seen(with_filter.stdout)[-1] == f"(tcp port 113) and {own}"
    assert args_seen(without.stdout)[-2:] == ["--", own]


def test_a_capture_ends_with_its_window_and_reports_success(tmp_path):
    echo_tool(tmp_path, "tcpdump", sleep=60)
    command = build("tcpdump", {"seconds": 1})

    # Within its bound: `run` waits command.timeout at most (TimeoutExpired fails the test), and a capture
    # cut off there would not exit 0.
    result, _ = run(command, env=path_with(tmp_path))

    assert result.returncode == 0


BPF_PIECES = st.sampled_from(
    ["tcp", "udp", "port", "113", "25", "and", "or", "not", "(", ")", "&", "|", "!", "!=", "<", ">", "*", "-",
     "tcp[tcpflags]", "tcp-syn", "tcp-rst", "10.0.0.1", "2001:db8::1", "host", "0x12", "portrange", "1-1024"]
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(BPF_PIECES, min_size=1, max_size=9))
def test_a_filter_full_of_shell_metacharacters_still_arrives_as_one_argument(pieces, tmp_path):
    # Filters legitimately hold & | ( ) ! < > *: run the real command line and watch what tcpdump receives.
    try:
        command = build("tcpdump", {"bpf": " ".join(pieces), "seconds": 1})
    except ProbeError:
        return
    if not (tmp_path / "tcpdump").exists():
        echo_tool(tmp_path, "tcpdump")
    env = path_with(tmp_path)
    env.pop("SSH_CONNECTION", None)

    result, _ = run(command, env=env)

    assert args_seen(result.stdout)[-2:] == ["--", REGISTRY["tcpdump"].validate({"bpf": " ".join(pieces)})["bpf"]]


@pytest.fixture
def sleepers(tmp_path):
    """Two processes with a name nothing else on this host has, and one whose name is over 15 characters."""
    short = tmp_path / "probe-sleeper"
    long = tmp_path / "probe-sleeper-with-a-long-name"
    for path in (short, long):
        shutil.copy(shutil.which("sleep"), path)
    procs = [subprocess.Popen([str(short), "60"]) for _ in range(2)] + [subprocess.Popen([str(long), "60"])]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def traced_pids(stdout: bytes) -> set[int]:
    args = args_seen(stdout)
    return {int(args[i + 1]) for i, arg in enumerate(args) if arg == "-p"}


def test_strace_attaches_to_every_process_with_exactly_that_name(tmp_path, sleepers):
    tools = tmp_path / "tools"
    tools.mkdir()
    echo_tool(tools, "strace")

    result, _ = run(build("strace", {"process": "probe-sleeper", "seconds": 2}), env=path_with(tools))

    assert result.returncode == 0
    assert traced_pids(result.stdout) == {sleepers[0].pid, sleepers[1].pid}
    args = args_seen(result.stdout)
    assert args[:5] == [
        "-f",
        "-tt",
        "-T",
        "-e",
        "trace=connect,accept,accept4,read,write,sendto,recvfrom,poll,ppoll,select,pselect6,"
        "epoll_wait,epoll_pwait,epoll_ctl,close",
    ]
    assert result.stdout.startswith(b"probe: tracing 2 process(es) named probe-sleeper\n")


def test_strace_finds_a_process_whose_name_the_kernel_truncated(tmp_path, sleepers):
    tools = tmp_path / "tools"
    tools.mkdir()
    echo_tool(tools, "strace")

    result, _ = run(build("strace", {"process": "probe-sleeper-with-a-long-name", "seconds": 1}), env=path_with(tools))

    assert traced_pids(result.stdout) == {sleepers[2].pid}


def test_strace_says_so_when_no_process_has_that_name(tmp_path):
    echo_tool(tmp_path, "strace")

    result, _ = run(build("strace", {"process": "no-such-daemon", "seconds": 1}), env=path_with(tmp_path))

    assert result.stdout == b"probe: no process named no-such-daemon\n"
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("mounts", b"==> /proc/self/mountinfo <==\n"),
        ("memory", b"MemTotal:"),
        ("load", b"==> /proc/loadavg <==\n"),
        ("disk", b"==> df -PT <==\n"),
        ("sockets", b"==> "),
        ("fd_usage", b"\npid name open soft_limit\n"),
    ],
)
def test_read_only_probes_really_run_on_linux(name, expect):
    result, _ = run(build(name))

    assert result.returncode == 0, result.stderr
    assert expect in result.stdout


def test_fd_usage_counts_this_process_against_its_own_soft_limit():
    comm = Path("/proc/self/comm").read_text().strip()
    # Run it as the product does, under the `timeout` wrapper: the probe skips its own
    # parent, which would otherwise be this test process.
    command = build("fd_usage", {"process": comm})
    result = subprocess.run(
        ["sh", "-c", remote_wrapper(command.command, command.timeout)],
        capture_output=True,
        timeout=command.timeout,
        check=False,
    )

    mine = [line.split() for line in result.stdout.decode().splitlines() if line.startswith(f"{os.getpid()} ")]
    assert len(mine) == 1
    _pid, *_, open_fds, soft = mine[0]
    assert int(open_fds) >= 3
    assert int(soft) == resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_log_tail_says_so_when_the_file_is_missing():
    if Path("/var/log/qmail/current").exists():
        pytest.skip("this host has a qmail log")
    result, _ = run(build("log_tail", {"log_path": "/var/log/qmail/current"}))
    assert (result.stdout, result.returncode) == (b"probe: /var/log/qmail/current does not exist\n", 1)


DEAD_RESOLVERS = """
ip link set lo up
ip link add v0 type veth peer name v1
ip link set v0 up; ip link set v1 up
ip addr add 198.51.100.1/24 dev v0
ip route add default via 198.51.100.9 dev v0
for h in 2 3 4 9; do ip neigh add 198.51.100.$h lladdr 02:00:00:00:00:0$h dev v0 nud permanent; done
printf 'nameserver 198.51.100.2\\nnameserver 198.51.100.3\\nnameserver 198.51.100.4\\n' > "$1/resolv.conf"
mount --bind "$1/resolv.conf" /etc/resolv.conf
exec sh -c "$2"
"""


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_resolvers_finishes_within_its_timeout_when_every_nameserver_is_silent(tmp_path):
    # A network namespace whose nameservers swallow every packet: the worst case for a resolver probe.
    # Run as on a host, under its own `timeout -k`: a probe still asking when its timeout comes is killed
    # there and exits 124, so exit 0 with the TIMEOUT line is the probe ending inside its bound by itself.
    command = build("resolvers", {"host": "mail.example.com"})
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--net",
            "sh",
            "-c",
            DEAD_RESOLVERS,
            "sh",
            str(tmp_path),
            remote_wrapper(command.command, command.timeout),
        ],
        capture_output=True,
        timeout=command.timeout + 10,
        check=False,
    )

    output = result.stdout.decode()
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert "resolver system " in output and output.rstrip().endswith("TIMEOUT via getent")
    if shutil.which("dig") or shutil.which("host") or shutil.which("nslookup"):
        assert output.count(" ms TIMEOUT") == 4, output


REFUSING_RESOLVERS = """
ip link set lo up
printf 'nameserver 127.0.0.1 # nothing listens on :53 here\\nnameserver 127.0.0.2\\n' > "$1/resolv.conf"
mount --bind "$1/resolv.conf" /etc/resolv.conf
exec sh -c "$2"
"""


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
@pytest.mark.skipif(shutil.which("dig") is None, reason="needs dig")
def test_a_nameserver_with_nothing_listening_is_a_fast_refusal_not_a_timeout(tmp_path):
    # dig exits 9 ("no reply") both on a timeout and on ICMP port unreachable: the words and the
    # time tell them apart, and the line says which tool measured it.
    command = build("resolvers", {"host": "mail.example.com"})
    result = subprocess.run(
        ["unshare", "--mount", "--net", "sh", "-c", REFUSING_RESOLVERS, "sh", str(tmp_path), command.command],
        capture_output=True,
        timeout=command.timeout + 5,
        check=False,
    )

    output = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in output.splitlines() if line.startswith("nameserver ") and " ms " in line]
    # The lookups run at once, so their lines come in the order they finish.
    assert sorted((f[1], f[4], f[5:]) for f in lines) == [
        ("127.0.0.1", "CONNREFUSED", ["via", "dig"]),
        ("127.0.0.2", "CONNREFUSED", ["via", "dig"]),
    ], output
    assert " TIMEOUT" not in output
    assert re.search(r"^resolver system \d+ ms \w+ via getent$", output, re.M), output


# -- playbooks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("playbook", playbooks.DEFAULT_PLAYBOOKS, ids=lambda p: p["name"])
def test_every_default_playbook_validates_and_builds(playbook):
    cleaned = playbooks.validate_playbook(playbook)
    assert cleaned["steps"]
    for step in cleaned["steps"]:
        assert build(step["probe"], step["params"]).command


def test_the_default_playbooks_cover_the_field_stories():
    names = {p["name"] for p in playbooks.DEFAULT_PLAYBOOKS}
    assert {"Mail is slow to send", "Connections piling up", "Slow logins", "Host health"} <= names


def test_the_slow_mail_playbook_watches_port_113():
    slow_mail = next(p for p in playbooks.DEFAULT_PLAYBOOKS if p["name"] == "Mail is slow to send")
    steps = {s["probe"]: s["params"] for s in slow_mail["steps"]}
    assert steps["strace"]["process"] == "tcpserver"
    assert "tcp port 113" in steps["tcpdump"]["bpf"]


def test_validating_steps_fills_in_defaults():
    assert playbooks.validate_steps([{"probe": "kernel_log"}]) == [{"probe": "kernel_log", "params": {"lines": 300}}]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"probe": "load"}, {"probe": "reboot", "params": {}}], r"^step 2: probe: no probe called 'reboot'"),
        ([{"probe": "load"}, {"probe": "strace", "params": {}}], r"^step 2 \(strace\): process: required"),
        ([{"probe": "strace", "params": {"process": "$(id)"}}], r"^step 1 \(strace\): process: "),
        ([{"probe": "load", "params": {"lines": 5}}], r"^step 1 \(load\): lines: not a parameter"),
        ([{"probe": "load"}, {"params": {}}], r"^step 2: probe: say which probe"),
        ([{"probe": "load", "when": "now"}], r"^step 1: unexpected when"),
        (["load"], r"^step 1: must name a probe"),
    ],
)
def test_a_bad_step_is_a_probe_error_naming_the_step(steps, message):
    with pytest.raises(ProbeError, match=message) as error:
        playbooks.validate_steps(steps)
    assert error.value.step == int(message.split()[1].rstrip(":"))


@pytest.mark.parametrize("steps", [[], "load", None, [{"probe": "load"}] * (playbooks.MAX_STEPS + 1)])
def test_a_playbook_needs_a_bounded_list_of_steps(steps):
    with pytest.raises(ProbeError, match=r"^steps: "):
        playbooks.validate_steps(steps)


def test_probe_commands_are_frozen_plain_data():
    command = build("load")
    assert command == ProbeCommand(command=command.command, timeout=15, output_cap=1024 * 1024, binary=False, waits=1)
    with pytest.raises(AttributeError):
        command.timeout = 99  # type: ignore[misc]
