"""Whether API keys changed in any process: a file beside the SQLite database, for the key cache.

Every key change (``relay keys create|revoke`` in a process of its own, or relay's own API)
appends one byte to ``<database>-keys`` after its commit. A relay process stamps what it
caches with the file's identity and size (`KeyFile.generation`), one ``stat`` a request
instead of reading the key from SQLite: a revoke is refused by the very next request.

Appending after the commit matters: a request that reads the key before the commit finds it
active and caches it under the old generation, which the append then retires; had the append
come first, a read between it and the commit would cache the key, still active, under the new
generation. A missing file (deleted, or on a read-only disk) means nothing is cached.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)


class KeyFile:
    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + "-keys")
        self._database = database

    def generation(self) -> int | None:
        """Changes with every key change; None while the file is missing (cache nothing)."""
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        # The inode too: a file deleted and made again starts over at a size seen before.
        return (found.st_ino << 128) | (found.st_mtime_ns << 64) | found.st_size

    def create(self) -> None:
        """Make the file if it is missing, readable and writable by whoever may write the
        database (a CLI run as another user must be able to append)."""
        with contextlib.suppress(OSError):  # there already; or a read-only disk: no cache
            self.path.touch(exist_ok=False)
            os.chmod(self.path, stat.S_IMODE(os.stat(self._database).st_mode))

    def bump(self) -> None:
        """Tell every relay process that keys changed (after the change is committed)."""
        try:
            with open(self.path, "ab") as signal:
                signal.write(b".")
        except OSError as exc:
            log.error(
                "cannot tell running relay processes that API keys changed (%s: %s);"
                " they honour the change when a key's cache entry expires",
                self.path,
                exc.strerror or exc,
            )
