"""Online backups: a consistent copy of the database while relay serves.

``VACUUM INTO`` reads one snapshot (a WAL read transaction, so the writer never waits) and
writes a compact, self-contained database file: no ``-wal`` to copy along. It goes to a
temporary file beside the target and is renamed over it only once checked.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

from relay.errors import RelayError


class BackupFailed(RelayError):
    """The copy could not be written or did not check out; the message says where."""


def backup_into(conn: sqlite3.Connection, target: Path) -> int:
    """Copy the database behind ``conn`` to ``target``; returns its size in bytes."""
    target = target.resolve()
    if target.is_dir():
        raise BackupFailed(f"{target} is a directory; name the backup file")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    os.unlink(temporary)  # VACUUM INTO refuses an existing file
    try:
        conn.execute("VACUUM INTO ?", (temporary,))
        _check(Path(temporary))
        os.replace(temporary, target)
    except sqlite3.Error as exc:
        raise BackupFailed(f"{target}: {exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return target.stat().st_size


def _check(copy: Path) -> None:
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        (verdict,) = conn.execute("PRAGMA quick_check").fetchone()
    if verdict != "ok":
        raise BackupFailed(f"the copy failed its integrity check: {verdict}")
