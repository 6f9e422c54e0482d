"""``relay prune``: apply ``[retention]`` now (the server also does it daily)."""

from __future__ import annotations

import click

from relay import retention
from relay.cli.common import config_option, run_with_store
from relay.settings import Settings


@click.command()
@config_option
def prune(settings: Settings) -> None:
    """Delete metrics and events older than their [retention] horizon, and the outbox items
    still waiting to forward them; also while relay serves (ingest goes on meanwhile)."""
    result = run_with_store(settings, retention.prune)
    click.echo(f"metrics deleted: {result.metrics}")
    click.echo(f"events deleted: {result.events}")
    click.echo(f"outbox items expired: {result.outbox_expired}")
