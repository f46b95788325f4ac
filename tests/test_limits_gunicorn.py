"""Brute-force limits hold across real gunicorn workers sharing a real Redis cache, and behind a
trusted proxy they count each real client (X-Forwarded-For), not the proxy's address.

One gunicorn with 3 workers serves every test of this module against the test database; the
guesses are sent concurrently, so they land in different workers at the same moment.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from django.db import connection

from tests.conftest import free_port, make_user, redis_up
from tests.parallel import scratch_redis_db
from triage import access, users

ROOT = Path(__file__).resolve().parent.parent
CACHE_URL = f"redis://127.0.0.1:6379/{scratch_redis_db()}"  # the xdist worker's scratch database, flushed here
LOGIN_LIMIT, ADDRESS_LIMIT, TOKEN_LIMIT = 5, 8, 10

pytestmark = pytest.mark.skipif(not redis_up(), reason="needs Redis on 127.0.0.1:6379")


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = urllib.parse.quote(db["USER"] or "") + (f":{urllib.parse.quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def desk(django_db_setup, django_db_blocker, tmp_path_factory):
    """A gunicorn with 3 workers on the test database and its own Redis database; yields its port.

    Started once for the module (a start costs seconds); each test commits its own rows."""
    with django_db_blocker.unblock():
        url = _database_url()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIAGE_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=url,
        TRIAGE_VAR_DIR=str(tmp_path_factory.mktemp("var")),
        TRIAGE_CACHE_URL=CACHE_URL,
        TRIAGE_TRUSTED_PROXIES="1",
        TRIAGE_LOGIN_ATTEMPTS=str(LOGIN_LIMIT),
        TRIAGE_LOGIN_ATTEMPTS_PER_ADDRESS=str(ADDRESS_LIMIT),
        TRIAGE_API_TOKEN_RATE=f"{TOKEN_LIMIT}/minute",
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "triage.wsgi",
            "--config",
            "python:triage.gunicorn_conf",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _get(port, "/login/")[0] != 200:
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(autouse=True)
def _tech_and_fresh_counters(transactional_db):
    # Committed (transactional_db), so gunicorn's workers see them; flushed after each test.
    users.roles_ensure()
    make_user("tess", access.TECH)
    redis.Redis.from_url(CACHE_URL).flushdb()  # the database is this module's own
    yield
    redis.Redis.from_url(CACHE_URL).flushdb()


def _request(port: int, method: str, path: str, body: str = "", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # a new connection: any worker
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(), response.getheader("Set-Cookie") or ""
    except OSError:
        return 0, "", ""
    finally:
        conn.close()


def _get(port: int, path: str):
    return _request(port, "GET", path)


def _login_form(port: int) -> tuple[str, str]:
    """A CSRF cookie and the matching form token; both stay valid for every POST of the test."""
    _, html, cookie = _get(port, "/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return cookie.split(";", 1)[0], token


def _logins(port: int, attempts: list[tuple[str, str]], forwarded_for: str) -> list[int]:
    """POST the login form for each (user name, password) at once; the status of each."""
    cookie, token = _login_form(port)

    def post(attempt):
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": attempt[0], "password": attempt[1]})
        return _request(
            port,
            "POST",
            "/login/",
            body,
            {
                "Cookie": cookie,
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": forwarded_for,
            },
        )[0]

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(post, attempts))


def test_failed_logins_are_limited_across_workers(desk):
    codes = _logins(desk, [("tess", f"guess-{n}") for n in range(15)], forwarded_for="198.51.100.7")
    assert sorted(codes) == [200] * LOGIN_LIMIT + [429] * (15 - LOGIN_LIMIT)
    # The right password is refused too while the window lasts.
    assert _logins(desk, [("tess", "correct-horse-battery")], forwarded_for="198.51.100.7") == [429]


def test_password_guesses_for_tokens_are_limited_across_workers(desk):
    def guess(n):
        body = f'{{"username": "tess", "password": "guess-{n}"}}'
        return _request(
            desk,
            "POST",
            "/api/v1/auth/token/",
            body,
            {"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.7"},
        )[0]

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(guess, range(30)))
    assert sorted(codes) == [400] * TOKEN_LIMIT + [429] * (30 - TOKEN_LIMIT)


def test_behind_the_proxy_one_client_locked_out_does_not_lock_out_the_others(desk):
    # Every request arrives from 127.0.0.1 (the proxy); the proxy appends the real client.
    attacker = [(f"user{n}", "guess") for n in range(ADDRESS_LIMIT + 4)]
    codes = _logins(desk, attacker, forwarded_for="203.0.113.66")
    assert sorted(codes) == [200] * ADDRESS_LIMIT + [429] * 4
    # Forged entries to the left of the proxy's own are not believed.
    assert _logins(desk, [("other", "guess")], forwarded_for="192.0.2.1, 203.0.113.66") == [429]
    # Someone else behind the same proxy still gets the form, and signs in.
    assert _logins(desk, [("tess", "correct-horse-battery")], forwarded_for="198.51.100.8") == [302]
