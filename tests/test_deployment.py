"""The production deployment: docker-compose.yml validates with its required
variables and fails loudly without them, and the settings pass
`check --deploy` on a good production configuration, refuse an insecure one,
and still start with nothing set in development.

Settings are exercised in subprocesses because they are read once, at import.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from triage.settings import DEV_CREDENTIALS_KEY

REPO = Path(__file__).resolve().parent.parent
LONG_RUNNING = ("web", "worker", "collector", "beat", "mailgate", "redis", "postgres")
TIMEOUT = 120

# Removed from the inherited environment so only what a test sets is in play: CI
# points DATABASE_URL at its PostgreSQL, and conftest sets DJANGO_ALLOW_ASYNC_UNSAFE,
# which `check --deploy` rightly reports.
CONTROLLED = (
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "TRIAGE_ENV",
    "TRIAGE_VAR_DIR",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "CREDENTIALS_KEYS",
    "DATABASE_URL",
    "DATABASE_CONN_MAX_AGE",
    "CELERY_BROKER_URL",
    "TRUST_X_FORWARDED_PROTO",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "TRIAGE_CACHE_URL",
)


def clean_env(**overrides: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in CONTROLLED}
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def production_env(var_dir: Path) -> dict[str, str]:
    return clean_env(
        TRIAGE_ENV="production",
        TRIAGE_VAR_DIR=str(var_dir),
        SECRET_KEY=secrets.token_urlsafe(64),
        CREDENTIALS_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="desk.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )


# --- docker-compose.yml -----------------------------------------------------

COMPOSE_REQUIRED = {
    "SECRET_KEY": secrets.token_urlsafe(64),
    "CREDENTIALS_KEYS": Fernet.generate_key().decode(),
    "POSTGRES_PASSWORD": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "desk.example.com",
    "TRUST_X_FORWARDED_PROTO": "true",
    "TRIAGE_MAIL_ADDRESS": "support@desk.example.com",
    "EMAIL_HOST": "smtp.desk.example.com",
}


def service_blocks(config: str) -> dict[str, str]:
    """Each service's text in `docker-compose config` output, which is normalised
    YAML: services at two spaces of indent, their keys at four."""
    blocks: dict[str, list[str]] = {}
    current = None
    in_services = False
    for line in config.splitlines():
        if not line.startswith(" "):
            in_services = line == "services:"
            current = None
        elif in_services and (match := re.fullmatch(r"  (\S+):", line)):
            current = match.group(1)
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


def keys_of(block: str) -> set[str]:
    return set(re.findall(r"^    ([\w-]+):", block, flags=re.MULTILINE))


def test_compose_file_validates_with_the_required_variables(compose):
    result = compose("config", "-q", variables=COMPOSE_REQUIRED)

    assert result.returncode == 0, result.stderr


def test_compose_file_fails_loudly_without_a_secret_key(compose):
    variables = {name: value for name, value in COMPOSE_REQUIRED.items() if name != "SECRET_KEY"}

    result = compose("config", "-q", variables=variables)

    assert result.returncode != 0
    assert "set SECRET_KEY in .env" in result.stderr


def test_compose_runs_every_long_running_service_with_a_health_check_and_restart_policy(compose):
    services = compose("config", "--services", variables=COMPOSE_REQUIRED)
    config = compose("config", variables=COMPOSE_REQUIRED)
    assert services.returncode == 0, services.stderr
    assert config.returncode == 0, config.stderr

    assert set(services.stdout.split()) == {*LONG_RUNNING, "migrate"}
    blocks = service_blocks(config.stdout)
    for name in LONG_RUNNING:
        assert {"healthcheck", "restart"} <= keys_of(blocks[name]), name
        assert "restart: unless-stopped" in blocks[name], name


def test_compose_starts_the_app_only_after_migrations_on_healthy_backends(compose):
    config = compose("config", variables=COMPOSE_REQUIRED)
    assert config.returncode == 0, config.stderr
    blocks = service_blocks(config.stdout)

    for name in ("web", "worker", "collector", "beat", "mailgate"):
        block = blocks[name]
        assert "migrate:\n        condition: service_completed_successfully" in block, name
        assert "postgres:\n        condition: service_healthy" in block, name
        assert "redis:\n        condition: service_healthy" in block, name
        assert "TRIAGE_ENV: production" in block, name
        assert "CELERY_BROKER_URL: redis://redis:6379/0" in block, name
        assert f"DATABASE_URL: postgres://triage:{COMPOSE_REQUIRED['POSTGRES_PASSWORD']}@postgres:5432/triage" in block
    assert "python manage.py migrate --noinput && python manage.py setup_roles" in blocks["migrate"]
    assert "healthcheck" not in keys_of(blocks["migrate"])


def test_compose_runs_the_mail_listener_on_loopback_with_the_desk_address(compose):
    config = compose("config", variables={**COMPOSE_REQUIRED, "MAIL_PORT": "2626"})
    assert config.returncode == 0, config.stderr
    block = service_blocks(config.stdout)["mailgate"]

    assert "- manage.py\n    - run_mailgate" in block
    assert "- 127.0.0.1:2626:2525/tcp" in block
    assert "TRIAGE_MAIL_HOST: 0.0.0.0" in block
    assert "TRIAGE_MAIL_ADDRESS: support@desk.example.com" in block
    for name in ("worker", "mailgate"):
        assert "EMAIL_HOST: smtp.desk.example.com" in service_blocks(config.stdout)[name], name


@pytest.mark.parametrize("missing", ["TRIAGE_MAIL_ADDRESS", "EMAIL_HOST"])
def test_compose_file_fails_loudly_without_the_mail_settings(compose, missing):
    variables = {name: value for name, value in COMPOSE_REQUIRED.items() if name != missing}

    result = compose("config", "-q", variables=variables)

    assert result.returncode != 0
    assert f"set {missing} to" in result.stderr


def test_compose_keeps_state_in_named_volumes(compose):
    volumes = compose("config", "--volumes", variables=COMPOSE_REQUIRED)
    config = compose("config", variables=COMPOSE_REQUIRED)
    assert volumes.returncode == 0, volumes.stderr
    blocks = service_blocks(config.stdout)

    assert set(volumes.stdout.split()) == {"postgres-data", "redis-data", "beat-schedule"}
    assert "- postgres-data:/var/lib/postgresql/data" in blocks["postgres"]
    assert "- redis-data:/data" in blocks["redis"]
    assert '- --appendonly\n    - "yes"' in blocks["redis"]
    assert "- beat-schedule:/app/var/beat" in blocks["beat"]
    assert "- /app/var/beat/celerybeat-schedule" in blocks["beat"]


def test_env_example_satisfies_the_compose_file(compose):
    result = compose("config", "-q", variables={}, env_file=REPO / ".env.example")

    assert result.returncode == 0, result.stderr


def test_env_example_documents_every_variable_the_compose_file_reads():
    compose_file = (REPO / "docker-compose.yml").read_text()
    example = (REPO / ".env.example").read_text()

    read = set(re.findall(r"(?<!\$)\$\{(\w+)", compose_file))
    documented = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))

    assert read
    assert read <= documented, sorted(read - documented)


# --- settings in production and development mode ----------------------------


def test_production_settings_pass_check_deploy_with_no_issues(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_collectstatic_writes_the_manifest_the_image_serves(tmp_path):
    result = manage("collectstatic", "--noinput", env=production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    assert "css/desk.css" in manifest["paths"]


def test_production_mode_refuses_insecure_settings(tmp_path):
    env = clean_env(
        TRIAGE_ENV="production",
        TRIAGE_VAR_DIR=str(tmp_path),
        DEBUG="true",
        ALLOWED_HOSTS="*",
        DATABASE_URL=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        CREDENTIALS_KEYS=DEV_CREDENTIALS_KEY,
    )

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "refusing to start in production mode" in result.stderr
    for problem in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CREDENTIALS_KEYS", "DATABASE_URL", "CELERY_BROKER_URL"):
        assert f"{problem} must" in result.stderr, problem


def test_development_mode_starts_with_nothing_set(tmp_path):
    result = manage("check", env=clean_env(TRIAGE_VAR_DIR=str(tmp_path)))

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "broker" / "queue").is_dir()
