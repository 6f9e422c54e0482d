"""What every command shares: ``--config``, ``--app``, opening the store, one-line errors."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import msgspec

from relay.domain import Store, create_store
from relay.errors import RelayError
from relay.logs import configure_logging
from relay.settings import ConfigError, Settings, SourcedSettings, load_sourced_settings

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


config_path_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (default: $RELAY_CONFIG, else embedded defaults).",
)


def config_option(command: F) -> F:
    """``--config PATH`` (else ``$RELAY_CONFIG``, else embedded defaults) → ``settings``."""

    @config_path_option
    @functools.wraps(command)
    def wrapper(*args: Any, config_path: str | None, **kwargs: Any) -> Any:
        settings = load_cli_settings(config_path).settings
        return command(*args, settings=settings, **kwargs)

    return wrapper  # type: ignore[return-value]


def load_cli_settings(config_path: str | None) -> SourcedSettings:
    """Load the settings once for this command: a ``RELAY_*`` variable that names no setting is
    a warning on stderr, a bad value exits 2 with one line."""
    try:
        return load_sourced_settings(config_path, warn=warn)
    except ConfigError as exc:
        fail(str(exc), status=2)
        raise AssertionError("unreachable") from exc


def warn(message: str) -> None:
    click.echo(f"relay: warning: {message}", err=True)


def app_option(command: F) -> F:
    """``--app APP`` (default ``default``); an app the config does not know exits 2."""

    @click.option("--app", "app_id", default="default", show_default=True, help="App id.")
    @functools.wraps(command)
    def wrapper(*args: Any, app_id: str, settings: Settings, **kwargs: Any) -> Any:
        if app_id not in settings.app_ids:
            known = ", ".join(sorted(settings.app_ids))
            fail(f"unknown app {app_id!r} (configured: {known})", status=2)
        return command(*args, app_id=app_id, settings=settings, **kwargs)

    return wrapper  # type: ignore[return-value]


def fail(message: str, status: int = 1) -> None:
    click.echo(f"relay: error: {message}", err=True)
    sys.exit(status)


def run_with_store(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open (create, migrate) the store, run ``action``, close; RelayErrors become one line."""

    async def main() -> T:
        store = create_store(settings)
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    configure_logging("WARNING")
    try:
        return asyncio.run(main())
    except RelayError as exc:
        fail(exc.detail)
        raise AssertionError("unreachable") from exc


def echo_json(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False))
