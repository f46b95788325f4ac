"""A real IMAP server per test module, as a fixture (the server itself: tests/imap_server.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.imap_server import DOVECOT, Dovecot


@pytest.fixture(scope="module")
def dovecot():
    if not DOVECOT.exists():
        pytest.skip(f"no dovecot at {DOVECOT} (apt-get install dovecot-imapd)")
    # Not pytest's tmp_path: it is private to the test's user, and dovecot's mail processes (another
    # user under root) must reach the maildirs.
    root = Path(tempfile.mkdtemp(prefix="triage-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(root)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
