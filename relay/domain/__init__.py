"""Storage backends behind one interface (`relay.domain.base.Store`)."""

from __future__ import annotations

from relay.domain.base import Store
from relay.domain.service import RelayStore
from relay.settings import Settings
from relay.store.sqlite.engine import WriteObserver


def create_store(settings: Settings, on_commit: WriteObserver | None = None) -> Store:
    """The backend named by ``[storage] url`` (settings validation refuses the unsupported)."""
    return RelayStore(settings, on_commit=on_commit)


__all__ = ["RelayStore", "Store", "create_store"]
