"""Why a collection failed, in words: the run's ``failure_kind`` code as the sweep page, the run
page and the managers' dashboard show it (the codes stay in the database, the API and CSV exports)."""

from __future__ import annotations

FAILURE_KINDS = {
    "unreachable": "Unreachable",
    "no_banner": "No SSH banner",
    "handshake": "SSH handshake failed",
    "algorithms": "No SSH algorithm in common",
    "dropped": "Connection dropped",
    "auth_failed": "Login refused",
    "host_key_unknown": "Host key not trusted yet",
    "host_key_changed": "Host key changed",
    "jump_refused": "Jump host refused the forward",
    "no_credential": "No credential",
    "bad_credential": "Credential unusable",
    "time_limit": "Time limit reached",
    "worker_lost": "Worker lost",
    "internal": "Internal error",
    "needs_root": "Needs root",
    "incomplete": "Incomplete",
}


def failure_label(kind: str) -> str:
    """The words for a failure kind; an unknown code reads as itself, made readable."""
    return FAILURE_KINDS.get(kind, kind.replace("_", " ").capitalize() or "Failed")
