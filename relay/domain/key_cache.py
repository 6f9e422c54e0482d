"""The API keys this process authenticated, so a request need not read its key again.

Only on an engine that says when keys change (``keys_generation``: PostgreSQL through
LISTEN/NOTIFY, SQLite through a file every key change appends to; None while the engine cannot
say, and then nothing is cached). An entry is good only in the generation it was read in, and
in this process's own `invalidate` epoch: a key revoked here is refused at once, without
waiting for the signal to come back. Nor is it good for longer than `MAX_AGE_S`: a signal
that never came (a CLI that could not append to SQLite's file) delays a revoke by that much
at most, not until a restart.

Only keys that exist are kept: random keys sprayed at relay cost no memory. At `MAX_ENTRIES`
the cache starts over, which costs one read per key in use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from relay.keys import KeyRecord

MAX_ENTRIES = 10_000
MAX_AGE_S = 5.0  # a read of each key in use every five seconds: nothing beside the requests

Found = tuple[KeyRecord, str]  # the key and its stored hash


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a key was read: the engine's keys generation, this process's epoch, the clock."""

    generation: int
    epoch: int
    taken_at: float


class KeyCache:
    def __init__(
        self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[Found, Stamp]] = {}
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._entries)

    def stamp(self, generation: int | None) -> Stamp | None:
        """What a read made now is good for; None: not to be cached.

        Take it *before* reading: a change committed during the read then makes the stamp
        stale, instead of what the read found passing for current."""
        return None if generation is None else Stamp(generation, self._epoch, self._clock())

    def get(self, secret_hash: str, stamp: Stamp | None) -> Found | None:
        entry = self._entries.get(secret_hash)
        if entry is None or stamp is None:
            return None
        found, read = entry
        current = read.generation == stamp.generation and read.epoch == stamp.epoch
        return found if current and stamp.taken_at - read.taken_at < MAX_AGE_S else None

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
