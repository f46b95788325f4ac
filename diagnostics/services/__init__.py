"""Writes for evidence collection, by sub-domain: credentials, host keys, playbooks, runs."""

from diagnostics.services.credentials import (
    credential_for,
    credential_secret,
    credential_set,
    credential_sudo_password,
    credentials_rotate,
)
from diagnostics.services.host_keys import host_key_revoke, host_key_trust, host_keys_import, ssh_trust_set
from diagnostics.services.playbooks import playbook_save, playbooks_ensure
from diagnostics.services.runs import (
    HEARTBEAT_EVERY,
    MAX_ATTEMPTS,
    REQUEUE_AFTER,
    STALE_AFTER,
    run_enqueue,
    run_execute,
    run_fail_stuck,
    run_request,
    runs_sweep,
)

__all__ = [
    "HEARTBEAT_EVERY",
    "MAX_ATTEMPTS",
    "REQUEUE_AFTER",
    "STALE_AFTER",
    "credential_for",
    "credential_secret",
    "credential_set",
    "credential_sudo_password",
    "credentials_rotate",
    "host_key_revoke",
    "host_key_trust",
    "host_keys_import",
    "playbook_save",
    "playbooks_ensure",
    "run_enqueue",
    "run_execute",
    "run_fail_stuck",
    "run_request",
    "runs_sweep",
    "ssh_trust_set",
]
