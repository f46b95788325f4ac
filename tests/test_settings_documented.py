"""Every setting the code reads from the environment is documented and reaches production:
listed in .env.example (with its default) and in the README's configuration table, and passed by
docker-compose.yml to every app container, with .env.example's values working as a production
configuration. Fast: `docker-compose config` validates without a Docker daemon."""

from __future__ import annotations

import ast
import re
import secrets
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from tests.test_deployment import COMPOSE_REQUIRED, clean_env, manage

REPO = Path(__file__).resolve().parent.parent
NOT_PRODUCT_CODE = {".venv", ".git", "tests", "bench", "var", "docs", "node_modules", "static", "templates"}
ENV_READERS = {"env_str", "env_int", "env_bool", "env_list"}
# Read by gunicorn itself (its worker count), not by our code.
READ_BY_GUNICORN = {"WEB_CONCURRENCY"}


def product_sources() -> list[Path]:
    return [path for path in REPO.rglob("*.py") if not NOT_PRODUCT_CODE & set(path.relative_to(REPO).parts[:-1])]


def _reads(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in ENV_READERS
    text = ast.unparse(func)
    return text in ("os.environ.get", "os.getenv") or text.endswith(tuple(f".{name}" for name in ENV_READERS))


def settings_read() -> tuple[set[str], list[str]]:
    """(names read through env_*/os.environ, places that read a name that is not a literal)."""
    names, unreadable = set(), []
    for path in product_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            key = None
            if isinstance(node, ast.Call) and _reads(node) and node.args:
                key = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = node.slice
            if key is None:
                continue
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names.add(key.value)
            elif path.name != "env.py":  # the readers themselves take the name as a parameter
                unreadable.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return names, unreadable


def example_lines() -> dict[str, tuple[str, bool]]:
    """{name: (value, commented out)} of .env.example."""
    found = {}
    for match in re.finditer(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", (REPO / ".env.example").read_text(), re.MULTILINE):
        found.setdefault(match.group(2), (match.group(3), bool(match.group(1))))
    return found


def readme_configuration() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Configuration")
    return text[start : text.index("\n## ", start + 1)]


@pytest.fixture(scope="module")
def read() -> set[str]:
    names, unreadable = settings_read()
    assert not unreadable, f"settings read under a computed name cannot be checked: {unreadable}"
    assert {"SECRET_KEY", "TRIAGE_TRUSTED_PROXIES", "TRIAGE_SSH_AUTH_TIMEOUT", "EMAIL_BACKEND"} <= names
    return names | READ_BY_GUNICORN


def test_every_setting_the_code_reads_is_in_env_example(read):
    assert sorted(read - set(example_lines())) == []


def test_every_setting_the_code_reads_is_in_the_readme_configuration_table(read):
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", readme_configuration()))

    assert sorted(read - documented) == []


def env_file_from_example(tmp_path: Path) -> Path:
    """.env.example with real secrets in place of the placeholders, as a deployer makes .env."""
    text = (REPO / ".env.example").read_text()
    text = text.replace(
        "SECRET_KEY=replace-me-with-the-output-of-the-command-above", f"SECRET_KEY={secrets.token_urlsafe(64)}"
    )
    text = text.replace(
        "CREDENTIALS_KEYS=replace-me-with-a-fernet-key", f"CREDENTIALS_KEYS={Fernet.generate_key().decode()}"
    )
    text = text.replace(
        "POSTGRES_PASSWORD=replace-me-with-a-url-safe-password", f"POSTGRES_PASSWORD={secrets.token_urlsafe(32)}"
    )
    assert "=replace-me" not in text
    path = tmp_path / "deployer.env"
    path.write_text(text)
    return path


def app_environments(compose, env_file: Path | None, variables: dict[str, str]) -> dict[str, dict[str, str]]:
    result = compose("config", variables=variables, env_file=env_file)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    apps = {name: service.get("environment", {}) for name, service in services.items() if "build" in service}
    assert set(apps) == {"migrate", "web", "worker", "collector", "beat", "mailgate"}
    return apps


def test_every_setting_reaches_every_app_container_with_the_value_from_env(compose, read, tmp_path):
    env_file = env_file_from_example(tmp_path)
    given = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", env_file.read_text(), re.MULTILINE))

    for name, environment in app_environments(compose, env_file, {}).items():
        assert sorted(read - set(environment)) == [], name
        decided_by_compose = {key for key, (_, commented) in example_lines().items() if commented}
        for key, value in given.items():
            if key not in decided_by_compose:
                assert environment[key] == value, (name, key)
        assert environment["TRIAGE_ENV"] == "production"
        assert environment["TRIAGE_TRUSTED_PROXIES"] == "1"


def test_the_compose_proxy_is_trusted_even_when_env_does_not_say(compose):
    for name, environment in app_environments(compose, None, COMPOSE_REQUIRED).items():
        assert environment["TRIAGE_TRUSTED_PROXIES"] == "1", name


def test_env_example_values_make_a_production_configuration_that_passes_check_deploy(compose, tmp_path):
    """What web would start with: its environment from `docker-compose config`, every value
    parsed by the settings (booleans, numbers, lists, the log format) and `check --deploy` clean."""
    web = app_environments(compose, env_file_from_example(tmp_path), {})["web"]
    env = clean_env(**{key: str(value) for key, value in web.items()})
    env["TRIAGE_VAR_DIR"] = str(tmp_path / "var")

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
