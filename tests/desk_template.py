"""One migrated SQLite database per schema, copied wherever a test needs an empty desk.

Migrating renders every model state of every migration: about 7 s of CPU on a 2-core CI machine, and
`make test` needed it once per xdist worker for the test database and again for each desk process a
test starts (rundesk, workers, the mail listener). The schema is built once, by `manage.py migrate`
as a deployment runs it, into `<var>/test-templates/`, named by a digest of every migration file and
the Django version, so a changed migration builds a new one; a copy is a millisecond.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import django
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


@functools.cache  # the migrations do not change while the suite runs; read them once per process
def _schema_digest() -> str:
    digest = hashlib.sha256(django.get_version().encode())
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def migrate(env: dict[str, str], *, timeout: float = 300) -> None:
    """`manage.py migrate` for a desk process's database (`env`'s DATABASE_URL), as a deployment
    runs it; a failure is raised with what the command printed."""
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{done.stdout}\n{done.stderr}")


def _build(target: Path, scratch: Path) -> None:
    # Imported here: worker_support imports this module (and conftest, which imports it too).
    from tests.worker_support import worker_env

    migrate(worker_env(scratch, broker="memory://", database=f"sqlite:///{target}"))


def template() -> Path:
    """The migrated template for the current migrations, built by whichever process asks first."""
    folder = Path(settings.VAR_DIR) / "test-templates"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"schema-{_schema_digest()}.sqlite3"
    if path.exists():
        return path
    # xdist workers ask at the same moment: one migrates, the others wait on the lock and copy.
    with open(folder / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                built = Path(scratch) / "schema.sqlite3"
                _build(built, Path(scratch))
                os.replace(built, path)
    return path


def copy_to(target: Path) -> Path:
    """A migrated, empty desk database at `target` (SQLite)."""
    # The template is written once and closed (no journal left), so a file copy is a whole database.
    shutil.copyfile(template(), target)
    return target
