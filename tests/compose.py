"""The `compose` fixture (a pytest plugin, see conftest.py): docker-compose run on the repo's
docker-compose.yml with exactly the variables a test gives. `docker-compose config` validates
without a Docker daemon, so these tests are fast."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120


@pytest.fixture
def compose(tmp_path):
    """Run docker-compose on the repo's file with exactly the given variables.

    The project directory is a temporary one holding the given env file as its .env (empty
    by default): docker-compose reads both the interpolated variables and the services'
    `env_file: .env` from there, so a developer's own .env stays out of the result.
    """
    executable = shutil.which("docker-compose")
    if executable is None:
        pytest.skip("docker-compose is not installed (CI installs Debian's package)")

    def run(*args: str, variables: dict[str, str], env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        (tmp_path / ".env").write_text(env_file.read_text() if env_file else "")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **variables}
        return subprocess.run(
            [executable, "-f", str(REPO / "docker-compose.yml"), "--project-directory", str(tmp_path), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    return run
