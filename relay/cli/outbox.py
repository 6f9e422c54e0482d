"""``relay outbox status|replay``."""

from __future__ import annotations

import click

from relay.cli.common import config_option, echo_json, fail, run_with_store
from relay.models.outbox import ReplayResult
from relay.settings import Settings


def _scope(settings: Settings, app_id: str | None) -> str | None:
    if app_id is not None and app_id not in settings.app_ids:
        fail(f"unknown app {app_id!r} (configured: {', '.join(sorted(settings.app_ids))})", 2)
    return app_id


@click.group()
def outbox() -> None:
    """Inspect what waits for Customer.io; replay dead letters."""


@outbox.command()
@config_option
@click.option("--app", "app_id", default=None, help="Only this app (default: all apps).")
def status(settings: Settings, app_id: str | None) -> None:
    """Pending and dead operations, the oldest pending age and the last error, as JSON."""
    scope = _scope(settings, app_id)
    echo_json(run_with_store(settings, lambda store: store.outbox_status(scope)))


@outbox.command()
@config_option
@click.option("--app", "app_id", default=None, help="Only this app (default: all apps).")
def replay(settings: Settings, app_id: str | None) -> None:
    """Put dead letters back in line; a running server sends them on its next cycle."""
    scope = _scope(settings, app_id)
    echo_json(ReplayResult(run_with_store(settings, lambda store: store.replay_outbox(scope))))
