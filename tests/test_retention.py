"""Retention by timestamp (API.md "Config" ``[retention]``, "CLI" ``relay prune``).

Facts older than their horizon (now - days) are refused at every ingest door, so a pruned id
never comes back; stored ones are deleted by ``relay prune`` and by the server (at start-up,
then daily), with the outbox items still waiting to forward them.

Old data can only be stored while retention is off, so tests seed through a relay with
``metrics_days = events_days = 0`` and prune the same database file with a shorter horizon:
``relay prune`` in a subprocess with its own config (beside the seeding relay, which keeps
serving), or a second relay started on the file.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay.settings import RetentionSettings, Settings
from tests import engines
from tests.compat_support import (
    CLIENT_KEY,
    basic,
    delivery_event,
    mobile_batch,
    parsed,
    register_client_key,
    sdk_event,
    send,
)
from tests.steps import counts, counts_of, device, profile
from tests.support import (
    Answer,
    Api,
    RelayServer,
    eventually,
    free_port,
    make_settings,
    run_cli,
    write_config,
)

DAY = 86_400
NOW = int(time.time())
OLD = NOW - 100 * DAY  # past a 30-day horizon
RECENT = NOW - DAY  # within it
KEPT_DAYS = 30
TRACK_AUTH = {"Authorization": basic("any-site-id", CLIENT_KEY)}

_ids = itertools.count(1)


def fresh(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def metric(token: str, kind: str, timestamp: float, **fields: Any) -> dict[str, Any]:
    return {"id": fresh("m"), "metric": kind, "token": token, "timestamp": timestamp, **fields}


def event(customer_id: str, timestamp: float, name: str = "Order Completed") -> dict[str, Any]:
    return {"id": fresh("e"), "name": name, "customer_id": customer_id, "timestamp": timestamp}


async def post_metrics(api: Api, *items: dict[str, Any]) -> Answer:
    answer = await api.post("/v1/metrics", {"metrics": list(items)})
    assert answer.status == 200, answer.text
    return answer


async def post_events(api: Api, *items: dict[str, Any]) -> Answer:
    answer = await api.post("/v1/events", {"events": list(items)})
    assert answer.status == 200, answer.text
    return answer


def accepted_all(answer: Answer) -> None:
    assert answer.body["rejected"] == [], answer.body


def settings_with(tmp_path: Path, metrics_days: float, events_days: float) -> Settings:
    return make_settings(tmp_path, retention=RetentionSettings(metrics_days, events_days))


@pytest.fixture
async def seeding(tmp_path: Path) -> AsyncIterator[RelayServer]:
    """A relay with retention off (it stores anything old) on ``tmp_path/relay.db``."""
    server = RelayServer(settings_with(tmp_path, 0, 0))
    await server.start()
    yield server
    await server.close()


def prune_config(
    tmp_path: Path, metrics_days: float = KEPT_DAYS, events_days: float = KEPT_DAYS
) -> Path:
    """A config for ``relay prune`` on the seeding relay's database, with these horizons."""
    extra = f"\n[retention]\nmetrics_days = {metrics_days}\nevents_days = {events_days}\n"
    return write_config(tmp_path / "prune.toml", tmp_path / "relay.db", free_port(), extra)


def printed(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """``relay prune``'s report, ``what: n`` per line."""
    assert result.returncode == 0, result.stderr
    lines = (line.rpartition(": ") for line in result.stdout.splitlines())
    return {what: int(n) for what, _, n in lines}


def relay_prune(tmp_path: Path, **days: float) -> dict[str, int]:
    return printed(run_cli("prune", "--config", str(prune_config(tmp_path, **days))))


async def register(app: Api, token: str, **fields: Any) -> None:
    answer = await app.put(f"/v1/devices/{token}", {"platform": "ios", **fields})
    assert answer.status == 201, answer.text


async def pending(server: RelayServer) -> int:
    answer = await (await server.admin_api()).get("/v1/outbox")
    assert answer.status == 200, answer.text
    return int(answer.body["pending"])


async def seed_history(server: RelayServer) -> None:
    """Device tok-1 of customer c1: two old metrics and a recent one (no delivery, so nothing
    to forward), one old and one recent event (each waiting in the outbox for Customer.io)."""
    app = await server.app_api()
    await register(app, "tok-1", customer_id="c1")
    accepted_all(
        await post_metrics(
            app,
            metric("tok-1", "delivered", OLD),
            metric("tok-1", "opened", OLD + 60),
            metric("tok-1", "delivered", RECENT),
        )
    )
    accepted_all(await post_events(app, event("c1", OLD), event("c1", RECENT)))


# --- refused at the door -------------------------------------------------------------------


async def test_a_metric_older_than_the_horizon_is_rejected_naming_timestamp(app_api: Api) -> None:
    answer = await post_metrics(app_api, metric("tok-1", "delivered", NOW - 401 * DAY))
    assert answer.body["accepted"] == 0
    ((error,),) = [r["errors"] for r in answer.body["rejected"]]
    assert error["path"] == "timestamp"
    assert "retention horizon" in error["message"]


async def test_an_event_older_than_the_horizon_is_rejected_naming_timestamp(app_api: Api) -> None:
    answer = await post_events(app_api, event("c1", NOW - 401 * DAY))
    assert answer.body["accepted"] == 0
    ((error,),) = [r["errors"] for r in answer.body["rejected"]]
    assert error["path"] == "timestamp"
    assert "retention horizon" in error["message"]


async def test_a_metric_inside_the_horizon_is_accepted(app_api: Api) -> None:
    answer = await post_metrics(app_api, metric("tok-1", "delivered", NOW - 399 * DAY))
    assert answer.body["accepted"] == 1, answer.body


async def test_with_metrics_days_zero_an_old_metric_is_accepted(seeding: RelayServer) -> None:
    app = await seeding.app_api()
    answer = await post_metrics(app, metric("tok-1", "delivered", 86_400.0))  # 1970-01-02
    assert answer.body["accepted"] == 1, answer.body


async def test_an_old_track_event_is_refused_with_400_naming_timestamp(relay: RelayServer) -> None:
    await register_client_key(relay)
    body = {"name": "Order Completed", "timestamp": NOW - 401 * DAY}
    answer = await send(relay, "POST", "/api/v1/customers/c1/events", body, headers=TRACK_AUTH)
    assert answer.status == 400, answer.text
    assert "timestamp" in answer.text


async def test_an_old_track_push_metric_is_refused_with_400(relay: RelayServer) -> None:
    await register_client_key(relay)
    body = {"delivery_id": "dlv-1", "metric": "delivered", "recipient": "tok-1"}
    old = {**body, "timestamp": NOW - 401 * DAY}
    answer = await send(relay, "POST", "/api/v1/metrics", old, headers=TRACK_AUTH)
    assert answer.status == 400, answer.text


async def test_an_old_v2_batch_item_is_refused_by_batch_index_and_the_rest_kept(
    relay: RelayServer,
) -> None:
    await register_client_key(relay)
    op = {"type": "person", "identifiers": {"id": "c1"}, "action": "event", "name": "Viewed"}
    body = {"batch": [{**op, "timestamp": RECENT}, {**op, "timestamp": NOW - 401 * DAY}]}
    answer = await send(relay, "POST", "/api/v2/batch", body, headers=TRACK_AUTH)
    assert answer.status == 207, answer.text
    errors = parsed(answer)["errors"]
    assert [(e["batch_index"], e["field"]) for e in errors] == [(1, "timestamp")]


@pytest.mark.parametrize(
    "item",
    [
        sdk_event("track", anonymous_id="a1", user_id="c1", event="Viewed Product"),
        delivery_event("opened", "dlv-1", anonymous_id="a1"),
    ],
    ids=["event", "delivery-metric"],
)
async def test_an_old_pipelines_batch_item_goes_to_the_rejected_items_log(
    relay: RelayServer, item: dict[str, Any]
) -> None:
    await register_client_key(relay)
    old = {**item, "timestamp": NOW - 401 * DAY}
    answer = await send(relay, "POST", "/cdp/v1/b", mobile_batch(old))
    assert answer.status == 200, answer.text
    logged = (await (await relay.admin_api()).get("/v1/rejected")).body
    assert [(entry["path"], entry["reason"]) for entry in logged] == [
        ("batch[0].timestamp", "invalid")
    ]


# --- relay prune ---------------------------------------------------------------------------


async def test_relay_prune_prints_what_it_deleted(seeding: RelayServer, tmp_path: Path) -> None:
    await seed_history(seeding)
    assert relay_prune(tmp_path) == {
        "metrics deleted": 2,
        "events deleted": 1,
        "outbox items expired": 1,
    }


async def test_after_a_prune_device_counts_reflect_what_remains(
    seeding: RelayServer, tmp_path: Path
) -> None:
    await seed_history(seeding)
    admin = await seeding.admin_api()
    assert counts_of(await device(admin, "tok-1")) == counts(delivered=2, opened=1)
    relay_prune(tmp_path)
    assert counts_of(await device(admin, "tok-1")) == counts(delivered=1)


async def test_after_a_prune_profile_counts_and_segment_exports_reflect_what_remains(
    seeding: RelayServer, tmp_path: Path
) -> None:
    await seed_history(seeding)
    admin = await seeding.admin_api()
    engaged = "/v1/segments/push_engaged/export?format=jsonl&days=400"
    assert (await admin.get(engaged)).text.count('"c1"') == 1  # opened 100 days ago
    relay_prune(tmp_path)
    assert (await admin.get(engaged)).text == ""
    assert (await profile(admin, "c1"))["counts"]["opened"] == 0


async def test_relay_prune_with_metrics_days_zero_keeps_every_metric(
    seeding: RelayServer, tmp_path: Path
) -> None:
    await seed_history(seeding)
    assert relay_prune(tmp_path, metrics_days=0)["metrics deleted"] == 0
    admin = await seeding.admin_api()
    assert counts_of(await device(admin, "tok-1")) == counts(delivered=2, opened=1)


async def test_relay_prune_expires_the_outbox_items_of_pruned_facts_only(
    seeding: RelayServer, tmp_path: Path
) -> None:
    """Without Customer.io credentials the outbox keeps everything: the identify, the device
    add, both delivery metrics and both events wait; only the old metric and event go."""
    app = await seeding.app_api()
    await register(app, "tok-1", customer_id="c1")
    await post_metrics(
        app,
        metric("tok-1", "delivered", OLD, delivery_id="dlv-old"),
        metric("tok-1", "delivered", RECENT, delivery_id="dlv-new"),
    )
    await post_events(app, event("c1", OLD), event("c1", RECENT))
    before = await pending(seeding)
    assert relay_prune(tmp_path)["outbox items expired"] == 2
    assert await pending(seeding) == before - 2


async def test_outbox_items_follow_the_horizon_of_the_fact_they_forward(
    seeding: RelayServer, tmp_path: Path
) -> None:
    """An old tap forwards a delivery metric and a ``Push Action Tapped`` person event: both
    are the metric's and go with it; the old event stays, events being kept forever."""
    app = await seeding.app_api()
    await register(app, "tok-1", customer_id="c1")
    await post_metrics(app, metric("tok-1", "tapped", OLD, delivery_id="dlv-1", action="buy"))
    await post_events(app, event("c1", OLD, name="Viewed Product"))  # not a conversion
    report = relay_prune(tmp_path, events_days=0)
    assert (report["metrics deleted"], report["events deleted"]) == (1, 0)
    assert report["outbox items expired"] == 2


async def test_relay_prune_does_not_block_ingest(seeding: RelayServer, tmp_path: Path) -> None:
    """20,000 old rows, deleted in bounded chunks by another process while the server keeps
    taking metrics: every request succeeds, and every metric it took is still there."""
    app = await seeding.app_api()
    await register(app, "tok-bulk")
    for start in range(0, 20_000, 1000):
        old = [metric("tok-bulk", "opened", OLD + i) for i in range(start, start + 1000)]
        accepted_all(await post_metrics(app, *old))
    pruning = asyncio.create_task(
        asyncio.to_thread(run_cli, "prune", "--config", str(prune_config(tmp_path)))
    )
    statuses: list[int] = []

    async def keep_reporting() -> None:
        while not pruning.done():
            live = metric("tok-bulk", "delivered", time.time())
            statuses.append((await app.post("/v1/metrics", {"metrics": [live]})).status)

    await asyncio.gather(*(keep_reporting() for _ in range(4)))
    assert printed(await pruning)["metrics deleted"] == 20_000
    assert statuses and set(statuses) == {200}
    shown = await device(await seeding.admin_api(), "tok-bulk")
    assert counts_of(shown) == counts(delivered=len(statuses))


# --- the server ----------------------------------------------------------------------------


async def test_the_server_prunes_at_start_up_and_counts_the_expired_outbox_items(
    seeding: RelayServer, tmp_path: Path
) -> None:
    await seed_history(seeding)
    keys = dict(seeding.keys)
    await seeding.stop()
    server = RelayServer(settings_with(tmp_path, KEPT_DAYS, KEPT_DAYS), keys=keys)
    await server.start()
    try:

        async def expired() -> bool:
            exposition = (await server.api().get("/metrics")).text
            return "relay_outbox_expired_total 1.0" in exposition

        await eventually(expired)
        admin = await server.admin_api()
        assert counts_of(await device(admin, "tok-1")) == counts(delivered=1)
    finally:
        await server.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only file system needs root")
@pytest.mark.sqlite_only  # a read-only mount under the SQLite file
async def test_a_storage_fault_skips_the_prune_with_a_warning_line_not_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        seeder = RelayServer(make_settings(mount))
        await seeder.start()  # creates the database
        await seeder.close()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        server = RelayServer(make_settings(mount))
        with caplog.at_level(logging.WARNING, logger="relay"):
            await server.start()
            try:
                await eventually(lambda: "retention" in caplog.text)
            finally:
                await server.close()
        (line,) = [r for r in caplog.records if "retention" in r.getMessage()]
        assert (line.levelno, line.exc_info) == (logging.WARNING, None)
        assert "read-only" in line.getMessage()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_relay_prune_drops_data_health_counters_older_than_every_horizon(
    seeding: RelayServer, tmp_path: Path
) -> None:
    database = seeding.settings.storage.url
    hours = {"old": DAY * (KEPT_DAYS + 5), "recent": DAY}
    for name, age in hours.items():
        engines.query(
            database,
            "INSERT INTO data_health_counts (app_id, hour, kind, name, property, n)"
            " VALUES ('default', ?, 'duplicate', ?, '', 1)",
            (int(time.time() - age), name),
        )
    relay_prune(tmp_path)
    left = [row[0] for row in engines.query(database, "SELECT name FROM data_health_counts")]
    assert left == ["recent"]
