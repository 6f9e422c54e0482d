"""``relay serve`` and ``relay migrate``."""

from __future__ import annotations

import click

from relay.cli.common import config_option, fail, run_with_store
from relay.errors import CannotStart
from relay.logs import configure_logging
from relay.settings import Settings


@click.command()
@config_option
def serve(settings: Settings) -> None:
    """Run the HTTP service until SIGTERM or Ctrl-C."""
    from relay.server import serve as run_server

    configure_logging("INFO")
    try:
        run_server(settings)
    except CannotStart as exc:
        fail(exc.detail)


@click.command()
@config_option
def migrate(settings: Settings) -> None:
    """Create the database if needed and apply pending migrations."""

    async def noop(store: object) -> None:
        return None

    run_with_store(settings, noop)
    click.echo(f"database ready: {settings.storage.url}")
