"""Each xdist worker's Redis databases (tests/parallel.py): brokers counted up, scratch counted down, never met."""

from __future__ import annotations

import pytest

from tests.parallel import redis_url_for_worker, scratch_redis_db


@pytest.mark.parametrize("worker", ["gw0", "gw3", "gw7"])
def test_each_worker_has_a_broker_and_a_scratch_database_no_other_worker_uses(monkeypatch, worker):
    taken = set()
    for index in range(int(worker.removeprefix("gw")) + 1):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        broker = int(redis_url_for_worker("redis://127.0.0.1:6379/0").rsplit("/", 1)[1])
        mine = {broker, scratch_redis_db()}
        assert len(mine) == 2 and not mine & taken, (worker, index, mine, taken)
        taken |= mine


def test_a_broker_database_that_would_meet_the_scratch_ones_is_refused(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw8")
    with pytest.raises(RuntimeError, match="scratch database"):
        redis_url_for_worker("redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")
    with pytest.raises(RuntimeError, match="scratch database"):
        redis_url_for_worker("redis://127.0.0.1:6379/11")


def test_urls_of_other_brokers_are_left_alone(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert redis_url_for_worker("filesystem://") == "filesystem://"
