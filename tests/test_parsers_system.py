"""Host facts from real outputs: mounts, file descriptors, processes, disk, memory, load, interfaces, sshd."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.parsers import facts_for
from diagnostics.parsers.mounts import parse_mounts, unescape
from diagnostics.parsers.processes import program_name

FIXTURES = Path(__file__).parent / "fixtures"


def facts(probe: str, name: str) -> dict:
    return facts_for(probe, (FIXTURES / probe / name).read_bytes())


def test_tmp_is_mounted_noexec_and_nosuid():
    mounts = facts("mounts", "tmp_noexec.txt")["mounts"]
    tmp = [m for m in mounts if m["mountpoint"] == "/tmp"][-1]
    assert tmp["noexec"] and tmp["nosuid"] and not tmp["readonly"]
    assert (tmp["fstype"], tmp["source"], tmp["options"]) == ("tmpfs", "trlab-tmp", "rw,nosuid,nodev,noexec,relatime")
    root = next(m for m in mounts if m["mountpoint"] == "/")
    assert not root["noexec"] and "resuid=65534" in root["options"] and root["line_no"] == 2


def test_superblock_options_count_and_escapes_are_decoded():
    text = ("==> /proc/self/mountinfo <==\n"
            "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root ro,errors=continue\n"
            "37 35 0:5 / /tmp rw shared:5 - tmpfs tmpfs rw,size=10k\n")  # fmt: skip
    spaced, tmp = parse_mounts(text)
    assert spaced["mountpoint"] == "/mnt/with space" and spaced["readonly"] and spaced["line_no"] == 2
    assert tmp["options"] == "rw,size=10k" and not tmp["noexec"]
    assert unescape("/a\\x20b") == "/a b"


def test_findmnt_is_read_when_there_is_no_mountinfo():
    (tmp,) = parse_mounts("==> findmnt -rno TARGET,SOURCE,FSTYPE,OPTIONS <==\n/tmp tmpfs tmpfs rw,nosuid,noexec\n")
    assert tmp["noexec"] and tmp["nosuid"] and tmp["line_no"] == 2


def test_a_backend_at_its_file_descriptor_limit():
    table = facts("fd_usage", "backend_fd_limit.txt")
    full = table["fd_usage"][0]
    assert (full["pid"], full["process"], full["open"], full["soft_limit"]) == (7, "python3", 32, 32)
    assert full["ratio"] == 1.0
    varnish = next(r for r in table["fd_usage"] if r["process"] == "cache-main")
    assert varnish["open"] == 69 and varnish["soft_limit"] == 20000
    assert table["file_nr"] == [{"allocated": 3247, "unused": 0, "max": 2466193, "used_ratio": 0.001317}]


def test_processes_that_exited_during_the_probe_have_unknown_names_and_limits():
    gone = [r for r in facts("fd_usage", "web.txt")["fd_usage"] if r["process"] is None]
    assert [(r["pid"], r["soft_limit"], r["ratio"]) for r in gone] == [
        (42, 20000, 0.00015), (43, 20000, 0.00015), (46, None, None), (47, None, None)]  # fmt: skip
    assert facts("fd_usage", "no_such_process.txt") == {}


def test_processes_with_threads_age_and_program_names():
    rows = facts("processes", "cache_host.txt")["processes"]
    child = next(r for r in rows if r["pid"] == 23)
    assert (child["ppid"], child["user"], child["stat"], child["nlwp"], child["name"]) == (
        9, "vcache", "SLl", 216, "varnishd")  # fmt: skip
    assert child["etimes"] == 8 and child["rss_kb"] == 11540 and child["line_no"] == 3
    assert next(r for r in rows if r["pid"] == 239)["name"] == "sshd"


def test_ps_aux_fallback_columns():
    text = ("USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND\n"
            "root 2 0.0 0.0 0 0 ? S Nov21 0:00 [kthreadd]\n"
            "qmaild 812 1.5 0.1 4000 900 ? S Nov21 0:09 /usr/bin/tcpserver -v -c 40 0 25 qmail-smtpd\n")  # fmt: skip
    kthread, tcpserver = facts_for("processes", text.encode())["processes"]
    assert kthread["name"] == "[kthreadd]" and kthread["ppid"] is None
    assert (tcpserver["pid"], tcpserver["pcpu"], tcpserver["name"], tcpserver["line_no"]) == (812, 1.5, "tcpserver", 3)
    assert program_name("sshd: root@notty") == "sshd" and program_name("") == ""


def test_disk_space_and_inodes_joined_by_mountpoint():
    rows = {r["mountpoint"]: r for r in facts("disk", "web.txt")["filesystems"]}
    root = rows["/"]
    assert root["fstype"] == "ext4" and root["use_pct"] == 25 and root["inodes_use_pct"] == 4
    assert root["size_kb"] == 264212084 and root["used_kb"] + root["avail_kb"] < root["size_kb"]
    assert rows["/tmp"]["fstype"] == "tmpfs"


def test_inodes_alone_when_df_PT_timed_out():
    text = ("==> df -PT <==\n==> df -Pi <==\n"
            "Filesystem                Inodes  IUsed    IFree IUse% Mounted on\n"
            "/dev/sda1                   1000    990       10   99% /var\n")  # fmt: skip
    (var,) = facts_for("disk", text.encode())["filesystems"]
    assert var["inodes_use_pct"] == 99 and var["size_kb"] is None


def test_memory_in_bytes_and_swap_counters():
    table = facts("memory", "web.txt")
    (memory,) = table["memory"]
    assert memory["mem_total"] == 24684096 * 1024 and memory["swap_total"] == 0
    assert memory["mem_available"] == 23429584 * 1024
    counters = {r["name"]: r["value"] for r in table["vmstat_counters"]}
    assert counters["oom_kill"] == 0 and counters["pswpout"] == 0 and "pgmajfault" in counters


def test_free_alone_still_gives_memory():
    text = ("==> free -b <==\n               total        used        free      shared  buff/cache   available\n"
            "Mem:     1000000  500000  100000 0 400000  450000\nSwap:  2000 1500 500\n")  # fmt: skip
    (memory,) = facts_for("memory", text.encode())["memory"]
    assert (memory["mem_total"], memory["mem_available"], memory["swap_free"]) == (1000000, 450000, 500)


def test_load_and_cpu_count():
    (load,) = facts("load", "web.txt")["load"]
    assert (load["load1"], load["load5"], load["load15"]) == (1.63, 2.6, 4.29)
    assert (load["nproc"], load["running"], load["total_tasks"]) == (2, 1, 227)
    assert (load["run_queue"], load["cpu_iowait"], load["cpu_idle"]) == (1, 0, 97)


def test_interfaces_with_state_counters_and_addresses():
    table = facts("interfaces", "web.txt")
    eth0 = next(r for r in table["interfaces"] if r["name"] == "eth0")
    assert (eth0["state"], eth0["mtu"], eth0["rx_errors"], eth0["tx_dropped"]) == ("UP", 1500, 0, 0)
    assert eth0["rx_packets"] == 80 and eth0["tx_bytes"] == 24113
    assert ("eth0", "inet", "10.213.26.10", 24) in {
        (a["interface"], a["family"], a["address"], a["prefixlen"]) for a in table["addresses"]}  # fmt: skip


def test_sshd_effective_settings_and_config_files():
    settings = {r["name"]: r["value"] for r in facts("sshd_config", "sshd_T.txt")["sshd_settings"]}
    assert settings["usedns"] == "no" and settings["logingracetime"] == "120" and settings["port"] == "22"
    files = facts("sshd_config", "config_files.txt")["sshd_settings"]
    assert ("subsystem", "sftp /usr/lib/openssh/sftp-server") in {(r["name"], r["value"]) for r in files}
    assert {r["file"] for r in files} == {"/etc/ssh/sshd_config"}


def test_a_setting_under_match_is_not_global():
    text = "==> /etc/ssh/sshd_config <==\nUseDNS no\nMatch User backup\n  UseDNS yes\nMatch all\nPort=2222\n"
    rows = facts_for("sshd_config", text.encode())["sshd_settings"]
    assert [(r["name"], r["value"], r["match"], r["line_no"]) for r in rows] == [
        ("usedns", "no", None, 2), ("usedns", "yes", "User backup", 4), ("port", "2222", None, 6)]  # fmt: skip


def _link_table(table: dict) -> dict:
    return {r["name"]: (r["state"], r["mtu"], r["rx_packets"] is not None) for r in table["interfaces"]}


def _address_set(table: dict) -> set:
    return {(a["interface"], a["family"], a["address"], a["prefixlen"]) for a in table["addresses"]}


def test_an_ifconfig_only_host_fills_the_tables_ip_fills():
    """One lab host, the interfaces probe with ip and then with ip hidden (capture.py ifconfig): state, MTU and
    addresses agree. ifconfig cannot see ip's LOWERLAYERDOWN (an up veth whose peer is down): it is DOWN."""
    with_ip = facts("interfaces", "oldnet_ip.txt")
    with_ifconfig = facts("interfaces", "oldnet_ifconfig.txt")
    expected = _link_table(with_ip)
    expected["veth7"] = ("DOWN", 1400, True)
    assert _link_table(with_ifconfig) == expected
    assert expected["lo"][0] == "UNKNOWN" and expected["eth0"][0] == "UP" and expected["veth8"][0] == "DOWN"
    assert _address_set(with_ifconfig) == _address_set(with_ip)
    assert ("veth7", "inet6", "2001:db8:7::5", 64) in _address_set(with_ifconfig)
    lines = (FIXTURES / "interfaces" / "oldnet_ifconfig.txt").read_text().splitlines()
    assert all(a["address"] in lines[a["line_no"] - 1] for a in with_ifconfig["addresses"])


def test_old_net_tools_ifconfig_with_link_encap_and_hwaddr():
    """jc's tests/fixtures/ubuntu-16.04/ifconfig.out (net-tools 1.60), under the probe's own header."""
    text = "==> ifconfig -a <==\n" + (FIXTURES / "interfaces" / "jc_ubuntu-16.04_ifconfig.txt").read_text()
    table = facts_for("interfaces", text.encode())
    assert [(r["name"], r["state"], r["mtu"]) for r in table["interfaces"]] == [
        ("ens33", "UP", 1500),
        ("lo", "UNKNOWN", 65536),
    ]
    assert [(a["interface"], a["family"], a["address"], a["prefixlen"], a["line_no"]) for a in table["addresses"]] == [
        ("ens33", "inet", "192.168.248.129", 24, 3), ("ens33", "inet6", "fe80::c1ca:3dee:39f7:5937", 64, 4),
        ("lo", "inet", "127.0.0.1", 8, 12), ("lo", "inet6", "::1", 128, 13)]  # fmt: skip


@pytest.mark.parametrize("name", ["jc_ubuntu-16.04_ifconfig.txt", "jc_centos-7.7_ifconfig.txt",
                                  "jc_ubuntu-18.04_ifconfig.txt", "oldnet_ifconfig.txt"])  # fmt: skip
def test_differential_ifconfig_against_jc(name):
    import ipaddress

    import jc

    text = (FIXTURES / "interfaces" / name).read_text()
    body = text.split("==> ifconfig -a <==\n", 1)[-1].split("==> ", 1)[0]
    theirs = jc.parse("ifconfig", body, quiet=True)
    table = facts_for("interfaces", ("==> ifconfig -a <==\n" + body).encode())
    assert [r["name"] for r in table["interfaces"]] == [r["name"] for r in theirs]
    for row, record in zip(table["interfaces"], theirs, strict=True):
        flags = " ".join(record["state"] or []).replace(",", " ").split()
        assert row["mtu"] == record["mtu"]
        assert (row["state"] == "DOWN") == ("UP" not in flags or "RUNNING" not in flags)
    ours = {(a["interface"], a["family"], a["address"], a["prefixlen"]) for a in table["addresses"]}
    expected = set()
    for record in theirs:
        for v4 in record.get("ipv4") or []:
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{v4['mask']}").prefixlen if v4.get("mask") else None
            expected.add((record["name"], "inet", v4["address"], prefix))
        for v6 in record.get("ipv6") or []:
            expected.add((record["name"], "inet6", v6["address"], v6.get("mask")))
    assert ours == expected and ours


def test_the_system_wide_file_table_is_judged_against_fs_file_max():
    text = b"file-nr 98304 0 100000\npid name open soft_limit\n1 init 40 1024\n"
    (row,) = facts_for("fd_usage", text)["file_nr"]
    assert row["used_ratio"] == 0.98304
    (unlimited,) = facts_for("fd_usage", b"file-nr 10 0 0\npid name open soft_limit\n")["file_nr"]
    assert unlimited["used_ratio"] is None


def test_interface_errors_come_with_their_share_of_the_traffic():
    table = facts("interfaces", "web.txt")
    eth0 = next(r for r in table["interfaces"] if r["name"] == "eth0")
    assert (eth0["rx_error_ratio"], eth0["tx_error_ratio"]) == (0.0, 0.0)
    faulty = facts_for("interfaces", (FIXTURES / "catalogue/nic-errors/positive.interfaces.txt").read_bytes())
    faulty = faulty["interfaces"]
    assert next(r for r in faulty if r["name"] == "eth0")["rx_error_ratio"] == round(14823 / (9120776 + 14823), 6)
