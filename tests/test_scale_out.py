"""Two relay processes on one PostgreSQL database: the scale-out contract.

Clients are spread over both processes and send the same ids to both at once; one process
is killed mid-drain while Customer.io answers slowly. Every acknowledged fact reaches
Customer.io, what is resent is at most the batch that was in flight, each fact is stored
once, and device counts and segment exports are exact.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from relay.forward.worker import MAX_BATCH_OPERATIONS
from relay_fakes.fake_customerio import FakeCustomerIO, Reply
from tests import engines
from tests.conftest import API_KEY, SITE_ID
from tests.support import RelayProcess, eventually, free_port, run_cli, write_config
from tests.test_forwarding import ops_of

pytestmark = [pytest.mark.postgresql_only, pytest.mark.slow]

PEOPLE = 5


def _process(tmp_path: Path, name: str, database: str, fake: FakeCustomerIO) -> RelayProcess:
    directory = tmp_path / name
    directory.mkdir()
    extra = (
        f'\n[customerio]\nsite_id = "{SITE_ID}"\napi_key = "{API_KEY}"\ntrack_url = "{fake.url}"\n'
        "\n[forwarding]\nretry_initial_seconds = 0.05\nretry_max_seconds = 0.2\n"
        "max_requests_per_second = 1000\nlease_seconds = 2\n"
    )
    port = free_port()
    return RelayProcess(
        write_config(directory / "relay.toml", database, port, extra), directory, port
    )


def _key(process: RelayProcess, role: str) -> str:
    created = run_cli("keys", "create", "--role", role, "--config", str(process.config_path))
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


class Pair:
    """Two relay processes sharing one database, and what their clients were told."""

    def __init__(
        self, database: str, processes: list[RelayProcess], app_key: str, admin_key: str
    ) -> None:
        self.database = database
        self.processes = processes
        self.app_key, self.admin_key = app_key, admin_key
        self.acknowledged: set[int] = set()
        self.duplicates_answered = 0

    async def post_events(self, session: aiohttp.ClientSession, numbers: list[int]) -> None:
        """The same events to both processes at once; acknowledged if either said 2xx."""
        events = [
            {"id": f"e{n}", "name": "Tick", "customer_id": f"c{n % PEOPLE}", "properties": {"n": n}}
            for n in numbers
        ]

        async def post(process: RelayProcess) -> dict[str, int] | None:
            try:
                async with session.post(
                    process.base_url + "/v1/events", json={"events": events}
                ) as response:
                    return await response.json() if response.status == 200 else None
            except aiohttp.ClientError:
                return None  # that process is gone

        answers = await asyncio.gather(*(post(p) for p in self.processes if p.process))
        if any(answer is not None for answer in answers):
            self.acknowledged.update(numbers)
        self.duplicates_answered += sum(a["duplicates"] for a in answers if a is not None)


@pytest.fixture
async def pair(tmp_path: Path, customerio: FakeCustomerIO) -> AsyncIterator[Pair]:
    database = engines.database_url(tmp_path / "relay.db")
    processes = [_process(tmp_path, name, database, customerio) for name in ("a", "b")]
    app_key = await asyncio.to_thread(_key, processes[0], "app")
    admin_key = await asyncio.to_thread(_key, processes[0], "admin")
    for process in processes:
        await process.start()
    yield Pair(database, processes, app_key, admin_key)
    for process in processes:
        if process.process is not None:
            process.stop()


def _forwarding_process(pair: Pair) -> RelayProcess:
    """The process holding the forwarder lease (its pid is in the holder's name)."""
    rows = engines.query(pair.database, "SELECT holder FROM forwarder_lease WHERE name = 'outbox'")
    pid = int(str(rows[0][0]).split(":")[1])
    return next(p for p in pair.processes if p.process and p.process.pid == pid)


async def _outbox_empty(session: aiohttp.ClientSession, process: RelayProcess) -> bool:
    async with session.get(process.base_url + "/v1/outbox") as response:
        state = await response.json()
    return bool(state["pending"] == 0 and state["dead"] == 0)


async def test_a_killed_forwarder_loses_nothing_and_resends_at_most_one_batch(
    pair: Pair, customerio: FakeCustomerIO
) -> None:
    customerio.script(*(Reply(delay=0.2) for _ in range(10_000)))
    numbers = itertools.count()
    headers = {"Authorization": f"Bearer {pair.app_key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(20):
            await pair.post_events(session, [next(numbers) for _ in range(5)])
        await eventually(lambda: len(customerio.requests) >= 2, timeout=20)
        victim = _forwarding_process(pair)
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)
        victim.process = None
        for _ in range(10):  # the survivor alone now
            await pair.post_events(session, [next(numbers) for _ in range(5)])
    survivor = next(p for p in pair.processes if p.process)
    admin = {"Authorization": f"Bearer {pair.admin_key}"}
    async with aiohttp.ClientSession(headers=admin) as session:
        await eventually(lambda: _outbox_empty(session, survivor), timeout=60)
    sent = Counter(op["attributes"]["n"] for op in ops_of(customerio, "event"))
    assert pair.acknowledged <= set(sent), "acknowledged events never reached Customer.io"
    resent = sum(count - 1 for count in sent.values())
    assert resent <= MAX_BATCH_OPERATIONS
    ids_per_event: dict[int, set[str]] = {}
    for op in ops_of(customerio, "event"):
        ids_per_event.setdefault(op["attributes"]["n"], set()).add(op["id"])
    assert all(len(ids) == 1 for ids in ids_per_event.values()), "a resend changed the event id"


async def test_the_same_ids_sent_to_both_processes_at_once_are_stored_once(pair: Pair) -> None:
    headers = {"Authorization": f"Bearer {pair.app_key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        batches = [list(range(n, n + 10)) for n in range(0, 200, 10)]
        await asyncio.gather(*(pair.post_events(session, batch) for batch in batches))
    assert pair.duplicates_answered == 200  # each id: new at one process, a duplicate at the other
    stored = engines.query(pair.database, "SELECT count(*), count(DISTINCT client_id) FROM events")
    assert stored == [(200, 200)]


async def test_devices_registered_through_both_processes_are_counted_exactly(pair: Pair) -> None:
    headers = {"Authorization": f"Bearer {pair.app_key}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def register(i: int) -> int:
            process = pair.processes[i % 2]
            body = {"platform": "ios" if i % 3 else "android", "customer_id": f"c{i % PEOPLE}"}
            async with session.put(f"{process.base_url}/v1/devices/tok{i:04x}", json=body) as r:
                return r.status

        # every token registered through both processes at once, twice over
        statuses = await asyncio.gather(*(register(i) for i in [*range(60), *range(60)]))
    assert set(statuses) <= {200, 201}
    admin = {"Authorization": f"Bearer {pair.admin_key}"}
    async with aiohttp.ClientSession(headers=admin) as session:
        counts = []
        for person in range(PEOPLE):
            for process in pair.processes:
                async with session.get(f"{process.base_url}/v1/profiles/c{person}") as response:
                    counts.append((person, len((await response.json())["devices"])))
    assert counts == [(p, 12) for p in range(PEOPLE) for _ in pair.processes]
