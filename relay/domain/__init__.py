"""The domain: relay's rules, written once, run as jobs on either storage engine.

HTTP, the compat surfaces, the dashboard and the CLI call `Store` (relay/domain/base.py);
`create_store` builds the one implementation, `RelayStore`, on the configured engine.
"""

from __future__ import annotations

from relay.domain.base import Store
from relay.domain.service import RelayStore
from relay.settings import Settings
from relay.store.writer import WriteObserver


def create_store(settings: Settings, on_commit: WriteObserver | None = None) -> Store:
    """The store on the engine ``[storage] url`` names (settings validation refuses others)."""
    return RelayStore(settings, on_commit=on_commit)


__all__ = ["RelayStore", "Store", "create_store"]
