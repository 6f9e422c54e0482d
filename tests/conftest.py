from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from relay.settings import CustomerioSettings, ForwardingSettings
from relay_fakes.fake_customerio import FakeCustomerIO
from tests import engines
from tests.support import Api, RelayServer, make_settings, started_servers, two_apps

SITE_ID = "relay-test-site"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=engines.ENGINES,
        default="sqlite",
        help="the storage engine every test runs against (default: sqlite)",
    )


def pytest_configure(config: pytest.Config) -> None:
    engines.prepare(config.getoption("--engine"))


def pytest_unconfigure(config: pytest.Config) -> None:
    engines.finish()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of one engine only (the SQLite engine's files, mounts and backup; several relay
    processes on one PostgreSQL database) are deselected, not skipped, in the other pass."""
    other = "postgresql_only" if engines.engine == "sqlite" else "sqlite_only"
    kept = [item for item in items if item.get_closest_marker(other) is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


API_KEY = "relay-test-track-key"


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


@pytest.fixture
async def customerio() -> AsyncIterator[FakeCustomerIO]:
    """A local Customer.io that validates every request against the published specs."""
    async with FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY) as fake:
        yield fake
    assert fake.invalid == [], "relay sent requests Customer.io would refuse"


@pytest.fixture
async def start_forwarding_relay(
    tmp_path: Path, customerio: FakeCustomerIO
) -> AsyncIterator[Callable[..., Awaitable[RelayServer]]]:
    """Start relay forwarding to the fake, with fast retries; keyword args override forwarding."""
    async with started_servers() as start_server:

        async def start(**forwarding: float) -> RelayServer:
            values = {"retry_initial_seconds": 0.05, "retry_max_seconds": 0.2}
            values |= {"max_requests_per_second": 1000.0} | forwarding
            settings = make_settings(
                tmp_path,
                apps=two_apps(),
                customerio=CustomerioSettings(
                    site_id=SITE_ID, api_key=API_KEY, track_url=customerio.url
                ),
                forwarding=ForwardingSettings(**values),
            )
            return await start_server(settings)

        yield start


@pytest.fixture
async def forwarding_relay(
    start_forwarding_relay: Callable[..., Awaitable[RelayServer]],
) -> RelayServer:
    return await start_forwarding_relay()
