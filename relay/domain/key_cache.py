"""The API keys this process authenticated, so a request need not read its key again.

Only on an engine that says when keys change (``keys_generation``: PostgreSQL, through
LISTEN/NOTIFY; None on SQLite, where nothing is cached). An entry is good only in the
generation it was read in, and in this process's own `invalidate` epoch: a key revoked here is
refused at once, without waiting for the notification to come back.

Only keys that exist are kept: random keys sprayed at relay cost no memory. At `MAX_ENTRIES`
the cache starts over, which costs one read per key in use.
"""

from __future__ import annotations

from relay.keys import KeyRecord

MAX_ENTRIES = 10_000

# (the engine's keys generation, this process's epoch) when a key was read.
Stamp = tuple[int, int]
Found = tuple[KeyRecord, str]  # the key and its stored hash


class KeyCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        self._entries: dict[str, tuple[Found, Stamp]] = {}
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._entries)

    def stamp(self, generation: int | None) -> Stamp | None:
        """What a read made now is good for; None: not to be cached.

        Take it *before* reading: a change committed during the read then makes the stamp
        stale, instead of what the read found passing for current."""
        return None if generation is None else (generation, self._epoch)

    def get(self, secret_hash: str, stamp: Stamp | None) -> Found | None:
        entry = self._entries.get(secret_hash)
        if entry is None or stamp is None or entry[1] != stamp:
            return None
        return entry[0]

    def put(self, secret_hash: str, found: Found, stamp: Stamp | None) -> None:
        if stamp is None:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[secret_hash] = (found, stamp)

    def invalidate(self) -> None:
        """Keys changed through this process: forget them all, and any read in flight."""
        self._epoch += 1
        self._entries.clear()
