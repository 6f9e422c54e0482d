"""``relay config show`` and how the CLI reports ``RELAY_*`` variables, as a real subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import run_cli

API_KEY = "cio-track-secret-7f3a9c1234"


@pytest.fixture(autouse=True)
def no_relay_variables_from_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_cli passes on this process's environment; a RELAY_* set there would skew sources."""
    for name in [name for name in os.environ if name.startswith("RELAY_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "relay.toml"
    path.write_text(f'[storage]\nread_connections = 3\n[customerio]\napi_key = "{API_KEY}"\n')
    return str(path)


def show(config: str, env: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """``relay config show`` as key → (value as printed, source)."""
    shown = run_cli("config", "show", "--config", config, env=env)
    assert shown.returncode == 0, shown.stderr
    entries = {}
    for line in shown.stdout.splitlines():
        key, _, rest = line.partition(" = ")
        value, _, source = rest.rpartition("  # ")
        entries[key] = (value, source)
    return entries


def test_a_value_from_the_file_is_shown_as_file(config: str) -> None:
    assert show(config)["storage.read_connections"] == ("3", "file")


def test_an_environment_override_is_shown_with_its_variable(config: str) -> None:
    entries = show(config, env={"RELAY_STORAGE_READ_CONNECTIONS": "5"})
    assert entries["storage.read_connections"] == ("5", "env RELAY_STORAGE_READ_CONNECTIONS")


def test_an_untouched_key_is_shown_as_default(config: str) -> None:
    assert show(config)["storage.synchronous"] == ('"full"', "default")


def test_the_api_key_is_masked_to_its_last_4_characters(config: str) -> None:
    shown = run_cli("config", "show", "--config", config)
    assert 'customerio.api_key = "****1234"  # file' in shown.stdout.splitlines()
    assert API_KEY not in shown.stdout + shown.stderr


def test_an_api_key_from_the_environment_is_masked_too(config: str) -> None:
    secret = "0123456789e45"
    shown = run_cli("config", "show", "--config", config, env={"RELAY_CUSTOMERIO_API_KEY": secret})
    assert 'customerio.api_key = "****9e45"  # env RELAY_CUSTOMERIO_API_KEY' in shown.stdout
    assert secret not in shown.stdout + shown.stderr


def test_an_empty_secret_is_shown_as_empty(config: str) -> None:
    assert show(config)["customerio.cdp_api_key"] == ('""', "default")


def test_apps_entries_are_shown_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text('[[apps]]\nid = "shop"\n[apps.apns]\nkey_path = "keys/shop.p8"\n')
    entries = show(str(path))
    assert entries["apps[0].id"] == ('"shop"', "file")
    assert entries["apps[0].apns.key_path"] == ('"keys/shop.p8"', "file")


def test_json_output_gives_each_key_its_value_and_source(config: str) -> None:
    shown = run_cli("config", "show", "--json", "--config", config)
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)
    assert entries["storage.read_connections"] == {"value": 3, "source": "file"}
    assert entries["customerio.api_key"] == {"value": "****1234", "source": "file"}


def test_an_unknown_relay_variable_is_a_warning_with_the_closest_name(config: str) -> None:
    shown = run_cli("config", "show", "--config", config, env={"RELAY_STORAGE_ULR": "x"})
    assert shown.returncode == 0
    assert shown.stderr.splitlines() == [
        "relay: warning: RELAY_STORAGE_ULR names no setting; did you mean RELAY_STORAGE_URL?"
    ]


def test_a_bad_environment_value_exits_2_with_one_line_naming_the_variable(
    config: str, tmp_path: Path
) -> None:
    env = {"RELAY_FORWARDING_GIVE_UP_HOURS": "soon"}
    migrated = run_cli("migrate", "--config", config, env=env, cwd=tmp_path)
    assert migrated.returncode == 2
    assert migrated.stderr.strip().count("\n") == 0
    assert migrated.stderr.startswith("relay: error: RELAY_FORWARDING_GIVE_UP_HOURS: ")
    assert "'soon'" in migrated.stderr
    assert config not in migrated.stderr
