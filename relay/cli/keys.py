"""``relay keys create|list|revoke``."""

from __future__ import annotations

import click

from relay import keys as key_rules
from relay.cli.common import app_option, config_option, fail, run_with_store
from relay.settings import Settings
from relay.timeutil import format_timestamp


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command()
@config_option
@app_option
@click.option(
    "--role",
    type=click.Choice(key_rules.ROLES),
    required=True,
    help="app (public: ships in apps), server (back ends: may also merge, delete, suppress"
    " people) or admin (everything).",
)
@click.option("--name", default="", help="A label for humans.")
@click.option("--value", default=None, help="Use this key (8-256 printable ASCII, no spaces).")
def create(settings: Settings, app_id: str, role: str, name: str, value: str | None) -> None:
    """Create a key. It is shown once (the last line of output) and stored only as a hash."""
    if value is not None and (problem := key_rules.chosen_value_problem(value)):
        fail(f"--value {problem}", status=2)
    secret = value or key_rules.generate_secret()
    record = run_with_store(
        settings,
        lambda store: store.create_key(app_id, role, name, secret),  # type: ignore[arg-type]
    )
    click.echo(f"created {record.role} key {record.id} for app {record.app_id}", err=False)
    click.echo(secret)


@keys.command("list")
@config_option
def list_keys(settings: Settings) -> None:
    """List keys (ids and metadata, never the keys themselves)."""
    records = run_with_store(settings, lambda store: store.list_keys())
    click.echo(f"{'ID':32} {'APP':16} {'ROLE':6} {'CREATED':25} {'REVOKED':25} NAME")
    for r in records:
        revoked = format_timestamp(r.revoked_at) or "-"
        created = format_timestamp(r.created_at)
        click.echo(f"{r.id:32} {r.app_id:16} {r.role:6} {created:25} {revoked:25} {r.name}")


@keys.command()
@config_option
@click.argument("key_id")
def revoke(settings: Settings, key_id: str) -> None:
    """Revoke a key by its id; requests with it get 401 from then on."""
    run_with_store(settings, lambda store: store.revoke_key(key_id))
    click.echo(f"revoked {key_id}")
