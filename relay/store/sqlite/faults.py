"""Storage faults: what SQLite's errors mean to an operator, and files unsafe to map.

A fault (disk full, read-only, locked, I/O error) is the storage's, not the request's: the
writer answers every caller of the batch 503 with the fault as the reason, ``/readyz`` says
it, and a probe write retries until it clears. Anything else a job raises is that job's own.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

# sqlite3 error names (Python ≥ 3.11 sets ``sqlite_errorname``) by their primary code
_FAULTS = {
    "SQLITE_FULL": "disk full",
    "SQLITE_READONLY": "read-only",
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
    "SQLITE_IOERR": "I/O error",
    "SQLITE_CANTOPEN": "cannot open the database files",
    "SQLITE_PROTOCOL": "locked",
}
_OS_FAULTS = {errno.ENOSPC: "disk full", errno.EROFS: "read-only", errno.EIO: "I/O error"}
# SQLite maps the -shm file at this size: a shorter one it cannot grow faults the process.
SHM_MIN_BYTES = 32 * 1024


def fault_of(exc: BaseException) -> str | None:
    """The storage fault ``exc`` stands for, or None when it is not one."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        for prefix, fault in _FAULTS.items():
            if name == prefix or name.startswith(prefix + "_"):
                return fault
        text = str(exc).lower()
        if "readonly" in text or "read-only" in text:
            return "read-only"
        if "disk is full" in text or "database or disk is full" in text:
            return "disk full"
        if "locked" in text:
            return "locked"
        return None
    if isinstance(exc, OSError):
        return _OS_FAULTS.get(exc.errno or 0)
    return None


def writable(path: Path) -> bool:
    """Whether the database file and its directory can be written (a read-only mount, or a
    file without write permission for this user, says no)."""
    directory = path.parent
    return os.access(directory, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def must_read_immutable(path: Path) -> bool:
    """Whether readers must open the file as immutable: its ``-shm`` cannot be written and is
    too short to map (SQLite would read past its end: SIGBUS, which Python cannot survive), or
    there is none and none can be created."""
    shm = Path(f"{path}-shm")
    if shm.exists():
        return not os.access(shm, os.W_OK) and shm.stat().st_size < SHM_MIN_BYTES
    return not os.access(path.parent, os.W_OK)
