"""How the forwarder copes with a Customer.io that fails: retries, dead letters, outages, the
rate ceiling, restarts and crashes. Real relay servers (in-process or ``python -m relay serve``)
forward to the validating Customer.io stand-in (fixture ``customerio``); failures are scripted.

Timing checks are lower bounds only ("the retry did not come before X"), never "fast enough".
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay.settings import CustomerioSettings, ForwardingSettings
from relay_fakes.fake_customerio import FakeCustomerIO, Reply
from tests.conftest import API_KEY, SITE_ID
from tests.support import (
    RelayProcess,
    RelayServer,
    eventually,
    free_port,
    make_settings,
    run_cli,
    two_apps,
    write_config,
)
from tests.test_forwarding import drained, ops_of

StartRelay = Callable[..., Awaitable[RelayServer]]


async def outbox(relay: RelayServer) -> dict[str, Any]:
    answer = await (await relay.admin_api()).get("/v1/outbox")
    assert answer.status == 200
    return answer.body


async def identify(relay: RelayServer, customer_id: str) -> None:
    answer = await (await relay.app_api()).post("/v1/identify", {"customer_id": customer_id})
    assert answer.status in (200, 202), answer.text


def identified(fake: FakeCustomerIO) -> list[str]:
    return [op["identifiers"]["id"] for op in ops_of(fake, "identify")]


def answered(fake: FakeCustomerIO, count: int) -> Callable[[], bool]:
    """At least ``count`` requests reached the fake and were answered."""
    return lambda: sum(r.status is not None for r in fake.requests) >= count


async def forwarding_state(relay: RelayServer) -> tuple[int, str]:
    answer = await relay.api().get("/readyz")
    return answer.status, answer.body["forwarding"]


# -- retryable failures -------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 408])
async def test_a_retryable_status_is_retried_and_delivered_exactly_once(
    status: int, forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    customerio.fail_next(2, status)
    await identify(forwarding_relay, "c1")
    state = await drained(forwarding_relay)
    assert [r.status for r in customerio.requests] == [status, status, 200]
    assert identified(customerio) == ["c1"]
    assert state["dead"] == 0


async def test_a_refused_connection_is_retried_until_customerio_is_reachable(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens here yet
    settings = make_settings(
        tmp_path,
        apps=two_apps(),
        customerio=CustomerioSettings(
            site_id=SITE_ID, api_key=API_KEY, track_url=f"http://127.0.0.1:{port}"
        ),
        forwarding=ForwardingSettings(retry_initial_seconds=0.05, retry_max_seconds=0.2),
    )
    relay = RelayServer(settings)
    await relay.start()
    fake = FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY)
    try:
        await identify(relay, "c1")

        async def failed_to_connect() -> dict[str, Any] | None:
            state = await outbox(relay)
            return state if state["last_error"] else None

        state = await eventually(failed_to_connect)
        assert state["pending"] == 1 and state["dead"] == 0
        await fake.start(port=port)
        assert (await drained(relay))["dead"] == 0
        assert identified(fake) == ["c1"]
        assert fake.invalid == []
    finally:
        await relay.close()
        await fake.stop()


async def test_a_request_that_times_out_is_retried(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    relay = await start_forwarding_relay(request_timeout_seconds=0.3)
    customerio.script(Reply(delay=1.5))
    await identify(relay, "c1")
    state = await drained(relay)
    assert state["dead"] == 0
    assert len(customerio.requests) >= 2
    # The timed-out request stays unanswered from relay's point of view, so it was sent again.
    assert customerio.requests[1].body == customerio.requests[0].body


async def test_a_429_with_retry_after_stops_all_sending_until_it_elapsed(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    customerio.script(Reply(status=429, retry_after=0.5))
    await identify(forwarding_relay, "c1")
    await eventually(answered(customerio, 1))
    await identify(forwarding_relay, "c2")  # another lane: paused all the same
    await drained(forwarding_relay)
    first, *later = customerio.timestamps()
    assert later, "nothing was retried"
    assert min(later) - first >= 0.5
    assert sorted(identified(customerio)) == ["c1", "c2"]


async def test_a_429_without_retry_after_is_retried_after_a_backoff(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    relay = await start_forwarding_relay(retry_initial_seconds=0.4, retry_max_seconds=1.0)
    customerio.script(Reply(status=429))
    await identify(relay, "c1")
    await drained(relay)
    first, second = customerio.timestamps()
    assert second - first >= 0.4 * 0.5  # the jitter keeps at least half the initial delay
    assert identified(customerio) == ["c1"]


# -- dead letters -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_a_refusing_4xx_is_dead_lettered_without_a_retry(
    status: int, forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    customerio.script(Reply(status=status))
    await identify(forwarding_relay, "c1")

    async def dead() -> dict[str, Any] | None:
        state = await outbox(forwarding_relay)
        return state if state["dead"] else None

    state = await eventually(dead)
    assert state["dead"] == 1 and state["pending"] == 0
    assert f"HTTP {status}" in state["last_error"]
    await asyncio.sleep(0.5)  # several retry intervals (0.05 .. 0.2 s) pass
    assert len(customerio.requests) == 1


async def test_replaying_a_dead_letter_delivers_it(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    customerio.script(Reply(status=400))
    await identify(forwarding_relay, "c1")
    await eventually(lambda: _dead_count(forwarding_relay))
    replayed = await (await forwarding_relay.admin_api()).post("/v1/outbox/replay")
    assert replayed.status == 200
    assert replayed.body == {"replayed": 1}
    state = await drained(forwarding_relay)
    assert state["dead"] == 0
    assert identified(customerio) == ["c1"]
    assert [r.status for r in customerio.requests] == [400, 200]


async def _dead_count(relay: RelayServer) -> int:
    return int((await outbox(relay))["dead"])


async def test_a_207_dead_letters_exactly_the_failed_operations(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    customerio.script(Reply(status=207, failed_indexes=(1, 3)))
    app = await forwarding_relay.app_api()
    events = [
        {"id": f"e{n}", "name": "Tick", "customer_id": "c1", "properties": {"n": n}}
        for n in range(5)
    ]
    assert (await app.post("/v1/events", {"events": events})).status in (200, 202)
    await eventually(lambda: _dead_count(forwarding_relay))
    (request,) = customerio.requests  # one batch with every operation
    sent = [_key(op) for op in request.body["batch"]]
    refused = {sent[1], sent[3]}
    assert {_key(op) for op in customerio.operations()} == set(sent) - refused
    state = await outbox(forwarding_relay)
    assert state["dead"] == 2 and state["pending"] == 0
    assert "HTTP 207" in state["last_error"]
    await asyncio.sleep(0.5)  # several retry intervals: the accepted ones are not resent
    assert len(customerio.requests) == 1
    # Replaying sends exactly the refused ones, nothing that was accepted.
    admin = await forwarding_relay.admin_api()
    assert (await admin.post("/v1/outbox/replay")).body == {"replayed": 2}
    await drained(forwarding_relay)
    resent = [_key(op) for r in customerio.requests[1:] for op in r.accepted]
    assert sorted(resent) == sorted(refused)
    assert Counter(_key(op) for op in customerio.operations()) == Counter(sent)


def _key(op: Any) -> str:
    return json.dumps(op, sort_keys=True)


async def test_a_fact_is_dead_lettered_after_the_give_up_horizon_with_the_last_error(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    horizon_hours = 0.0003  # 1.08 s
    relay = await start_forwarding_relay(give_up_hours=horizon_hours)
    customerio.fail_next(1000, 503)
    # The horizon counts from the first attempt, which comes after this instant; the span
    # between the upstream's first and last arrivals is shorter by the answers' latencies.
    started = time.monotonic()
    await identify(relay, "c1")
    await eventually(lambda: _dead_count(relay), timeout=15)
    assert time.monotonic() - started >= horizon_hours * 3600 - 0.05  # not before the horizon
    assert len(customerio.timestamps()) > 1  # retried until then
    state = await outbox(relay)
    assert state["pending"] == 0
    assert "gave up" in state["last_error"] and "HTTP 503" in state["last_error"]


# -- outage mode, rate ceiling ------------------------------------------------------------


async def test_repeated_failures_degrade_to_probing_and_recover(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    probe_interval = 0.5
    relay = await start_forwarding_relay(retry_max_seconds=probe_interval)
    customerio.fail_next(100_000, 503)
    await identify(relay, "c0")

    async def degraded() -> bool:
        return await forwarding_state(relay) == (200, "degraded")

    await eventually(degraded)
    reason = (await relay.api().get("/readyz")).body["reason"]
    assert "Customer.io failed" in reason and "503" in reason, reason
    # New facts keep coming during the outage; each would trigger a request if relay did not
    # hold back. Over `window` seconds it may probe at most once per probe interval.
    before, started, n = len(customerio.requests), time.monotonic(), 0
    while time.monotonic() - started < 2.0:
        n += 1
        await identify(relay, f"c{n}")
        await asyncio.sleep(0.05)
    during = len(customerio.requests) - before
    elapsed = time.monotonic() - started
    assert n >= 5
    assert during <= elapsed / probe_interval + 2, f"{during} requests for {n} facts"
    assert customerio.invalid == []
    customerio.reset()  # Customer.io is back

    async def enabled() -> bool:
        return await forwarding_state(relay) == (200, "enabled")

    await eventually(enabled)
    await drained(relay)
    assert sorted(identified(customerio)) == sorted(f"c{i}" for i in range(n + 1))


async def test_requests_stay_under_the_rate_ceiling(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    relay = await start_forwarding_relay(max_requests_per_second=20)
    app = await relay.app_api()
    events = [{"id": f"e{n}", "name": "Viewed", "anonymous_id": f"a{n}"} for n in range(50)]
    assert (await app.post("/v1/events", {"events": events})).status in (200, 202)
    await eventually(lambda: len(customerio.requests) == 50, timeout=20)
    await drained(relay)
    assert len(customerio.requests) == 50  # each anonymous event is its own v1 request
    assert customerio.max_rate(1.0) <= 20
    assert customerio.max_rate(0.5) <= 10


# -- ordering and schedules ---------------------------------------------------------------


async def test_a_persons_devices_and_events_wait_for_their_failed_identify(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    relay = await start_forwarding_relay(retry_initial_seconds=0.3, retry_max_seconds=0.6)
    customerio.fail_next(2, 500)
    await identify(relay, "c1")
    await eventually(answered(customerio, 1))
    app = await relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c1"})
    await app.post("/v1/events", {"events": [{"id": "e1", "name": "Tick", "customer_id": "c1"}]})
    await drained(relay)
    statuses = [r.status for r in customerio.requests]
    assert statuses[:2] == [500, 500]
    # Until the identify was accepted, c1's operations only ever went behind it.
    for request in customerio.requests[: statuses.index(200) + 1]:
        assert request.body["batch"][0]["action"] == "identify"
    actions = [op["action"] for op in ops_of(customerio)]
    assert actions == ["identify", "add_device", "event"]


async def test_a_restart_resumes_the_persisted_retry_schedule(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    initial = 2.0
    relay = await start_forwarding_relay(retry_initial_seconds=initial, retry_max_seconds=4.0)
    customerio.fail_next(1, 503)
    await identify(relay, "c1")
    await eventually(answered(customerio, 1))
    await eventually(lambda: _has_error(relay))
    await relay.close()
    restarted = await start_forwarding_relay(retry_initial_seconds=initial, retry_max_seconds=4.0)
    await drained(restarted)
    first, second = customerio.timestamps()
    assert second - first >= initial * 0.5
    assert identified(customerio) == ["c1"]


async def _has_error(relay: RelayServer) -> bool:
    return bool((await outbox(relay))["last_error"])


async def test_retry_after_is_honoured_across_a_restart(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    relay = await start_forwarding_relay()
    # A slow 429: Retry-After counts from the answer, not from when the request went out.
    customerio.script(Reply(status=429, retry_after=1.0, delay=0.6))
    await identify(relay, "c1")
    await eventually(lambda: _has_error(relay))
    await relay.close()
    restarted = await start_forwarding_relay()
    await drained(restarted)
    first, second = customerio.timestamps()
    assert second - first >= 0.6 + 1.0
    assert identified(customerio) == ["c1"]


# -- CLI ----------------------------------------------------------------------------------


async def test_the_cli_shows_and_replays_dead_letters_of_a_running_relay(
    tmp_path: Path, forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", free_port())
    customerio.script(Reply(status=400))
    await identify(forwarding_relay, "c1")
    await eventually(lambda: _dead_count(forwarding_relay))

    status = await asyncio.to_thread(run_cli, "outbox", "status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["dead"] == 1 and shown["pending"] == 0
    assert "HTTP 400" in shown["last_error"]

    replay = await asyncio.to_thread(run_cli, "outbox", "replay", "--config", str(config))
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout) == {"replayed": 1}
    await drained(forwarding_relay)
    assert identified(customerio) == ["c1"]
    after = await asyncio.to_thread(run_cli, "outbox", "status", "--config", str(config))
    assert json.loads(after.stdout)["dead"] == 0


# -- crashes and graceful stops of a real `relay serve` -------------------------------------


class EventPoster:
    """Posts numbered person events to a relay process; remembers which were acknowledged."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url, self.key = base_url, key
        self.acknowledged: set[int] = set()
        self.next = 0

    async def run(self, stop: asyncio.Event, per_request: int = 3) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            while not stop.is_set():
                numbers = range(self.next, self.next + per_request)
                self.next += per_request
                events = [
                    {
                        "id": f"e{n}",
                        "name": "Tick",
                        "customer_id": f"c{n % 7}",
                        "properties": {"n": n},
                    }
                    for n in numbers
                ]
                try:
                    url = self.base_url + "/v1/events"
                    async with session.post(url, json={"events": events}) as response:
                        if response.status in (200, 202):
                            self.acknowledged.update(numbers)
                except aiohttp.ClientError:
                    return  # relay is gone
                await asyncio.sleep(0.01)


def _relay_process(tmp_path: Path, fake: FakeCustomerIO) -> RelayProcess:
    extra = (
        f'\n[customerio]\nsite_id = "{SITE_ID}"\napi_key = "{API_KEY}"\ntrack_url = "{fake.url}"\n'
        "\n[forwarding]\nretry_initial_seconds = 0.05\nretry_max_seconds = 0.2\n"
        # on PostgreSQL a killed process's forwarder lease must run out before the restart
        # forwards: a short one keeps the test short
        "max_requests_per_second = 1000\nlease_seconds = 1\n"
    )
    port = free_port()
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", port, extra)
    return RelayProcess(config, tmp_path, port)


def _create_key(process: RelayProcess, role: str) -> str:
    created = run_cli("keys", "create", "--role", role, "--config", str(process.config_path))
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


async def _feed_and_signal(
    process: RelayProcess, fake: FakeCustomerIO, sig: int
) -> tuple[EventPoster, int, int]:
    """Start relay, feed it events while Customer.io answers slowly, and send ``sig`` while a
    request is in flight. Returns the poster, relay's exit status and the index of the request
    that was in flight."""
    fake.script(*(Reply(delay=0.1) for _ in range(10_000)))
    key = await asyncio.to_thread(_create_key, process, "app")
    await process.start()
    poster, stop = EventPoster(process.base_url, key), asyncio.Event()
    posting = asyncio.create_task(poster.run(stop))
    try:
        await eventually(lambda: len(fake.requests) >= 4 and fake.requests[-1].status is None)
        in_flight = len(fake.requests) - 1
        assert process.process is not None
        process.process.send_signal(sig)
        code = await asyncio.to_thread(process.process.wait, 30)
        process.process = None
    finally:
        stop.set()
        await posting
    return poster, code, in_flight


async def _restart_and_drain(
    process: RelayProcess, fake: FakeCustomerIO, poster: EventPoster
) -> None:
    """Restart relay; wait until every acknowledged event arrived and the outbox is empty."""
    admin_key = await asyncio.to_thread(_create_key, process, "admin")
    await process.start()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin_key}"}) as s:

            async def empty() -> bool:
                async with s.get(process.base_url + "/v1/outbox") as response:
                    state = await response.json()
                return state["pending"] == 0 and state["dead"] == 0

            await eventually(empty, timeout=20)
    finally:
        assert await asyncio.to_thread(process.stop) == 0
    arrived = {op["attributes"]["n"] for op in ops_of(fake, "event")}
    assert poster.acknowledged <= arrived, "acknowledged events were lost"
    # Per person, events first arrived in the order relay acknowledged them.
    first_seen: dict[str, list[int]] = {}
    for op in ops_of(fake, "event"):
        numbers = first_seen.setdefault(op["identifiers"]["id"], [])
        if op["attributes"]["n"] not in numbers:
            numbers.append(op["attributes"]["n"])
    assert all(numbers == sorted(numbers) for numbers in first_seen.values())


def _ulids_per_event(fake: FakeCustomerIO) -> dict[int, set[str]]:
    ulids: dict[int, set[str]] = {}
    for op in ops_of(fake, "event"):
        ulids.setdefault(op["attributes"]["n"], set()).add(op["id"])
    return ulids


async def test_a_killed_relay_delivers_every_acknowledged_event_after_a_restart(
    tmp_path: Path, customerio: FakeCustomerIO
) -> None:
    process = _relay_process(tmp_path, customerio)
    poster, code, in_flight = await _feed_and_signal(process, customerio, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert len(poster.acknowledged) >= 6
    await _restart_and_drain(process, customerio, poster)
    # A resend keeps the event's ULID, so Customer.io can de-duplicate it ...
    assert all(len(ids) == 1 for ids in _ulids_per_event(customerio).values())
    # ... and only the request that was in flight when relay died is sent again.
    counts = Counter(op["id"] for op in ops_of(customerio, "event"))
    duplicated = {ulid for ulid, n in counts.items() if n > 1}
    unsettled = {op.get("id") for op in customerio.requests[in_flight].body["batch"]}
    assert duplicated <= unsettled
    print(f"SIGKILL mid-drain: {sum(counts.values()) - len(counts)} duplicate event(s)")


async def test_a_sigterm_mid_drain_exits_0_and_loses_and_repeats_nothing(
    tmp_path: Path, customerio: FakeCustomerIO
) -> None:
    process = _relay_process(tmp_path, customerio)
    poster, code, _ = await _feed_and_signal(process, customerio, signal.SIGTERM)
    assert code == 0
    assert len(poster.acknowledged) >= 6
    await _restart_and_drain(process, customerio, poster)
    # The forwarder settled its last request before exiting: nothing is sent twice.
    counts = Counter(op["id"] for op in ops_of(customerio, "event"))
    assert set(counts.values()) == {1}
