"""Backpressure (API.md "Operations"): with ``[forwarding] max_pending`` set and forwarding
enabled, once that many operations wait for Customer.io, writes that would add to them answer
503 + ``Retry-After`` in their surface's shape until the backlog drains; /readyz stays 200 and
says ``"backpressure": true``. Real relay servers forward to the fake Customer.io, which is made
to fail so that nothing drains.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from relay.settings import ForwardingSettings
from relay_fakes.fake_customerio import FakeCustomerIO
from tests.compat_support import (
    SERVER_KEY,
    SITE_ID,
    basic,
    identify_call,
    mobile_batch,
    register_client_key,
    register_server_key,
    send,
)
from tests.support import RelayServer, eventually, make_settings, started_servers, two_apps
from tests.test_forwarding import drained
from tests.test_forwarding_failures import identified

StartRelay = Callable[..., Awaitable[RelayServer]]

MAX_PENDING = 3
FOREVER = 100_000  # failed answers queued on the fake: more than any test sends


async def identify(relay: RelayServer, customer_id: str) -> int:
    """The status of one native identify: one operation for Customer.io when accepted."""
    answer = await (await relay.app_api()).post("/v1/identify", {"customer_id": customer_id})
    return answer.status


async def readiness(relay: RelayServer) -> tuple[int, dict[str, Any]]:
    answer = await relay.api().get("/readyz")
    return answer.status, answer.body


async def backpressure(relay: RelayServer) -> bool:
    return bool((await readiness(relay))[1]["backpressure"])


async def counted_pending(relay: RelayServer) -> float:
    """``relay_outbox_pending`` as the forwarder last counted it."""
    text = (await relay.api().get("/metrics")).text
    gauge = next(line for line in text.splitlines() if line.startswith("relay_outbox_pending "))
    return float(gauge.split()[1])


async def fill_backlog(relay: RelayServer) -> None:
    """Queue exactly `MAX_PENDING` operations and wait until the forwarder has counted them."""
    for n in range(MAX_PENDING):
        assert await identify(relay, f"queued-{n}") == 200
    await eventually(lambda: backpressure(relay))


@pytest.fixture
async def backlogged(start_forwarding_relay: StartRelay, customerio: FakeCustomerIO) -> RelayServer:
    """A relay whose outbox holds `MAX_PENDING` operations that Customer.io keeps refusing."""
    customerio.fail_next(FOREVER, 503)
    relay = await start_forwarding_relay(max_pending=MAX_PENDING)
    await fill_backlog(relay)
    return relay


# -- refused writes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/identify"),
        ("PUT", "/v1/devices/tok-1"),
        ("DELETE", "/v1/devices/tok-1"),
        ("POST", "/v1/metrics"),
        ("POST", "/v1/events"),
        ("POST", "/v1/profiles/merge"),
        ("DELETE", "/v1/profiles/c1"),
    ],
)
async def test_a_native_write_past_max_pending_is_503_problem_with_retry_after(
    backlogged: RelayServer, method: str, path: str
) -> None:
    server = backlogged.api(await backlogged.key("server"))
    answer = await server.request(method, path, json={})
    assert answer.status == 503, answer.text
    assert answer.content_type == "application/problem+json"
    assert answer.body["status"] == 503
    assert "Customer.io" in answer.body["detail"]
    assert int(answer.headers["Retry-After"]) > 0


async def test_a_pipelines_batch_past_max_pending_is_503_in_the_pipelines_shape(
    backlogged: RelayServer,
) -> None:
    await register_client_key(backlogged)
    body = mobile_batch(identify_call("p1", anonymous_id="install-1"))
    answer = await send(backlogged, "POST", "/cdp/v1/batch", body)
    assert answer.status == 503, answer.text
    assert answer.content_type == "application/json"
    assert set(answer.body) == {"code", "message"}
    assert int(answer.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    "path, body, shape",
    [
        ("/api/v1/customers/c1", {"email": "c1@example.com"}, {"meta"}),
        ("/push/events", {"delivery_id": "d1", "event": "opened", "device_id": "t"}, {"meta"}),
        ("/api/v2/entity", {"type": "person", "identifiers": {"id": "c1"}}, {"errors"}),
    ],
)
async def test_a_track_write_past_max_pending_is_503_in_the_track_shape(
    backlogged: RelayServer, path: str, body: dict[str, Any], shape: set[str]
) -> None:
    await register_server_key(backlogged)
    method = "PUT" if path.startswith("/api/v1/customers/") else "POST"
    headers = {"Authorization": basic(SITE_ID, SERVER_KEY)}
    answer = await send(backlogged, method, path, body, headers=headers)
    assert answer.status == 503, answer.text
    assert set(answer.body) == shape
    assert int(answer.headers["Retry-After"]) > 0


async def test_readyz_stays_200_and_says_backpressure_while_the_backlog_is_full(
    backlogged: RelayServer,
) -> None:
    status, body = await readiness(backlogged)
    assert status == 200
    assert body["status"] == "ready"
    assert body["backpressure"] is True


# -- never refused --------------------------------------------------------------------------


async def test_reads_and_outbox_replay_are_not_refused_under_backpressure(
    backlogged: RelayServer,
) -> None:
    admin = await backlogged.admin_api()
    assert (await admin.get("/v1/outbox")).status == 200
    assert (await admin.get("/v1/profiles/queued-0")).status == 200
    replay = await admin.post("/v1/outbox/replay")
    assert replay.status == 200, replay.text
    assert replay.body == {"replayed": 0}


async def test_max_pending_0_never_refuses_a_write(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    customerio.fail_next(FOREVER, 503)
    relay = await start_forwarding_relay()  # max_pending defaults to 0: off
    for n in range(10):
        assert await identify(relay, f"c{n}") == 200
    await eventually(lambda: _at_least(counted_pending(relay), 10))
    assert await identify(relay, "one-more") == 200
    assert await backpressure(relay) is False


async def test_without_customerio_credentials_no_write_is_refused(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, apps=two_apps(), forwarding=ForwardingSettings(max_pending=1)
    )
    async with started_servers() as start:
        relay = await start(settings)
        for n in range(5):
            assert await identify(relay, f"c{n}") == 200
        outbox = (await (await relay.admin_api()).get("/v1/outbox")).body
        assert outbox["pending"] >= 5  # kept for when credentials are set, never forwarded
        status, body = await readiness(relay)
        assert (status, body["forwarding"], body["backpressure"]) == (200, "disabled", False)


# -- recovery -------------------------------------------------------------------------------


async def test_writes_resume_once_customerio_recovers_and_the_backlog_drains(
    backlogged: RelayServer, customerio: FakeCustomerIO
) -> None:
    assert await identify(backlogged, "refused") == 503
    customerio.reset()  # answers 200 from now on
    await drained(backlogged)
    await eventually(lambda: _not(backpressure(backlogged)))
    assert await identify(backlogged, "after-recovery") == 200
    await register_client_key(backlogged)
    batch = mobile_batch(identify_call("p2", anonymous_id="install-2"))
    assert (await send(backlogged, "POST", "/cdp/v1/b", batch)).status == 200


async def test_every_write_acknowledged_under_backpressure_reaches_customerio(
    start_forwarding_relay: StartRelay, customerio: FakeCustomerIO
) -> None:
    customerio.fail_next(FOREVER, 503)
    relay = await start_forwarding_relay(max_pending=MAX_PENDING)
    acknowledged: list[str] = []
    refused: list[int] = []
    # Written as clients do, without waiting for the count: some writes past max_pending are
    # accepted before the forwarder counts them (at most a second's worth), then refused.
    while len(refused) < 3:
        assert len(acknowledged) < 1000, "never refused"
        customer_id = f"c{len(acknowledged) + len(refused)}"
        status = await identify(relay, customer_id)
        if status == 200:
            acknowledged.append(customer_id)
        else:
            refused.append(status)
        await asyncio.sleep(0.01)
    assert set(refused) == {503}
    customerio.reset()
    await drained(relay)
    late = "after-recovery"
    assert await eventually(lambda: _accepted(identify(relay, late)))
    acknowledged.append(late)
    await drained(relay)
    assert sorted(identified(customerio)) == sorted(acknowledged)


async def _at_least(count: Awaitable[float], minimum: float) -> bool:
    return await count >= minimum


async def _not(flag: Awaitable[bool]) -> bool:
    return not await flag


async def _accepted(status: Awaitable[int]) -> bool:
    return await status == 200
