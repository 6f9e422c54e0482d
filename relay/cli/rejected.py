"""``relay rejected``: the rejected-items log, newest first."""

from __future__ import annotations

import json

import click
import msgspec

from relay.cli.common import app_option, config_option, run_with_store
from relay.settings import Settings


@click.command()
@config_option
@app_option
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Entries."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def rejected(settings: Settings, app_id: str, limit: int, as_json: bool) -> None:
    """Items a Pipelines batch answered 200 for but relay refused, with why (tokens masked)."""
    items = run_with_store(settings, lambda store: store.rejected_items(app_id, limit))
    for item in items:
        if as_json:
            click.echo(json.dumps(msgspec.to_builtins(item), ensure_ascii=False))
        else:
            click.echo(f"{item.at}  {item.surface}  {item.path}  {item.reason}: {item.message}")
            click.echo(f"    {json.dumps(item.item, ensure_ascii=False)}")
    if not items:
        click.echo("no rejected items", err=True)
