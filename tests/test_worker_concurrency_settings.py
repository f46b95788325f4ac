"""The workers' sizes are settings that reach the running workers: `manage.py run_worker` (compose's
`worker` service) starts TRIAGE_WORKER_CONCURRENCY prefork processes, `manage.py run_collector`
TRIAGE_COLLECT_CONCURRENCY threads, as Celery's own start-up banner reports them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.worker_support import ROOT, RedisServer, Worker, running, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_compose_runs_the_workers_through_the_commands_that_read_the_settings():
    services = yaml.safe_load((Path(ROOT) / "docker-compose.yml").read_text())["services"]

    assert services["worker"]["command"] == ["python", "manage.py", "run_worker"]
    assert services["collector"]["command"] == ["python", "manage.py", "run_collector"]
    assert not any("--concurrency" in word for word in services["worker"]["command"])


def test_each_worker_starts_with_the_concurrency_its_setting_names(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        env = worker_env(tmp_path, broker=redis.url(), TRIAGE_WORKER_CONCURRENCY="3", TRIAGE_COLLECT_CONCURRENCY="5")
        manage = [sys.executable, str(Path(ROOT) / "manage.py")]
        general = Worker([*manage, "run_worker"], env, tmp_path / "general.log")
        collector = Worker([*manage, "run_collector"], env, tmp_path / "collector.log")
        with running(general, collector):
            assert re.search(r"concurrency: 3 \(prefork\)", general.log()), general.log()[-2000:]
            assert re.search(r"concurrency: 5 \(thread\)", collector.log()), collector.log()[-2000:]
            assert "celery@" in general.log() and "collector@" in collector.log()
