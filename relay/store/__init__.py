"""Storage backends behind one interface (`relay.store.base.Store`)."""

from __future__ import annotations

from relay.settings import Settings
from relay.store.base import Store
from relay.store.sqlite import SqliteStore
from relay.store.sqlite.engine import WriteObserver


def create_store(settings: Settings, on_commit: WriteObserver | None = None) -> Store:
    """The backend named by ``[storage] url`` (settings validation refuses the unsupported)."""
    return SqliteStore(settings, on_commit=on_commit)


__all__ = ["SqliteStore", "Store", "create_store"]
