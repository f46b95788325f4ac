"""The cache the rate limits count in: shared by every process, Redis in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_deployment import manage, production_env
from triage.cache_config import cache_settings, default_cache_url
from triage.env import ConfigError


def test_production_defaults_to_the_brokers_redis_with_the_next_db_number():
    assert default_cache_url(broker_url="redis://redis:6379/0", var_dir=Path("/v")) == "redis://redis:6379/1"
    assert default_cache_url(broker_url="redis://:pw@redis:6379/15", var_dir=Path("/v")) == "redis://:pw@redis:6379/0"
    assert default_cache_url(broker_url="redis://redis:6379", var_dir=Path("/v")) == "redis://redis:6379/1"


def test_development_defaults_to_a_directory_every_process_of_the_desk_shares():
    url = default_cache_url(broker_url="filesystem://", var_dir=Path("/srv/desk/var"))
    assert cache_settings(url) == {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": "/srv/desk/var/cache",
    }


def test_a_redis_cache_has_bounded_sockets_and_a_bad_url_is_refused():
    assert cache_settings("redis://127.0.0.1:6379/1")["OPTIONS"] == {"socket_connect_timeout": 2, "socket_timeout": 2}
    with pytest.raises(ConfigError, match="TRIAGE_CACHE_URL"):
        cache_settings("memcached://127.0.0.1")


@pytest.mark.parametrize("url", ["locmem://", "dummy://", "file:///tmp/desk-cache"])
def test_production_refuses_a_cache_that_is_not_redis(tmp_path, url):
    result = manage("check", env={**production_env(tmp_path), "TRIAGE_CACHE_URL": url})
    assert result.returncode != 0
    assert "TRIAGE_CACHE_URL must point at Redis" in result.stderr


def test_production_starts_on_the_default_redis_cache(tmp_path):
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.CACHES['default']['LOCATION'])",
        env=production_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "redis://127.0.0.1:6379/1"
