"""Real Celery workers and a real Redis for fault tests: processes the test starts, faults it
injects (kill -9 of Redis, a restart), and the test database shared with the worker.

The worker runs the product's own command lines (triage/worker_commands.py) against the test's
database (the file or PostgreSQL database pytest-django created) and a broker the test names;
the test process publishes through the same broker (``app_broker``), so a collection goes the
user's way: ``services.run_request`` -> Celery -> the worker.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from tests import desk_template
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
REDIS_TRANSPORT = "triage.redis_transport:Transport"
# As triage/settings.py sets them for a Redis broker: bounded sockets, one retry.
REDIS_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 2,
    "retry_on_timeout": False,
    "max_retries": 1,
    "visibility_timeout": 3600,
}


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, every: float = 0.1):
    """Poll until `condition()` is truthy (and return it), or fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if value := condition():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def database_url() -> str:
    """The test database as a DATABASE_URL, for a worker process to share it."""
    conf = connection.settings_dict
    if conf["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{conf['NAME']}"
    user = quote(conf["USER"] or "", safe="")
    password = f":{quote(conf['PASSWORD'], safe='')}" if conf.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


def worker_env(
    tmp_path: Path, *, broker: str | None = None, database: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a desk process the test starts: the product's settings, a var dir under
    `tmp_path`, the test database (or `database`), and `broker` (without one, the product's default
    broker under that var dir); none of the test process's own database, broker or settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TRIAGE_ENV", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="triage.settings",
        TRIAGE_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=database or database_url(),
        **({"CELERY_BROKER_URL": broker} if broker else {}),
        **extra,
    )
    return env


def own_database(tmp_path: Path, *, migrated: bool = False) -> str:
    """A SQLite desk database of the test's own, for a desk process that must not share the test's;
    `migrated`: with the schema in it already (a copy of tests/desk_template.py's, instead of a migrate)."""
    path = tmp_path / "desk.sqlite3"
    if migrated:
        desk_template.copy_to(path)
    return f"sqlite:///{path}"


class RedisServer:
    """A redis-server of the test's own, on a free port, in a temp dir; killed (-9) and restarted at will.
    Append-only with fsync on every write, so what Redis acknowledged survives its kill."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(self._answers, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server exited: {(self.dir / 'redis.log').read_text()[-1000:]}")
        try:
            out = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return out.stdout.strip() == "PONG"

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


@contextlib.contextmanager
def app_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app at `url` (as the web process is configured in production)."""
    from triage.celery import app

    # broker_write_url is what publishing uses; once the configuration is read it holds the URL of then.
    keys = ("broker_url", "broker_read_url", "broker_write_url", "broker_transport", "broker_transport_options")
    saved = {key: app.conf[key] for key in keys}

    def reset_pools() -> None:
        # Forget the connection pools (not close them: kombu's registry hands the same producer
        # pool to the next user of an equal URL).
        app._pool = None
        with contextlib.suppress(AttributeError, KeyError):
            app.__dict__["amqp"]._producer_pool = None

    app.conf.update(
        broker_url=url,
        broker_read_url=url,
        broker_write_url=url,
        broker_transport=REDIS_TRANSPORT,
        broker_transport_options=REDIS_TRANSPORT_OPTIONS,
    )
    reset_pools()
    try:
        yield
    finally:
        reset_pools()
        app.conf.update(saved)


class Worker:
    """A real `celery worker` process (its own process group), its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path):
        self.argv, self.env, self.log_path = argv, env, log_path
        self.process: subprocess.Popen | None = None

    def start(self, *, ready_within: float = 60) -> Worker:
        self.spawn()
        self.wait_ready(ready_within)
        return self

    def spawn(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(self._ready, timeout=timeout, what=f"the worker to be ready; log: {self.log_path}")

    def _ready(self) -> bool:
        if not self.alive:
            raise AssertionError(f"worker exited {self.process.returncode}: {self.log()[-3000:]}")
        return " ready." in self.log()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Children of a warm shutdown that outlived the main process.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def running(*workers: Worker, ready_within: float = 60) -> Iterator[tuple[Worker, ...]]:
    """Start workers side by side (each takes seconds to import Django), stop them all at the end."""
    try:
        for worker in workers:
            worker.spawn()
        for worker in workers:
            worker.wait_ready(ready_within)
        yield workers
    finally:
        for worker in workers:
            worker.stop()


class PostgresCluster:
    """A PostgreSQL cluster of the test's own: initdb as the postgres user in a temp dir, a free port,
    stopped and started at will. Never the machine's own cluster on 5432."""

    def __init__(self):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not binaries or shutil.which("runuser") is None:
            raise RuntimeError("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) and runuser are needed")
        self.bin = Path(binaries[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="triage-pg-"))
        shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.port = free_port()

    def _as_postgres(self, program: str, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode:
            log = (
                (self.dir / "postgres.log").read_text(errors="replace")[-2000:]
                if (self.dir / "postgres.log").exists()
                else ""
            )
            raise RuntimeError(f"{program} {' '.join(args)} exited {result.returncode}: {result.stderr}{log}")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "postgres.log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session at once (clients see their connection drop), as a restart does."""
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def __enter__(self) -> PostgresCluster:
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
