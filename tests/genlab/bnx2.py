"""War story 5, the NIC half (drjmailgw): "No irq handler for vector" and then the bnx2 NIC's link going down
and up, with MSI the culprit.

Variants: the lines only in the host's own kernel ring buffer (``dmesg -T``), with the NIC renamed enp3s0f0 and
the modern ``bnx2 0000:03:00.0 enp3s0f0:`` prefix; an RFC 5424 /var/log/messages (rsyslog's
RSYSLOG_SyslogProtocol23Format) on a NIC called em2; a BusyBox syslogd /var/log/messages (``kern.err``
facility.level field) on eth1 (the lab's scenario: RFC 3164 files and eth0/eth1/em1).
Decoy: a host whose only bnx2 lines are the driver's informational start-up messages and one link up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.genlab.base import Env, Scenario, bsd_lines, chatter, contained_host, rename_interface, syslog_time

SUBJECT = "The server drops off the network every few days"
# Shipped playbooks that read the kernel ring buffer (kernel_log) or the system log files (system_log).
KERNEL_LOG = ("Network interface down", "Host health", "Connections piling up", "Slow logins")
SYSTEM_LOG = ("Network interface down", "Host health", "Mail scanner broken")
START = datetime(2026, 3, 4, 9, 0, 0)

FAULT = (
    (0, 8123.456789, "do_IRQ: 3.187 No irq handler for vector"),
    (41, 8164.001122, "bnx2 0000:03:00.0 {nic}: NIC Copper Link is Down"),
    (
        44,
        8167.310400,
        "bnx2 0000:03:00.0 {nic}: NIC Copper Link is Up, 1000 Mbps full duplex, receive & transmit flow control ON",
    ),
)
BOOT = (
    "bnx2: QLogic bnx2 Gigabit Ethernet Driver v2.2.6 (January 29, 2014)",
    "bnx2 0000:03:00.0 eth0: Broadcom NetXtreme II BCM5709 1000Base-T (C0) PCI Express found at mem 92000000, "
    "IRQ 36, node addr d4:ae:52:a1:b2:c3",
    "bnx2 0000:03:00.0 {nic}: renamed from eth0",
    "bnx2 0000:03:00.0 {nic}: using MSIX",
    "bnx2 0000:03:00.0 {nic}: NIC Copper Link is Up, 1000 Mbps full duplex",
)


def _dmesg(lines: list[tuple[float, str]]) -> str:
    boot = START - timedelta(seconds=9000)
    return "".join(f"[{(boot + timedelta(seconds=up)):%a %b %e %H:%M:%S %Y}] {text}\n" for up, text in lines)


def ring_buffer_enp3s0f0(env: Env) -> Scenario:
    nic = "enp3s0f0"
    boot = [(2.0 + i * 0.01, text.format(nic=nic)) for i, text in enumerate(BOOT)]
    noise = [(300.0 + 600 * i, f"IPv6: ADDRCONF(NETDEV_CHANGE): {nic}: link becomes ready") for i in range(3)]
    fault = [(up, text.format(nic=nic)) for _, up, text in FAULT]
    host = contained_host(env, "gw-ring", kernel_log=_dmesg(boot + noise + fault), start_sshd=False)
    rename_interface(host, nic)
    host.start_sshd()
    return Scenario(
        name="bnx2/dmesg-only-enp3s0f0",
        story="bnx2",
        host=host,
        subject=SUBJECT,
        recipe="bnx2-disable-msi",
        playbook="Network interface down",
        evidence=KERNEL_LOG,
    )


def _with_fault(hostname: str, nic: str) -> list[tuple[datetime, str, str, float | None]]:
    """(time, program, text, uptime) for chatter then the fault, kernel lines with their uptime stamp."""
    entries = [(when, "", text, None) for when, text in chatter(hostname, START, 80)]
    at = START + timedelta(minutes=47)
    for offset, up, text in FAULT:
        entries.append((at + timedelta(seconds=offset), "kernel", text.format(nic=nic), up))
    return sorted(entries, key=lambda entry: entry[0])


def rfc5424_em2(env: Env) -> Scenario:
    name, nic = "gw-5424", "em2"
    lines = []
    for when, program, text, up in _with_fault(name, nic):
        if program == "kernel":
            lines.append(
                f"<3>1 {when:%Y-%m-%dT%H:%M:%S}.{when.microsecond:06d}+01:00 {name} kernel - - - [{up:12.6f}] {text}"
            )
        else:
            app, _, message = text.partition(": ")
            proc, _, pid = app.rstrip("]").partition("[")
            lines.append(f"<30>1 {when:%Y-%m-%dT%H:%M:%S}.000000+01:00 {name} {proc} {pid or '-'} - - {message}")
    host = contained_host(env, name, start_sshd=False)
    rename_interface(host, nic)
    host.start_sshd()
    host.write_file("/var/log/messages", "\n".join(lines) + "\n")
    return Scenario(
        name="bnx2/rfc5424-messages-em2",
        story="bnx2",
        host=host,
        subject=SUBJECT,
        recipe="bnx2-disable-msi",
        playbook="Network interface down",
        evidence=SYSTEM_LOG,
    )


def busybox_eth1(env: Env) -> Scenario:
    name, nic = "gw-bb", "eth1"
    lines = []
    for when, program, text, up in _with_fault(name, nic):
        if program == "kernel":
            level = "err" if "irq" in text else "info"
            lines.append(f"{syslog_time(when)} {name} kern.{level} kernel: [{up:12.6f}] {text}")
        else:
            lines.append(f"{syslog_time(when)} {name} daemon.info {text}")
    host = contained_host(env, name, start_sshd=False)
    rename_interface(host, nic)
    host.start_sshd()
    host.write_file("/var/log/messages", "\n".join(lines) + "\n")
    return Scenario(
        name="bnx2/busybox-messages-eth1",
        story="bnx2",
        host=host,
        subject=SUBJECT,
        recipe="bnx2-disable-msi",
        playbook="Network interface down",
        evidence=SYSTEM_LOG,
    )


def informational_bnx2(env: Env) -> Scenario:
    """Healthy: the bnx2 driver's start-up lines (ring buffer and messages), one link up, no IRQ fault."""
    nic = "eno1"
    boot = [(2.0 + i * 0.01, text.format(nic=nic)) for i, text in enumerate(BOOT)]
    host = contained_host(env, "gw-info", kernel_log=_dmesg(boot), start_sshd=False)
    rename_interface(host, nic)
    host.start_sshd()
    entries = chatter("gw-info", START, 60)
    entries += [(START + timedelta(seconds=1 + i), f"kernel: [{up:12.6f}] {text}") for i, (up, text) in enumerate(boot)]
    host.write_file("/var/log/messages", bsd_lines("gw-info", entries))
    return Scenario(
        name="decoy/bnx2-informational-only", story="bnx2", host=host, subject="Network check after the firmware update"
    )
