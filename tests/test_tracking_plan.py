"""The tracking plan, checked at the door (API.md "Config" [tracking_plan], "Data health",
"Customer.io-compatible surfaces"): report mode accepts and counts, enforce mode refuses an
event breaking the plan with the property as its error path, on every surface. Real servers,
real plan files, the real CLI."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from relay.settings import ConfigError, EventsSettings, TrackingPlanSettings, load_settings
from relay.tracking_plan import PlanError, TrackingPlan
from tests.compat_support import (
    CLIENT_KEY,
    basic,
    message_id,
    mobile_batch,
    parsed,
    register_client_key,
    sdk_event,
    send,
)
from tests.support import REPO, Answer, RelayServer, make_settings, run_cli, started_servers

PLAN = """
[events."Order Completed"]
required = {order_id = "string", total = "number"}
optional = {coupon = "string"}
"""
TRACK_AUTH = {"Authorization": basic("any-site-id", CLIENT_KEY)}
COMPLETE = {"order_id": "o-1", "total": 42.5}
WITHOUT_TOTAL = {"order_id": "o-1"}
TOTAL_AS_TEXT = {"order_id": "o-1", "total": "42.50"}


def plan_file(tmp_path: Path, text: str = PLAN) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def start_relay(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[RelayServer]]]:
    """Start relay with PLAN in ``mode``, the alias Purchase → Order Completed, and the key
    a Customer.io client ships registered."""
    async with started_servers() as start_server:

        async def start(mode: str) -> RelayServer:
            settings = make_settings(
                tmp_path,
                tracking_plan=TrackingPlanSettings(path=str(plan_file(tmp_path)), mode=mode),
                events=EventsSettings(aliases={"Purchase": "Order Completed"}),
            )
            relay = await start_server(settings)
            await register_client_key(relay)
            return relay

        yield start


async def post_event(relay: RelayServer, name: str, properties: dict[str, Any]) -> Answer:
    item = {"id": message_id(), "name": name, "customer_id": "c1", "properties": properties}
    return await (await relay.app_api()).post("/v1/events", {"events": [item]})


def v2_event(attributes: dict[str, Any]) -> dict[str, Any]:
    person = {"type": "person", "identifiers": {"id": "c1"}, "action": "event"}
    return person | {"name": "Order Completed", "attributes": attributes}


def pipelines_track(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return sdk_event("track", anonymous_id="a1", user_id="c1", event=name, properties=properties)


async def metric_value(relay: RelayServer, sample: str) -> float:
    """The value of one sample line of ``/metrics`` (0 when absent)."""
    text = (await relay.api().get("/metrics")).text
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


VIOLATIONS_OF_TOTAL = (
    'relay_tracking_plan_violations_total{event="Order Completed",property="total"}'
)
UNKNOWN_EVENTS = "relay_tracking_plan_unknown_events_total"


# --- the plan file -------------------------------------------------------------------------


def test_a_plan_gives_each_property_its_json_type(tmp_path: Path) -> None:
    plan = TrackingPlan.load(plan_file(tmp_path))
    assert plan.check("Order Completed", COMPLETE | {"coupon": "SPRING"}) == []


@pytest.mark.parametrize(
    ("value", "got"),
    [("42", "string"), (True, "bool"), (None, "null"), ([42], "array"), ({"v": 42}, "object")],
)
def test_only_an_int_or_a_float_is_a_number(tmp_path: Path, value: Any, got: str) -> None:
    plan = TrackingPlan.load(plan_file(tmp_path))
    [violation] = plan.check("Order Completed", {"order_id": "o-1", "total": value})
    assert (violation.path, violation.message) == (
        "properties.total",
        f"must be a number, got {got}",
    )


def test_an_integer_is_a_number(tmp_path: Path) -> None:
    plan = TrackingPlan.load(plan_file(tmp_path))
    assert plan.check("Order Completed", {"order_id": "o-1", "total": 42}) == []


def test_a_missing_required_property_is_required(tmp_path: Path) -> None:
    plan = TrackingPlan.load(plan_file(tmp_path))
    [violation] = plan.check("Order Completed", WITHOUT_TOTAL)
    assert (violation.path, violation.message) == ("properties.total", "is required")


def test_an_optional_property_may_be_absent_but_not_mistyped(tmp_path: Path) -> None:
    plan = TrackingPlan.load(plan_file(tmp_path))
    [violation] = plan.check("Order Completed", COMPLETE | {"coupon": 10})
    assert violation.path == "properties.coupon"


def test_a_name_the_plan_does_not_list_is_unknown_and_breaks_nothing(tmp_path: Path) -> None:
    plan = TrackingPlan.load(plan_file(tmp_path))
    assert not plan.known("Signed Up")
    assert plan.check("Signed Up", {"total": "x"}) == []


def test_an_unknown_type_is_an_error_naming_the_event_and_property(tmp_path: Path) -> None:
    path = plan_file(tmp_path, '[events."Order Completed"]\nrequired = {total = "numbr"}\n')
    with pytest.raises(PlanError, match=r'"Order Completed".*total.*numbr'):
        TrackingPlan.load(path)


def test_the_example_plan_loads() -> None:
    plan = TrackingPlan.load(REPO / "config" / "tracking-plan.example.toml")
    assert set(plan.events) == {
        "Order Completed",
        "Checkout Started",
        "Product Viewed",
        "Add to Cart",
    }


def test_settings_load_the_plan_named_by_the_config(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'[tracking_plan]\npath = "{plan_file(tmp_path)}"\nmode = "enforce"\n')
    settings = load_settings(config, environ={})
    assert settings.tracking_plan.plan is not None
    assert settings.tracking_plan.plan.known("Order Completed")


def test_a_mode_other_than_report_or_enforce_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text('[tracking_plan]\nmode = "strict"\n')
    with pytest.raises(ConfigError, match="tracking_plan.mode"):
        load_settings(config, environ={})


def test_a_malformed_plan_is_refused_naming_the_file(tmp_path: Path) -> None:
    broken = plan_file(tmp_path, '[events."Order Completed"\n')
    with pytest.raises(ConfigError, match=re.escape(str(broken))):
        load_settings(None, environ={"RELAY_TRACKING_PLAN_PATH": str(broken)})


def test_a_missing_plan_file_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-plan.toml"
    config = tmp_path / "relay.toml"
    config.write_text(f'[tracking_plan]\npath = "{missing}"\n')
    result = run_cli("config", "show", "--config", str(config))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("relay: error: ") and str(missing) in line, result.stderr


def test_config_show_prints_the_path_and_mode_only(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'[tracking_plan]\npath = "{plan_file(tmp_path)}"\n')
    shown = run_cli("config", "show", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    keys = [line.partition(" = ")[0] for line in shown.stdout.splitlines()]
    assert [key for key in keys if key.startswith("tracking_plan.")] == [
        "tracking_plan.path",
        "tracking_plan.mode",
    ]


# --- report mode ---------------------------------------------------------------------------


async def test_report_mode_accepts_an_event_breaking_the_plan(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("report")
    answer = await post_event(relay, "Order Completed", TOTAL_AS_TEXT)
    assert answer.status == 200, answer.text
    assert (answer.body["accepted"], answer.body["rejected"]) == (1, [])


async def test_report_mode_counts_each_violation_by_event_and_property(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("report")
    await post_event(relay, "Order Completed", TOTAL_AS_TEXT)
    await send(
        relay, "POST", "/cdp/v1/b", mobile_batch(pipelines_track("Order Completed", WITHOUT_TOTAL))
    )
    assert await metric_value(relay, VIOLATIONS_OF_TOTAL) == 2


async def test_an_event_the_plan_does_not_list_is_counted_as_unknown(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("report")
    await post_event(relay, "Signed Up", {})
    assert await metric_value(relay, UNKNOWN_EVENTS) == 1


# --- enforce mode: native ------------------------------------------------------------------


async def test_enforce_mode_rejects_a_missing_required_property_naming_it(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    answer = await post_event(relay, "Order Completed", WITHOUT_TOTAL)
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == 0
    [rejection] = answer.body["rejected"]
    assert [error["path"] for error in rejection["errors"]] == ["properties.total"]


async def test_enforce_mode_rejects_a_mistyped_property_naming_it(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    answer = await post_event(relay, "Order Completed", TOTAL_AS_TEXT)
    [rejection] = answer.body["rejected"]
    assert rejection["errors"] == [
        {"path": "properties.total", "message": "must be a number, got string"}
    ]


async def test_enforce_mode_still_counts_what_it_rejects(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    await post_event(relay, "Order Completed", TOTAL_AS_TEXT)
    assert await metric_value(relay, VIOLATIONS_OF_TOTAL) == 1


async def test_enforce_mode_accepts_an_event_following_the_plan(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    answer = await post_event(relay, "Order Completed", COMPLETE)
    assert answer.body["accepted"] == 1, answer.text


async def test_enforce_mode_accepts_a_name_the_plan_does_not_list(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    answer = await post_event(relay, "Signed Up", {"total": "anything"})
    assert answer.body["accepted"] == 1, answer.text


async def test_an_alias_is_checked_as_its_canonical_name(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    answer = await post_event(relay, "Purchase", WITHOUT_TOTAL)
    [rejection] = answer.body["rejected"]
    assert [error["path"] for error in rejection["errors"]] == ["properties.total"]


# --- enforce mode: Customer.io-compatible surfaces -----------------------------------------


async def test_enforce_mode_refuses_a_track_v1_event_with_400_naming_the_data_field(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    body = {"name": "Order Completed", "data": TOTAL_AS_TEXT}
    answer = await send(relay, "POST", "/api/v1/customers/c1/events", body, headers=TRACK_AUTH)
    assert answer.status == 400, answer.text
    [message] = parsed(answer)["meta"]["errors"]
    assert message.startswith("data.total:"), message


async def test_enforce_mode_refuses_a_v2_batch_event_by_its_batch_index(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    good, bad = v2_event(COMPLETE), v2_event(WITHOUT_TOTAL)
    answer = await send(relay, "POST", "/api/v2/batch", {"batch": [good, bad]}, headers=TRACK_AUTH)
    assert answer.status == 207, answer.text
    [error] = parsed(answer)["errors"]
    assert (error["batch_index"], error["field"]) == (1, "attributes.total")
    assert error["reason"] == "tracking_plan"


async def test_enforce_mode_logs_a_pipelines_batch_item_as_rejected(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    batch = mobile_batch(pipelines_track("Order Completed", TOTAL_AS_TEXT))
    answer = await send(relay, "POST", "/cdp/v1/b", batch)
    assert answer.status == 200, answer.text
    logged = (await (await relay.admin_api()).get("/v1/rejected")).body
    assert [(e["path"], e["reason"]) for e in logged] == [
        ("batch[0].properties.total", "tracking_plan")
    ]


async def test_enforce_mode_accepts_a_pipelines_event_the_plan_does_not_list(
    start_relay: Callable[[str], Awaitable[RelayServer]],
) -> None:
    relay = await start_relay("enforce")
    batch = mobile_batch(pipelines_track("Signed Up", {"total": "anything"}))
    await send(relay, "POST", "/cdp/v1/b", batch)
    assert (await (await relay.admin_api()).get("/v1/rejected")).body == []
    assert await metric_value(relay, UNKNOWN_EVENTS) == 1
