"""The probe registry: every read-only diagnostic a playbook can run.

Probes only BUILD commands (``diagnostics.ssh`` runs them). Contract::

    build("strace", {"process": "tcpserver", "seconds": 20}) -> ProbeCommand(command, timeout, output_cap, binary)

Parameters are validated against strict allowlists and shell-quoted again when
rendered; anything else raises :class:`ProbeError` naming the parameter. Each
command is one line of POSIX sh to be run with ``sh -c``. A missing tool prints
``probe: <tool> not installed`` on stdout and exits 127; other ``probe:`` lines
on stdout are the probe's own notes (no such process, no such file). Multi-part
outputs separate their parts with ``==> title <==`` lines, as tail does.

``MEASURED`` names evidence the product records without a command (``ssh_session``: its own timed
login, see ``diagnostics.probes.measured``); signatures may read it, playbooks cannot ask for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diagnostics.probes import captures, mail, network, system
from diagnostics.probes.base import MAX_TIMEOUT, Probe, ProbeCommand, ProbeError
from diagnostics.probes.measured import MEASURED, SESSION_PROBE, SESSION_STEP, session_output
from diagnostics.probes.params import KINDS, LOG_PATHS, Param

__all__ = [
    "KINDS",
    "LOG_PATHS",
    "MAX_TIMEOUT",
    "MEASURED",
    "REGISTRY",
    "SESSION_PROBE",
    "SESSION_STEP",
    "Param",
    "Probe",
    "ProbeCommand",
    "ProbeError",
    "build",
    "evidence_probes",
    "get_probe",
    "root_tools",
    "session_output",
]

REGISTRY: dict[str, Probe] = {}
for _probe in (*system.PROBES, *network.PROBES, *captures.PROBES, *mail.PROBES):
    if _probe.name in REGISTRY:
        raise RuntimeError(f"probe {_probe.name!r} is registered twice")
    REGISTRY[_probe.name] = _probe


def root_tools() -> list[str]:
    """Every binary some registered probe runs as root, in registry order (for the sudoers lines)."""
    return list(dict.fromkeys(tool for probe in REGISTRY.values() for tool in probe.root_tools))


def evidence_probes() -> set[str]:
    """Every probe name evidence can carry: the registry's and the measured ones (``ssh_session``)."""
    return set(REGISTRY) | set(MEASURED)


def get_probe(name: str) -> Probe:
    """The registered probe called ``name``; ProbeError for anything else."""
    probe = REGISTRY.get(name) if isinstance(name, str) else None
    if probe is None:
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise ProbeError(f"probe: no probe called {shown} (known: {', '.join(sorted(REGISTRY))})", param="probe")
    return probe


def build(name: str, params: Mapping[str, Any] | None = None) -> ProbeCommand:
    """Validate ``params`` for probe ``name`` and render its command."""
    return get_probe(name).build(params)
