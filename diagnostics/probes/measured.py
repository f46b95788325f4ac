"""Measured probes: evidence the product records about a host without running a command on it.

``ssh_session`` is the login the product's own SSH client timed (``diagnostics.ssh.Timings``, the
numbers also kept on ``CollectionRun``): stored by the runner as one more Evidence row of the run, at
step ``SESSION_STEP`` (after any playbook's steps), in the text format below, so signatures read it
like any probe's output (``facts: ssh_session``) and cite its lines. It is not in ``REGISTRY``: no
playbook can ask for it, every run has it.

Output (seconds since the TCP connect began, as CollectionRun stores them)::

    ==> ssh login to root@192.0.2.10:22, seconds since the TCP connect began <==
    connect 0.0021
    banner 0.0153
    handshake 0.0874
    auth 6.1032
"""

from __future__ import annotations

from collections.abc import Mapping

SESSION_PROBE = "ssh_session"
# After any playbook's steps (playbooks have at most MAX_STEPS), within PositiveSmallIntegerField.
SESSION_STEP = 32767
PHASES = ("connect", "banner", "handshake", "auth")

# Probe name -> what it is, for the forms and the signature editor's list of names.
MEASURED: Mapping[str, str] = {
    SESSION_PROBE: "The product's own SSH login to the host, timed by phase (connect, banner, handshake, auth).",
}


def session_output(*, target: str, timings: Mapping[str, float | None]) -> str:
    """The ``ssh_session`` evidence text for the measured ``timings`` (phase -> seconds or None)."""
    lines = [f"==> ssh login to {target}, seconds since the TCP connect began <=="]
    lines += [f"{phase} {timings[phase]:.4f}" for phase in PHASES if timings.get(phase) is not None]
    return "\n".join(lines) + "\n"
