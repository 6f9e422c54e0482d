"""The ``relay-fakes`` command: local APNs and FCM fakes for trying relay's test pushes without
Apple or Google. Failures are one line on stderr (exit 1; usage errors exit 2), never a
traceback."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path

import click

from relay_fakes.serve import FakesError, ServeOptions, serve_fakes

# The app id names the key file too, so it must be a plain file-name part.
_APP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PORT = click.IntRange(0, 65535)


def _checked_app_id(context: click.Context, parameter: click.Parameter, value: str) -> str:
    if not _APP_ID.match(value):
        raise click.BadParameter(
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """relay-fakes: local APNs and FCM fakes for QA, so relay's test pushes need neither Apple
    nor Google."""


@cli.command()
@click.option("--apns-port", type=PORT, required=True, help="Port of the fake APNs (0: any).")
@click.option("--fcm-port", type=PORT, required=True, help="Port of the fake FCM (0: any).")
@click.option(
    "--write-config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    metavar="FILE",
    help="Where to write the [[apps]] block for relay (atomically); the .p8 key goes beside it.",
)
@click.option(
    "--app",
    "app_id",
    default="default",
    show_default=True,
    callback=_checked_app_id,
    help="The relay app id the block configures.",
)
def serve(apns_port: int, fcm_port: int, config_path: Path, app_id: str) -> None:
    """Run the fakes on 127.0.0.1 until Ctrl-C or SIGTERM, printing a line per push.

    Every token is delivered, except tokens starting with 'dead', answered as unregistered
    (APNs 410, FCM UNREGISTERED).
    """
    # The fakes log at INFO with whole tokens in paths; QA gets the masked push lines instead.
    logging.basicConfig(level=logging.WARNING, format="relay-fakes: %(levelname)s %(message)s")
    options = ServeOptions(apns_port, fcm_port, config_path, app_id)
    try:
        asyncio.run(serve_fakes(options, _echo))
    except FakesError as error:
        click.echo(f"relay-fakes: error: {error}", err=True)
        sys.exit(1)


def _echo(line: str) -> None:
    # Flushed per line: QA (or a test) may be reading a pipe or a file, not a terminal.
    click.echo(line)
    sys.stdout.flush()


def main() -> None:
    cli.main(prog_name="relay-fakes")
