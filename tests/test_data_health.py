"""The data-health report (API.md "Data health", "CLI" ``relay health data``): counts, plan
violations, type drift, lateness, duplicates, unknown names and warnings of what arrived,
from a real server, a real SQLite file and the real CLI."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from relay.settings import AttributionSettings, TrackingPlanSettings
from relay.timeutil import format_timestamp
from tests.compat_support import (
    basic,
    message_id,
    mobile_batch,
    register_client_key,
    register_server_key,
    sdk_event,
    send,
)
from tests.support import Api, RelayServer, make_settings, run_cli, started_servers, write_config

PLAN = """
[events."Order Completed"]
required = {order_id = "string", total = "number"}
"""
HOUR = 3600.0

StartRelay = Callable[..., Awaitable[RelayServer]]


@pytest.fixture
async def start_relay(tmp_path: Path) -> AsyncIterator[StartRelay]:
    """Start relay, with PLAN (in ``mode``) unless ``plan`` is false."""
    async with started_servers() as start_server:

        async def start(plan: bool = True, mode: str = "report", **sections: Any) -> RelayServer:
            if plan:
                path = tmp_path / "plan.toml"
                path.write_text(PLAN, encoding="utf-8")
                sections["tracking_plan"] = TrackingPlanSettings(path=str(path), mode=mode)
            return await start_server(make_settings(tmp_path, **sections))

        yield start


def event(
    name: str, properties: dict[str, Any], late: float = 0.0, **fields: Any
) -> dict[str, Any]:
    item = {"id": message_id(), "name": name, "customer_id": "c1", "properties": properties}
    if late:
        item["timestamp"] = time.time() - late
    return item | fields


async def post_events(relay: RelayServer, *items: dict[str, Any]) -> None:
    answer = await (await relay.app_api()).post("/v1/events", {"events": list(items)})
    assert answer.status == 200, answer.text


async def report(relay: RelayServer, query: str = "") -> dict[str, Any]:
    answer = await (await relay.admin_api()).get(f"/v1/health/data{query}")
    assert answer.status == 200, answer.text
    result: dict[str, Any] = answer.body
    return result


def entry(result: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [e for e in result["events"] if e["name"] == name]
    return found


GOOD = {"order_id": "o-1", "total": 42.5}


async def test_items_breaking_the_plan_in_report_mode_are_counted_per_property(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    await post_events(
        relay,
        event("Order Completed", {"order_id": "o-1"}),
        event("Order Completed", {"order_id": "o-2", "total": "42.50"}),
        event("Order Completed", {"total": 1}),
        event("Order Completed", GOOD),
    )
    orders = entry(await report(relay), "Order Completed")
    assert orders["count"] == 4
    assert orders["violations"] == {"total": 2, "order_id": 1}


async def test_items_refused_in_enforce_mode_are_counted_though_not_stored(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(mode="enforce")
    await post_events(relay, event("Order Completed", {"order_id": "o-1"}))
    orders = entry(await report(relay), "Order Completed")
    assert orders["count"] == 0
    assert orders["violations"] == {"total": 1}
    assert orders["lateness_seconds"] == {"p50": None, "p95": None, "p99": None}


@pytest.mark.parametrize("plan", [True, False], ids=["plan", "no-plan"])
async def test_a_property_sent_as_number_then_string_shows_as_type_drift(
    start_relay: StartRelay, plan: bool
) -> None:
    relay = await start_relay(plan=plan)
    await post_events(relay, event("Cart Viewed", {"items": 3, "currency": "EUR"}))
    await post_events(relay, event("Cart Viewed", {"items": "3", "currency": "USD"}))
    result = await report(relay)
    assert entry(result, "Cart Viewed")["type_drift"] == {"items": ["number", "string"]}
    assert any("'items'" in w and "number, string" in w for w in result["warnings"])


async def test_lateness_percentiles_match_the_timestamps_sent(start_relay: StartRelay) -> None:
    relay = await start_relay()
    await post_events(
        relay,
        event("Order Completed", GOOD, late=HOUR),
        event("Order Completed", GOOD, late=2 * HOUR),
    )
    lateness = entry(await report(relay), "Order Completed")["lateness_seconds"]
    assert lateness["p50"] == pytest.approx(HOUR, abs=5)
    assert lateness["p95"] == pytest.approx(2 * HOUR, abs=5)
    assert lateness["p99"] == pytest.approx(2 * HOUR, abs=5)


async def test_metrics_are_counted_with_their_lateness(start_relay: StartRelay) -> None:
    relay = await start_relay()
    item = {"id": message_id(), "metric": "delivered", "token": "f00dcafe0001"}
    late = item | {"timestamp": time.time() - HOUR}
    answer = await (await relay.app_api()).post("/v1/metrics", {"metrics": [late]})
    assert answer.status == 200, answer.text
    (delivered,) = (await report(relay))["metrics"]
    assert delivered["metric"] == "delivered" and delivered["count"] == 1
    assert delivered["lateness_seconds"]["p50"] == pytest.approx(HOUR, abs=5)


async def test_resent_ids_count_as_duplicates_not_in_count(start_relay: StartRelay) -> None:
    relay = await start_relay()
    first, second = event("Order Completed", GOOD), event("Order Completed", GOOD)
    await post_events(relay, first, second)
    await post_events(relay, first, second)
    result = await report(relay)
    assert entry(result, "Order Completed")["count"] == 2
    assert result["duplicates"] == 2


async def test_a_replayed_pipelines_event_counts_as_a_duplicate(start_relay: StartRelay) -> None:
    relay = await start_relay()
    await register_client_key(relay)
    track = sdk_event("track", anonymous_id="a1", event="Order Completed", properties=GOOD)
    for _ in range(2):
        assert (await send(relay, "POST", "/cdp/v1/b", mobile_batch(track))).status == 200
    result = await report(relay)
    assert entry(result, "Order Completed")["count"] == 1
    assert result["duplicates"] == 1


async def test_names_the_plan_does_not_list_are_unknown(start_relay: StartRelay) -> None:
    relay = await start_relay()
    await post_events(
        relay, event("Order Completed", GOOD), event("Signed Up", {}), event("Signed Up", {})
    )
    assert (await report(relay))["unknown_names"] == [{"name": "Signed Up", "count": 2}]


async def test_without_a_plan_no_name_is_unknown(start_relay: StartRelay) -> None:
    relay = await start_relay(plan=False)
    await post_events(relay, event("Signed Up", {}))
    assert (await report(relay))["unknown_names"] == []


async def test_conversions_later_than_the_attribution_window_give_a_warning(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(attribution=AttributionSettings(window_hours=1))
    await post_events(relay, event("Order Completed", GOOD, late=2 * HOUR))
    (warning,) = (await report(relay))["warnings"]
    assert "Order Completed" in warning
    assert "p95 2 h" in warning and "(1 h)" in warning


async def test_conversions_within_the_attribution_window_give_no_warning(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(attribution=AttributionSettings(window_hours=3))
    await post_events(relay, event("Order Completed", GOOD, late=2 * HOUR))
    assert (await report(relay))["warnings"] == []


@pytest.mark.parametrize("as_rfc3339", [True, False], ids=["rfc3339", "unix"])
async def test_since_leaves_out_what_arrived_before(
    start_relay: StartRelay, as_rfc3339: bool
) -> None:
    relay = await start_relay()
    await post_events(relay, event("Signed Up", {}))
    await asyncio.sleep(0.05)
    since = time.time()
    await asyncio.sleep(0.05)
    await post_events(relay, event("Order Completed", GOOD))
    value = format_timestamp(since) if as_rfc3339 else str(since)
    result = await report(relay, f"?since={value}")
    assert [e["name"] for e in result["events"]] == ["Order Completed"]


async def test_the_default_window_is_the_last_24_hours(start_relay: StartRelay) -> None:
    relay = await start_relay()
    await post_events(relay, event("Order Completed", GOOD))
    assert entry(await report(relay), "Order Completed")["count"] == 1
    assert (await report(relay, f"?since={time.time() + 60}"))["events"] == []


async def test_a_bad_since_is_422_naming_since(start_relay: StartRelay) -> None:
    relay = await start_relay()
    answer = await (await relay.admin_api()).get("/v1/health/data?since=yesterday")
    assert answer.status == 422
    assert [e["path"] for e in answer.body["errors"]] == ["since"]


async def test_the_report_is_per_app(relay: RelayServer) -> None:
    await post_events(relay, event("Order Completed", GOOD))
    other = await relay.admin_api("other")
    answer = await other.get("/v1/health/data")
    assert answer.status == 200 and answer.body["events"] == []
    mine = await (await relay.admin_api()).get("/v1/health/data?app=default")
    assert [e["name"] for e in mine.body["events"]] == ["Order Completed"]


async def test_app_and_server_keys_may_not_read_it(relay: RelayServer, app_api: Api) -> None:
    assert (await app_api.get("/v1/health/data?app=default")).status == 403
    assert (await app_api.get("/v1/health/data")).status == 403
    server_key = await register_server_key(relay)
    assert (await relay.api(server_key).get("/v1/health/data")).status == 403


async def test_the_cli_prints_the_report_as_a_table(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    relay = await start_relay()
    await post_events(
        relay,
        event("Order Completed", {"order_id": "o-1"}, late=HOUR),
        event("Signed Up", {}),
    )
    await post_events(relay, event("Signed Up", {"plan": 1}), event("Signed Up", {"plan": "pro"}))
    config = write_config(
        tmp_path / "relay.toml",
        relay.settings.storage.url,
        0,
        f'\n[tracking_plan]\npath = "{tmp_path / "plan.toml"}"\n',
    )
    result = await asyncio.to_thread(run_cli, "health", "data", "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "COUNT", "P50", "P95", "P99", "VIOLATIONS", "DRIFT"]
    assert re.match(r"Order Completed\s+1\s+1\.0h\s+1\.0h\s+1\.0h\s+total=1\s+-$", lines[1])
    assert re.match(r"Signed Up\s+3\s+.*plan:number/string$", lines[2])
    assert "unknown names: Signed Up (3)" in result.stdout
    assert "duplicates: 0" in result.stdout
    assert any(line.startswith("warning: ") and "'plan'" in line for line in lines)


async def test_the_cli_prints_json_with_json(start_relay: StartRelay, tmp_path: Path) -> None:
    relay = await start_relay(plan=False)
    await post_events(relay, event("Order Completed", GOOD))
    config = write_config(tmp_path / "relay.toml", relay.settings.storage.url, 0)
    result = await asyncio.to_thread(run_cli, "health", "data", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert '"name": "Order Completed"' in result.stdout


async def test_metrics_carry_event_lateness_by_planned_name(start_relay: StartRelay) -> None:
    relay = await start_relay()
    await post_events(relay, event("Order Completed", GOOD, late=HOUR), event("Signed Up", {}))
    text = (await relay.api().get("/metrics")).text
    assert 'relay_event_lateness_seconds_bucket{event="Order Completed",le="900.0"} 0.0' in text
    assert 'relay_event_lateness_seconds_bucket{event="Order Completed",le="14400.0"} 1.0' in text
    assert 'relay_event_lateness_seconds_count{event="other"} 1.0' in text


async def test_metrics_count_type_drift_of_a_planned_property(start_relay: StartRelay) -> None:
    relay = await start_relay()
    await post_events(relay, event("Order Completed", GOOD))
    await post_events(relay, event("Order Completed", {"order_id": "o-2", "total": "42.50"}))
    text = (await relay.api().get("/metrics")).text
    assert 'relay_property_type_drift_total{event="Order Completed",property="total"} 1.0' in text
    assert 'property="order_id"' not in text


async def test_without_a_plan_drift_is_counted_for_the_first_names_seen(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(plan=False)
    await post_events(relay, event("Cart Viewed", {"items": 3}))
    await post_events(
        relay, event("Cart Viewed", {"items": "3"}), event("Cart Viewed", {"items": 4})
    )
    text = (await relay.api().get("/metrics")).text
    assert 'relay_property_type_drift_total{event="Cart Viewed",property="items"} 1.0' in text


async def test_a_resent_event_is_not_observed_again_in_the_lateness_histogram(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    first = event("Order Completed", GOOD, late=HOUR)
    await post_events(relay, first)
    await post_events(relay, first, event("Order Completed", GOOD, late=HOUR))
    text = (await relay.api().get("/metrics")).text
    assert 'relay_event_lateness_seconds_count{event="Order Completed"} 2.0' in text


async def test_a_track_call_refused_in_enforce_mode_is_counted_though_not_stored(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(mode="enforce")
    key = await register_client_key(relay)
    answer = await send(
        relay,
        "POST",
        "/api/v1/customers/c1/events",
        {"name": "Order Completed", "data": {"order_id": "o-1", "total": "12"}},
        headers={"Authorization": basic("site", key)},
    )
    assert answer.status == 400, answer.text
    orders = entry(await report(relay), "Order Completed")
    assert (orders["count"], orders["violations"]) == (0, {"total": 1})
