"""Default playbooks as data, and the validation every edited playbook passes.

A playbook is a named list of probe steps run concurrently over one SSH
connection. Each default targets a field-tested symptom: the ident callback
that stalls SMTP for 30 s, sockets stuck in CLOSE-WAIT, sshd waiting on dead
resolvers, /tmp mounted noexec under a mail scanner, a NIC lost to an IRQ fault.
``roles`` name the server roles (``ServerRole``) a playbook suits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diagnostics.probes import ProbeError, get_probe

MAX_STEPS = 20
STEP_KEYS = frozenset({"probe", "params"})

DEFAULT_PLAYBOOKS: list[dict[str, Any]] = [
    {
        "name": "Mail is slow to send",
        "description": (
            "Clients wait ~30 s after connecting before the server answers. Usually the SMTP server "
            "calling back to the client's port 113 (ident) through a firewall that drops it, or a "
            "reverse DNS lookup of the client against a dead resolver. Watch a live session: strace "
            "shows the blocked connect(), tcpdump the unanswered SYNs, the settings whether -Rt0 is set."
        ),
        "roles": ["mail"],
        "steps": [
            {"probe": "sockets", "params": {}},
            {"probe": "listening", "params": {}},
            {"probe": "service_settings", "params": {}},
            {"probe": "strace", "params": {"process": "tcpserver", "seconds": 30}},
            {"probe": "tcpdump", "params": {"seconds": 30, "count": 5000, "bpf": "tcp port 113 or tcp port 25"}},
            {"probe": "resolvers", "params": {}},
            {"probe": "mail_log", "params": {"lines": 1000}},
        ],
    },
    {
        "name": "Connections piling up",
        "description": (
            "Requests hang, workers run out, 'Too many open files'. Look for sockets stuck in CLOSE-WAIT "
            "or SYN-SENT, processes near their open-file limit, long send timeouts (varnish send_timeout), "
            "and RSTs that the kernel ignores (off-by-one sequence numbers from some firewalls)."
        ),
        "roles": ["web", "cache", "mail"],
        "steps": [
            {"probe": "sockets", "params": {}},
            {"probe": "fd_usage", "params": {}},
            {"probe": "processes", "params": {}},
            {"probe": "service_settings", "params": {}},
            {"probe": "memory", "params": {}},
            {"probe": "kernel_log", "params": {"lines": 500}},
            {
                "probe": "tcpdump",
                "params": {"seconds": 20, "count": 2000, "bpf": "tcp[tcpflags] & (tcp-fin|tcp-rst) != 0"},
            },
        ],
    },
    {
        "name": "Slow logins",
        "description": (
            "SSH (or POP/IMAP) logins take tens of seconds but then work. Classic cause: the server "
            "reverse-resolves each client (sshd UseDNS) and its nameservers are unreachable, so every "
            "login waits out the resolver timeouts."
        ),
        "roles": [],
        "steps": [
            {"probe": "sshd_config", "params": {}},
            {"probe": "resolvers", "params": {}},
            {"probe": "auth_log", "params": {"lines": 500}},
            {"probe": "interfaces", "params": {}},
            {"probe": "load", "params": {}},
            {"probe": "kernel_log", "params": {}},
        ],
    },
    {
        "name": "Host health",
        "description": "A broad first look: load, memory, disk, processes, mounts, open files and recent logs.",
        "roles": [],
        "steps": [
            {"probe": "load", "params": {}},
            {"probe": "memory", "params": {}},
            {"probe": "disk", "params": {}},
            {"probe": "processes", "params": {}},
            {"probe": "mounts", "params": {}},
            {"probe": "fd_usage", "params": {}},
            {"probe": "kernel_log", "params": {}},
            {"probe": "system_log", "params": {}},
        ],
    },
    {
        "name": "Mail scanner broken",
        "description": (
            "Mail is accepted but not scanned or delivered after an upgrade. Check /tmp and the spool for "
            "noexec, full disks or inodes, the scanner processes, the mail log for module and lint errors, and "
            "the package install log for scripts that could not run from /tmp."
        ),
        "roles": ["mail"],
        "steps": [
            {"probe": "mounts", "params": {}},
            {"probe": "disk", "params": {}},
            {"probe": "processes", "params": {}},
            {"probe": "mail_log", "params": {"lines": 2000}},
            {"probe": "mail_queue", "params": {}},
            {"probe": "system_log", "params": {}},
            {"probe": "install_log", "params": {}},
        ],
    },
    {
        "name": "Network interface down",
        "description": (
            "One interface stops passing traffic while it still shows as up: look for driver and IRQ "
            "errors ('No irq handler for vector', 'NIC Copper Link is Down') and when they started, and "
            "for services and resolvers that became unreachable through it."
        ),
        "roles": [],
        "steps": [
            {"probe": "interfaces", "params": {}},
            {"probe": "kernel_log", "params": {"lines": 2000}},
            {"probe": "system_log", "params": {"lines": 1000}},
            {"probe": "listening", "params": {}},
            {"probe": "resolvers", "params": {}},
            {"probe": "sockets", "params": {}},
        ],
    },
    {
        "name": "Mail queue growing",
        "description": (
            "Outbound mail piles up. Connections that open but never finish hold queue runners and file "
            "handles until long timeouts expire: count the queue, the sockets by state and the descriptors, "
            "and capture SYNs and RSTs on port 25."
        ),
        "roles": ["mail"],
        "steps": [
            {"probe": "mail_queue", "params": {}},
            {"probe": "sockets", "params": {}},
            {"probe": "fd_usage", "params": {}},
            {"probe": "mail_log", "params": {"lines": 1000}},
            {
                "probe": "tcpdump",
                "params": {
                    "seconds": 20,
                    "count": 2000,
                    "bpf": "tcp port 25 and tcp[tcpflags] & (tcp-syn|tcp-rst) != 0",
                },
            },
            {"probe": "resolvers", "params": {}},
        ],
    },
]


def validate_steps(steps: Any) -> list[dict[str, Any]]:
    """Every step checked against the registry: ``[{"probe": name, "params": cleaned}]``.

    Raises ProbeError whose message starts with "step N" (from 1) and whose
    ``step`` attribute is N, so a form can point at the offending row.
    """
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
        raise ProbeError("steps: a playbook needs a list of steps")
    if not steps:
        raise ProbeError("steps: a playbook needs at least one step")
    if len(steps) > MAX_STEPS:
        raise ProbeError(f"steps: a playbook has at most {MAX_STEPS} steps, this one has {len(steps)}")
    cleaned = []
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, Mapping):
            raise ProbeError(f"step {number}: must name a probe and its parameters", step=number)
        extra = sorted(str(key) for key in step if key not in STEP_KEYS)
        if extra:
            raise ProbeError(f"step {number}: unexpected {', '.join(extra)} (a step has probe and params)", step=number)
        if step.get("probe") in (None, ""):
            raise ProbeError(f"step {number}: probe: say which probe to run", param="probe", step=number)
        try:
            probe = get_probe(step["probe"])
        except ProbeError as exc:
            raise ProbeError(f"step {number}: {exc}", param=exc.param, step=number) from exc
        try:
            params = probe.validate(step.get("params"))
        except ProbeError as exc:
            raise ProbeError(f"step {number} ({probe.name}): {exc}", param=exc.param, step=number) from exc
        cleaned.append({"probe": probe.name, "params": params})
    return cleaned


def validate_playbook(playbook: Any) -> dict[str, Any]:
    """A whole playbook (name, description, roles, steps) checked; steps cleaned."""
    if not isinstance(playbook, Mapping):
        raise ProbeError("playbook: must have a name, a description and steps")
    name = playbook.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ProbeError("name: a playbook needs a name of 1-100 characters", param="name")
    description = playbook.get("description", "")
    if not isinstance(description, str):
        raise ProbeError("description: must be text", param="description")
    roles = playbook.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise ProbeError("roles: must be a list of server role names", param="roles")
    return {
        "name": name.strip(),
        "description": description,
        "roles": roles,
        "steps": validate_steps(playbook.get("steps")),
    }
