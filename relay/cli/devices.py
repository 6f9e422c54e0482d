"""``relay devices show``."""

from __future__ import annotations

import click

from relay.cli.common import app_option, config_option, echo_json, run_with_store
from relay.settings import Settings


@click.group()
def devices() -> None:
    """Inspect devices."""


@devices.command()
@config_option
@app_option
@click.argument("token")
def show(settings: Settings, app_id: str, token: str) -> None:
    """Print a device as JSON: status, profile, counts and newest metrics."""
    echo_json(run_with_store(settings, lambda store: store.device_detail(app_id, token)))
