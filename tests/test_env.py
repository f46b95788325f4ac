"""The typed environment readers behind the settings."""

import pytest

from triage.env import ConfigError, env_bool, env_int, env_list, env_str


@pytest.mark.parametrize("raw,value", [("1", True), ("TRUE", True), ("yes", True), ("off", False), ("0", False)])
def test_booleans_are_read_in_the_usual_spellings(monkeypatch, raw, value):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", not value) is value


def test_a_malformed_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ConfigError, match="X_FLAG"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ConfigError, match="X_NUM must be an integer"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "-3")
    with pytest.raises(ConfigError, match="at least 0"):
        env_int("X_NUM", 1, minimum=0)


def test_defaults_apply_when_unset_or_blank(monkeypatch):
    monkeypatch.delenv("X_UNSET", raising=False)
    monkeypatch.setenv("X_BLANK", "")
    assert env_str("X_UNSET", "d") == "d" and env_str("X_BLANK", "d") == "d"
    assert env_int("X_BLANK", 5) == 5
    assert env_list("X_UNSET", ["a"]) == ["a"]


def test_lists_are_comma_separated_and_trimmed(monkeypatch):
    monkeypatch.setenv("X_LIST", " desk.example.com, ,127.0.0.1 ")
    assert env_list("X_LIST", []) == ["desk.example.com", "127.0.0.1"]
