"""``relay backup PATH``: a consistent online copy of the database."""

from __future__ import annotations

from pathlib import Path

import click

from relay.cli.common import config_option, fail, run_with_store
from relay.settings import Settings


@click.command()
@config_option
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(settings: Settings, path: Path) -> None:
    """Write a consistent copy of the SQLite database to PATH, also while relay serves.

    Restore: stop relay, copy PATH over the database file (removing its -wal and -shm
    files), start relay. On PostgreSQL use pg_dump, which takes a consistent snapshot too.
    """
    if settings.storage.url.startswith(("postgresql:", "postgres:")):
        fail("relay backup copies SQLite databases; for PostgreSQL use pg_dump (consistent too)")
    size = run_with_store(settings, lambda store: store.backup(path))
    click.echo(f"backup written: {path} ({size:,} bytes, integrity checked)")
