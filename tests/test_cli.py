"""The ``relay`` command line, run as a real subprocess against a real database file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from relay.settings import load_settings
from tests import engines
from tests.support import Api, RelayProcess, free_port, run_cli, write_config


@pytest.fixture
def config(tmp_path: Path) -> str:
    return str(write_config(tmp_path / "relay.toml", tmp_path / "data" / "relay.db", free_port()))


def test_keys_create_prints_the_key_on_its_last_line_and_stores_only_a_hash(
    config: str, tmp_path: Path
) -> None:
    created = run_cli("keys", "create", "--app", "default", "--role", "app", "--config", config)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert len(key) >= 32
    stored = engines.query(
        engines.database_url(tmp_path / "data" / "relay.db"), "SELECT * FROM api_keys"
    )
    assert key not in repr(stored)
    assert key.removeprefix("rly_") not in repr(stored)


def test_keys_create_accepts_a_chosen_value(config: str) -> None:
    created = run_cli(
        "keys", "create", "--role", "app", "--value", "site-key-123", "--config", config
    )
    assert created.returncode == 0
    assert created.stdout.strip().splitlines()[-1] == "site-key-123"


@pytest.mark.parametrize("value", ["short", "has space in it", "x" * 257, "tab\there12"])
def test_keys_create_refuses_a_bad_chosen_value_with_usage_status(config: str, value: str) -> None:
    created = run_cli("keys", "create", "--role", "app", "--value", value, "--config", config)
    assert created.returncode == 2
    assert created.stderr.strip().count("\n") == 0
    assert "--value" in created.stderr


def test_an_unknown_app_exits_2(config: str) -> None:
    created = run_cli("keys", "create", "--app", "nope", "--role", "app", "--config", config)
    assert created.returncode == 2
    assert "unknown app 'nope'" in created.stderr


def test_a_bad_role_is_a_usage_error(config: str) -> None:
    assert run_cli("keys", "create", "--role", "root", "--config", config).returncode == 2


def test_keys_list_shows_ids_and_roles_but_never_keys(config: str) -> None:
    key = run_cli("keys", "create", "--role", "admin", "--name", "ops", "--config", config)
    secret = key.stdout.strip().splitlines()[-1]
    listed = run_cli("keys", "list", "--config", config)
    assert listed.returncode == 0
    assert "admin" in listed.stdout
    assert "ops" in listed.stdout
    assert secret not in listed.stdout


def test_keys_revoke_of_an_unknown_id_fails_with_one_line(config: str) -> None:
    revoked = run_cli("keys", "revoke", "key_missing", "--config", config)
    assert revoked.returncode == 1
    assert revoked.stderr.strip() == "relay: error: no key with id 'key_missing'"


@pytest.mark.sqlite_only  # a file appears
def test_migrate_creates_the_database(config: str, tmp_path: Path) -> None:
    migrated = run_cli("migrate", "--config", config)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "data" / "relay.db").exists()


@pytest.mark.sqlite_only  # a file appears
def test_config_can_come_from_relay_config(config: str, tmp_path: Path) -> None:
    assert run_cli("migrate", env={"RELAY_CONFIG": config}).returncode == 0
    assert (tmp_path / "data" / "relay.db").exists()


def test_a_bad_config_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nlisten = 5\n")
    result = run_cli("migrate", "--config", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "server.listen" in result.stderr


@pytest.mark.sqlite_only  # a file appears
def test_embedded_defaults_put_the_database_in_the_working_directory(tmp_path: Path) -> None:
    assert run_cli("migrate", cwd=tmp_path).returncode == 0
    assert (tmp_path / "relay.db").exists()


def test_devices_show_of_an_unknown_token_fails(config: str) -> None:
    shown = run_cli("devices", "show", "nope", "--config", config)
    assert shown.returncode == 1
    assert "not registered" in shown.stderr


async def test_cli_works_while_the_server_runs(config: str, tmp_path: Path) -> None:
    relay = RelayProcess(Path(config), tmp_path, load_settings(config, environ={}).server.port)
    await relay.start()
    try:
        created = run_cli("keys", "create", "--role", "app", "--config", config)
        key = created.stdout.strip().splitlines()[-1]
        async with aiohttp.ClientSession() as session:
            api = Api(session, relay.base_url, key)
            assert (await api.put("/v1/devices/tok9", {"platform": "ios"})).status == 201
        shown = run_cli("devices", "show", "tok9", "--config", config)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["platform"] == "ios"
        key_id = run_cli("keys", "list", "--config", config).stdout.splitlines()[1].split()[0]
        assert run_cli("keys", "revoke", key_id, "--config", config).returncode == 0
        async with aiohttp.ClientSession() as session:
            api = Api(session, relay.base_url, key)
            assert (await api.put("/v1/devices/tok9", {"platform": "ios"})).status == 401
    finally:
        relay.stop()


async def test_a_request_http_cannot_parse_is_one_warning_line_without_what_it_sent(
    config: str, tmp_path: Path
) -> None:
    relay = RelayProcess(Path(config), tmp_path, load_settings(config, environ={}).server.port)
    await relay.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        writer.write(
            b"GET /healthz HTTP/1.1\r\nHost: relay\r\n"
            b"Authorization: Bearer secret-key-\x00-value\r\n\r\n"
        )
        status_line = await reader.readline()
        writer.close()
    finally:
        relay.stop()
    assert status_line.split()[1] == b"400"
    log = relay.log_path.read_text()
    (line,) = [line for line in log.splitlines() if "aiohttp.server" in line]
    assert "WARNING" in line and "Invalid header value char" in line, line
    assert "Traceback" not in log and "secret-key" not in log
