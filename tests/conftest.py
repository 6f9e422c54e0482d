from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import Api, RelayServer, make_settings, two_apps


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RelayServer]:
    """relay with two apps (``default``, ``other``) on a real port and a real SQLite file."""
    server = RelayServer(make_settings(tmp_path, apps=two_apps()))
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def app_api(relay: RelayServer) -> Api:
    """A client holding an app key of app ``default``."""
    return await relay.app_api()


@pytest.fixture
async def admin_api(relay: RelayServer) -> Api:
    """A client holding an admin key of app ``default``."""
    return await relay.admin_api()
