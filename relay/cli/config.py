"""``relay config show``: the settings relay would run with, and where each value came from."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

import click

from relay.cli.common import config_path_option, echo_json, load_cli_settings
from relay.settings import Origin

SECRET_KEYS = frozenset({"customerio.api_key", "customerio.cdp_api_key"})
# Fewer characters than this and even the last 4 would give away too much of the secret.
SHORTEST_SECRET_SHOWING_ITS_END = 8


@click.group()
def config() -> None:
    """The configuration relay runs with."""


@config.command()
@config_path_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object: key → {value, source}.")
def show(config_path: str | None, as_json: bool) -> None:
    """Every setting's effective value and its source: file, env RELAY_…, or default.

    Customer.io API keys are masked to their last 4 characters.
    """
    loaded = load_cli_settings(config_path)
    entries = [
        (key, _shown(key, value), loaded.origins.of(key))
        for key, value in setting_leaves(loaded.settings)
    ]
    if as_json:
        echo_json({key: {"value": value, "source": origin.label} for key, value, origin in entries})
    else:
        for key, value, origin in entries:
            click.echo(_line(key, value, origin))


def setting_leaves(settings: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every single setting as (``section.key``, value); ``[[apps]]`` entries by position."""
    for item in dataclasses.fields(settings):
        key, value = f"{prefix}{item.name}", getattr(settings, item.name)
        if dataclasses.is_dataclass(value):
            yield from setting_leaves(value, f"{key}.")
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            for position, entry in enumerate(value):
                yield from setting_leaves(entry, f"{key}[{position}].")
        else:
            yield key, value


def mask(secret: str) -> str:
    """``****`` and the last 4 characters: enough to tell which key is set, not to use it."""
    if not secret:
        return ""
    if len(secret) < SHORTEST_SECRET_SHOWING_ITS_END:
        return "****"
    return f"****{secret[-4:]}"


def _shown(key: str, value: Any) -> Any:
    if key in SECRET_KEYS:
        return mask(value)
    if isinstance(value, Mapping):
        return dict(value)  # a read-only mapping proxy, which JSON encoders refuse
    return value


def _line(key: str, value: Any, origin: Origin) -> str:
    return f"{key} = {_toml(value)}  # {origin.label}"


def _toml(value: Any) -> str:
    """``value`` written as in a TOML file, so strings are told apart from numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, Mapping):
        pairs = (f"{_toml(name)} = {_toml(item)}" for name, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    return repr(value)
