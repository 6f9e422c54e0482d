"""The ``relay`` command line. Every command opens (and migrates) the database itself, so it
works on a fresh install and beside a running server."""

from __future__ import annotations

import logging
import sys

import click

from relay.cli import (
    backup,
    config,
    devices,
    health,
    keys,
    outbox,
    prune,
    push,
    rejected,
    segments,
    server,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="relay", prog_name="relay")
def cli() -> None:
    """relay: push-metrics relay between mobile apps, APNs/FCM and Customer.io."""


cli.add_command(server.serve)
cli.add_command(server.migrate)
cli.add_command(keys.keys)
cli.add_command(devices.devices)
cli.add_command(outbox.outbox)
cli.add_command(segments.segments)
cli.add_command(push.push)
cli.add_command(push.deliveries)
cli.add_command(rejected.rejected)
cli.add_command(health.health)
cli.add_command(backup.backup)
cli.add_command(prune.prune)
cli.add_command(config.config)


def main() -> None:
    try:
        sys.exit(cli.main(prog_name="relay", standalone_mode=True))
    except Exception as exc:  # unforeseen: still one line on stderr, the traceback at DEBUG
        logging.getLogger("relay").debug("unexpected failure", exc_info=True)
        click.echo(f"relay: error: unexpected {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
