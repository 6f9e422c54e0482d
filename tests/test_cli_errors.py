"""Every CLI failure ends with one line on stderr, never a traceback, and a non-zero exit
(API.md "CLI"): start-up failures included. Real ``relay`` subprocesses, real files, real
sockets."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import free_port, run_cli, write_config


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("relay: error: "), result.stderr
    for word in words:
        assert word in last, last


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "relay.toml", tmp_path / "relay.db", free_port())


def test_creating_a_key_with_a_value_already_registered_exits_1(config: Path) -> None:
    create = (
        "keys",
        "create",
        "--role",
        "app",
        "--value",
        "shipped-key-1",
        "--config",
        str(config),
    )
    assert run_cli(*create).returncode == 0
    again = run_cli(*create)
    assert again.returncode == 1
    assert_one_line_error(again, "already registered")


@pytest.mark.sqlite_only  # a database file
def test_a_file_that_is_not_a_database_exits_1_within_seconds_naming_it(tmp_path: Path) -> None:
    database = tmp_path / "not-a.db"
    database.write_text("these are not the pages you are looking for\n" * 100)
    config = write_config(tmp_path / "relay.toml", database, free_port())
    started = time.monotonic()
    for command in (("migrate",), ("serve",), ("keys", "list")):
        result = run_cli(*command, "--config", str(config))
        assert result.returncode == 1, command
        assert_one_line_error(result, str(database), "not a database")
    assert time.monotonic() - started < 30


def test_serve_on_a_port_in_use_exits_1_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", port)
        result = run_cli("serve", "--config", str(config))
    assert result.returncode == 1
    assert_one_line_error(result, f"127.0.0.1:{port}", "address already in use")


def test_a_test_push_to_an_unknown_token_exits_1(config: Path) -> None:
    result = run_cli(
        "push",
        "test",
        "--token",
        "f00dcafe01",
        "--title",
        "t",
        "--body",
        "b",
        "--config",
        str(config),
    )
    assert result.returncode == 1
    assert_one_line_error(result, "f00dcafe01", "not registered")


def test_an_unreadable_config_file_is_a_usage_error(tmp_path: Path) -> None:
    broken = tmp_path / "relay.toml"
    broken.write_text("[server\nlisten = 1\n")
    result = run_cli("migrate", "--config", str(broken))
    assert result.returncode == 2
    assert_one_line_error(result, str(broken))
