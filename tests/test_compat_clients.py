"""Customer.io's and Segment's real server libraries pointed at relay by changing a host:
segment-analytics-python and customerio-cdp-analytics (``customerio.analytics``) with
``host=<relay>/cdp``, and the Track client ``customerio.track.CustomerIO`` over HTTPS (it always
speaks https) with a test CA from trustme. Asserts what relay stored and what it forwarded.

Packaging note: customerio (Track) and customerio-cdp-analytics both ship the ``customerio``
import package; the latter's ``customerio/__init__.py`` is empty and overwrites the former's when
installed after it. Both keep working through their modules, so these tests import
``customerio.track.CustomerIO`` and ``customerio.analytics``, never ``customerio.CustomerIO``.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from customerio import analytics as cio_analytics
from customerio.analytics.request import APIError as CdpAPIError
from customerio.client_base import CustomerIOException
from customerio.track import CustomerIO
from segment.analytics import Client as SegmentClient
from segment.analytics.request import APIError as SegmentAPIError

from relay_fakes.fake_customerio import FakeCustomerIO
from tests import engines
from tests.compat_support import (
    ANDROID_TOKEN,
    CLIENT_KEY,
    IOS_TOKEN,
    SERVER_KEY,
    Tls,
    TlsRelayServer,
    basic,
    delivery_ops,
    device,
    device_attributes,
    forwarding_sections,
    funnel,
    make_tls,
    person_ops,
    profile,
    register_client_key,
    register_server_key,
    send,
    tls_relay,
    track_v1_calls,
)
from tests.support import RelayServer, free_port, relay_command, run_cli
from tests.test_forwarding import drained


@pytest.fixture
async def relay(relay: RelayServer) -> RelayServer:
    await register_client_key(relay)
    return relay


def push_device_context(token: str = ANDROID_TOKEN) -> dict[str, Any]:
    return {"device": {"token": token, "type": "android"}}


# --- segment-analytics-python ---------------------------------------------------------------


def segment(relay: RelayServer, key: str = CLIENT_KEY, **options: Any) -> SegmentClient:
    return SegmentClient(key, host=relay.base_url + "/cdp", sync_mode=True, **options)


async def test_segment_identify_creates_the_profile(relay: RelayServer) -> None:
    client = segment(relay)
    await asyncio.to_thread(
        client.identify, "c1", {"email": "c1@example.com"}, anonymous_id="install-1"
    )
    stored = await profile(relay, "c1")
    assert stored["email"] == "c1@example.com"
    assert "install-1" in stored["anonymous_ids"]


async def test_segment_device_created_registers_the_device(relay: RelayServer) -> None:
    client = segment(relay)
    await asyncio.to_thread(
        client.track,
        "c1",
        "Device Created or Updated",
        device_attributes("false"),
        context=push_device_context(),
    )
    stored = await device(relay, ANDROID_TOKEN)
    assert (stored["platform"], stored["customer_id"]) == ("android", "c1")
    assert stored["push_enabled"] is False


async def test_segment_delivery_event_becomes_a_metric(relay: RelayServer) -> None:
    client = segment(relay)
    properties = {"deliveryId": "dlv-1", "metric": "opened", "recipient": ANDROID_TOKEN}
    await asyncio.to_thread(client.track, "c1", "Report Delivery Event", properties)
    assert (await funnel(relay, "dlv-1"))["opened"] == 1


async def test_segment_gzip_uploads_are_accepted(relay: RelayServer) -> None:
    client = segment(relay, gzip=True)
    await asyncio.to_thread(client.identify, "c1", {"email": "c1@example.com"})
    assert (await profile(relay, "c1"))["email"] == "c1@example.com"


async def test_segment_sees_an_unknown_key_as_a_401_with_code_and_message(
    relay: RelayServer,
) -> None:
    client = segment(relay, key="not-a-relay-key")
    with pytest.raises(SegmentAPIError) as raised:
        await asyncio.to_thread(client.identify, "c1", {"email": "c1@example.com"})
    assert raised.value.status == 401
    assert raised.value.code != "unknown"


# --- customerio-cdp-analytics ---------------------------------------------------------------


def cdp(relay: RelayServer, key: str = CLIENT_KEY, **options: Any) -> cio_analytics.Client:
    return cio_analytics.Client(key, host=relay.base_url + "/cdp", sync_mode=True, **options)


async def test_cdp_analytics_identify_creates_the_profile(relay: RelayServer) -> None:
    client = cdp(relay)
    await asyncio.to_thread(
        client.identify, "c1", {"email": "c1@example.com"}, anonymous_id="install-1"
    )
    stored = await profile(relay, "c1")
    assert stored["email"] == "c1@example.com"
    assert "install-1" in stored["anonymous_ids"]


async def test_cdp_analytics_track_of_a_delivery_event_is_a_metric(relay: RelayServer) -> None:
    client = cdp(relay)
    properties = {"deliveryId": "dlv-1", "metric": "delivered", "recipient": ANDROID_TOKEN}
    await asyncio.to_thread(client.track, "c1", "Report Delivery Event", properties)
    assert (await funnel(relay, "dlv-1"))["delivered"] == 1


async def test_cdp_analytics_device_created_registers_the_device(relay: RelayServer) -> None:
    client = cdp(relay)
    await asyncio.to_thread(
        client.track,
        "c1",
        "Device Created or Updated",
        device_attributes(),
        context=push_device_context(),
    )
    stored = await device(relay, ANDROID_TOKEN)
    assert (stored["platform"], stored["customer_id"]) == ("android", "c1")


async def test_cdp_analytics_gzip_uploads_are_accepted(relay: RelayServer) -> None:
    client = cdp(relay, gzip=True)
    await asyncio.to_thread(client.identify, "c1", {"email": "c1@example.com"})
    assert (await profile(relay, "c1"))["email"] == "c1@example.com"


async def test_cdp_analytics_with_a_region_key_authenticates_with_bearer(
    relay: RelayServer,
) -> None:
    key = "pk_us_0123456789abcdef"
    await relay.store.create_key("default", "app", "region-shaped key", key)
    client = cdp(relay, key=key)
    await asyncio.to_thread(client.identify, "c1", {"email": "c1@example.com"})
    assert (await profile(relay, "c1"))["email"] == "c1@example.com"


async def test_cdp_analytics_sees_an_unknown_key_as_a_401_with_code_and_message(
    relay: RelayServer,
) -> None:
    client = cdp(relay, key="not-a-relay-key")
    with pytest.raises(CdpAPIError) as raised:
        await asyncio.to_thread(client.identify, "c1", {"email": "c1@example.com"})
    assert raised.value.status == 401
    assert raised.value.code != "unknown"


# --- customerio (Track) over HTTPS ----------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


@pytest.fixture
async def https_relay(
    tmp_path: Path, tls: Tls, customerio: FakeCustomerIO
) -> AsyncIterator[TlsRelayServer]:
    """relay serving HTTPS (server.tls_cert/tls_key), forwarding to the fake Customer.io."""
    server = tls_relay(tmp_path, tls, **forwarding_sections(customerio, cdp=False))
    await server.start()
    await register_client_key(server)
    await register_server_key(server)
    yield server
    await server.close()


@pytest.fixture
def cio(
    https_relay: TlsRelayServer, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CustomerIO]:
    """The Track client as a backend configures it (a host and port, https, the test CA),
    with a server key: back ends merge and delete people."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    client = CustomerIO("backend-site-id", SERVER_KEY, host="localhost", port=https_relay.port)
    client.http.verify = str(tls.ca_path)
    yield client
    client.close()


async def test_track_client_identify_is_stored_and_forwarded(
    cio: CustomerIO, https_relay: TlsRelayServer, customerio: FakeCustomerIO
) -> None:
    await asyncio.to_thread(cio.identify, "c1", email="c1@example.com", anonymous_id="a1")
    stored = await profile(https_relay, "c1")
    assert stored["email"] == "c1@example.com"
    assert "a1" in stored["anonymous_ids"]
    await drained(https_relay)
    (identify,) = person_ops(customerio, "identify")
    assert identify["identifiers"] == {"id": "c1"}
    assert identify["attributes"]["anonymous_id"] == "a1"


async def test_track_client_add_device_is_stored_and_forwarded_once(
    cio: CustomerIO, https_relay: TlsRelayServer, customerio: FakeCustomerIO
) -> None:
    await asyncio.to_thread(
        cio.add_device, "c1", IOS_TOKEN, "ios", attributes={"push_enabled": "false"}
    )
    stored = await device(https_relay, IOS_TOKEN)
    assert (stored["platform"], stored["customer_id"], stored["push_enabled"]) == (
        "ios",
        "c1",
        False,
    )
    await drained(https_relay)
    added = [op["identifiers"]["id"] for op in person_ops(customerio, "add_device")]
    assert added == ["c1"]


async def test_track_client_delete_device_unregisters_it(
    cio: CustomerIO, https_relay: TlsRelayServer, customerio: FakeCustomerIO
) -> None:
    await asyncio.to_thread(cio.add_device, "c1", IOS_TOKEN, "ios")
    await asyncio.to_thread(cio.delete_device, "c1", IOS_TOKEN)
    assert (await device(https_relay, IOS_TOKEN))["status"] == "unregistered"
    await drained(https_relay)
    deleted = [
        (op["identifiers"]["id"], op["device"]["token"])
        for op in person_ops(customerio, "delete_device")
    ]
    assert deleted == [("c1", IOS_TOKEN)]


async def test_track_client_event_after_an_open_is_a_conversion(
    cio: CustomerIO, https_relay: TlsRelayServer, customerio: FakeCustomerIO
) -> None:
    await asyncio.to_thread(cio.add_device, "c1", IOS_TOKEN, "ios")
    opened = {"delivery_id": "dlv-1", "metric": "opened", "recipient": IOS_TOKEN}
    auth = {"Authorization": basic("backend-site-id", CLIENT_KEY)}
    assert (await send(https_relay, "POST", "/api/v1/metrics", opened, headers=auth)).status == 200
    await asyncio.to_thread(cio.track, "c1", "Order Completed", data={"total": 12.5})
    assert (await funnel(https_relay, "dlv-1"))["converted"] == 1
    await drained(https_relay)
    assert ("dlv-1", "converted") in [
        (op["identifiers"]["id"], op["name"]) for op in delivery_ops(customerio)
    ]


async def test_track_client_anonymous_event_is_forwarded(
    cio: CustomerIO, https_relay: TlsRelayServer, customerio: FakeCustomerIO
) -> None:
    await asyncio.to_thread(cio.track_anonymous, "a1", "Viewed Product", data={"sku": "X1"})
    await drained(https_relay)
    (call,) = [c for c in track_v1_calls(customerio) if c["v1"] == "POST /api/v1/events"]
    assert call["body"]["anonymous_id"] == "a1"
    assert call["body"]["name"] == "Viewed Product"


async def test_track_client_merge_customers_moves_the_secondarys_devices(
    cio: CustomerIO, https_relay: TlsRelayServer, customerio: FakeCustomerIO
) -> None:
    await asyncio.to_thread(cio.identify, "primary", email="p@example.com")
    await asyncio.to_thread(cio.add_device, "secondary", IOS_TOKEN, "ios")
    await asyncio.to_thread(cio.merge_customers, "id", "primary", "id", "secondary")
    merged = await profile(https_relay, "primary")
    assert [d["token"] for d in merged["devices"]] == [IOS_TOKEN]
    await drained(https_relay)
    merges = person_ops(customerio, "merge") + [
        c for c in track_v1_calls(customerio) if c["v1"] == "POST /api/v1/merge_customers"
    ]
    assert len(merges) == 1


async def test_track_client_batch_applies_each_operation(
    cio: CustomerIO, https_relay: TlsRelayServer, customerio: FakeCustomerIO
) -> None:
    operations = [
        {
            "type": "person",
            "identifiers": {"id": "c1"},
            "action": "identify",
            "attributes": {"email": "c1@example.com"},
        },
        {
            "type": "person",
            "identifiers": {"id": "c1"},
            "action": "add_device",
            "device": {"token": IOS_TOKEN, "platform": "ios"},
        },
    ]
    await asyncio.to_thread(cio.batch, operations)
    stored = await profile(https_relay, "c1")
    assert stored["email"] == "c1@example.com"
    assert [d["token"] for d in stored["devices"]] == [IOS_TOKEN]
    await drained(https_relay)
    assert [op["identifiers"]["id"] for op in person_ops(customerio, "add_device")] == ["c1"]


async def test_track_client_with_an_unknown_key_gets_401(
    https_relay: TlsRelayServer, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    client = CustomerIO("site", "not-a-relay-key", host="localhost", port=https_relay.port)
    client.http.verify = str(tls.ca_path)
    try:
        with pytest.raises(CustomerIOException, match="^401"):
            await asyncio.to_thread(client.identify, "c1", email="c1@example.com")
    finally:
        client.close()


async def test_relay_serve_speaks_https_from_tls_cert_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ``relay serve`` with [server] tls_cert/tls_key, reached by the Track client."""
    tls = make_tls(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    port = free_port()
    config = tmp_path / "relay.toml"
    url = engines.database_url(tmp_path / "relay.db")
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ntls_cert = "{tls.cert_path}"\n'
        f'tls_key = "{tls.key_path}"\n\n[storage]\nurl = "{url}"\n',
        encoding="utf-8",
    )
    created = run_cli(
        "keys",
        "create",
        "--app",
        "default",
        "--role",
        "app",
        "--value",
        CLIENT_KEY,
        "--config",
        str(config),
    )
    assert created.returncode == 0, created.stderr
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        relay_command("serve", "--config", str(config)),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        connector = aiohttp.TCPConnector(ssl=tls.client_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    async with session.get(f"https://localhost:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "relay did not answer over https"
                await asyncio.sleep(0.05)
        client = CustomerIO("site", CLIENT_KEY, host="localhost", port=port)
        client.http.verify = str(tls.ca_path)
        try:
            await asyncio.to_thread(client.identify, "c1", email="c1@example.com")
        finally:
            client.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
