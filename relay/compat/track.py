"""Track-compatible routes at Customer.io's own paths, for backends using Customer.io's server
libraries: identify, devices, events, push metrics (v1) and ``/api/v2/batch``.

What relay models (people, devices, events, push metrics, merges) goes through relay's own
rules and forwarding; other operations are forwarded to Customer.io as they came.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from ulid import ULID

from relay import timeutil
from relay.api.routing import Route
from relay.api.state import SETTINGS, STORE
from relay.compat.actions import (
    Call,
    Forward,
    Identify,
    LeaveDevice,
    Merge,
    RecordEvent,
    RecordMetric,
    UpsertDevice,
)
from relay.compat.timestamps import moment
from relay.compat.values import DEVICE_FIELDS, object_of, scalars, text, token_or_none
from relay.compat.wire import (
    CompatError,
    Shape,
    app_for_key,
    basic_credentials,
    customerio_errors,
    ok,
    read_json,
)
from relay.facts import NewEvent, NewMetric
from relay.forward import ops
from relay.models.devices import DevicePut
from relay.settings import Settings

PUSH_METRICS = {"delivered": "delivered", "opened": "opened", "converted": "converted"}


def identify_call(customer_id: str, attributes: dict[str, Any]) -> Call:
    values = scalars(attributes)
    email = values.pop("email", None)
    anonymous_id = values.pop("anonymous_id", None)
    values.pop("id", None)
    return Call(
        None,
        (
            Identify(
                customer_id,
                anonymous_id if isinstance(anonymous_id, str) else None,
                email if isinstance(email, str) else None,
                values,
            ),
        ),
    )


def device_call(customer_id: str, token: str, platform: Any, fields: dict[str, Any]) -> Call:
    attributes = {**object_of(fields.get("attributes")), **scalars(fields)}
    for reserved in ("id", "token", "platform", "last_used"):
        attributes.pop(reserved, None)
    values: dict[str, Any] = {
        "platform": platform if platform in ("ios", "android") else "ios",
        "customer_id": customer_id,
    }
    enabled = attributes.pop("push_enabled", None)
    if isinstance(enabled, bool) or enabled in ("true", "false"):
        values["push_enabled"] = enabled in (True, "true")
    for theirs, ours in DEVICE_FIELDS.items():
        value = attributes.pop(theirs, None)
        if isinstance(value, str):
            values[ours] = value[:256]
    custom = scalars(attributes)
    if custom:
        values["attributes"] = dict(list(custom.items())[:300])
    given = platform in ("ios", "android")
    return Call(None, (UpsertDevice(token, DevicePut(**values), given),))


def event_call(
    settings: Settings,
    name: Any,
    data: Any,
    customer_id: str | None,
    anonymous_id: str | None,
    event_id: Any,
    timestamp: Any,
    now: float,
) -> Call:
    if not isinstance(name, str) or not name.strip():
        raise CompatError(400, "invalid", "name is required", "name")
    client_id = text(event_id) or f"relay-{ULID()}"
    event = NewEvent(
        client_id=client_id,
        name=settings.events.canonical_name(name.strip()[:100]),
        original_name=name,
        customer_id=customer_id,
        anonymous_id=anonymous_id,
        token=None,
        occurred_at=moment(timestamp, now),
        properties=msgspec.json.encode(object_of(data)).decode(),
    )
    return Call(text(event_id), (RecordEvent(event),))


def metric_call(
    delivery_id: Any, metric: Any, token: Any, timestamp: Any, now: float, raw: dict[str, Any]
) -> Call:
    ours, token = PUSH_METRICS.get(metric), token_or_none(token)  # type: ignore[arg-type]
    delivery_id = text(delivery_id)
    if not (ours and token and delivery_id):
        # not a push metric relay can place on a device: Customer.io gets it as it came
        return Call(None, (Forward(ops.Op("metrics", raw, endpoint="POST /api/v1/metrics")),))
    key = f"rde:{delivery_id}:{metric}:{token}"
    new = NewMetric(key, ours, token, delivery_id, moment(timestamp, now), source="app")
    return Call(key, (RecordMetric(new),))


def v2_call(op: dict[str, Any], settings: Settings, now: float) -> Call:
    """One ``/api/v2/batch`` operation."""
    identifiers = object_of(op.get("identifiers"))
    customer_id = text(identifiers.get("id"))
    action, kind = op.get("action"), op.get("type")
    device = object_of(op.get("device"))
    attributes = object_of(op.get("attributes"))
    if kind == "person" and customer_id:
        if action == "identify":
            return identify_call(customer_id, attributes)
        if action == "add_device" and token_or_none(device.get("token")):
            return device_call(customer_id, device["token"], device.get("platform"), device)
        if action == "delete_device" and token_or_none(device.get("token")):
            return Call(None, (LeaveDevice(device["token"], customer_id),))
        if action == "event":
            return event_call(
                settings,
                op.get("name"),
                attributes,
                customer_id,
                None,
                op.get("id"),
                op.get("timestamp"),
                now,
            )
    if kind == "person" and action == "merge":
        primary, secondary = object_of(op.get("primary")), object_of(op.get("secondary"))
        if text(primary.get("id")) and text(secondary.get("id")):
            return Call(None, (Merge(primary["id"], secondary["id"]),))
    if kind == "delivery" and action == "event":
        return metric_call(
            identifiers.get("id"),
            op.get("name"),
            attributes.get("device_token"),
            op.get("timestamp"),
            now,
            {},
        )
    lane = ops.person_lane(customer_id) if customer_id else f"passthrough:{ULID()}"
    return Call(None, (Forward(ops.Op(lane, op)),))


async def _apply(request: web.Request, calls: list[Call]) -> web.Response:
    basic = basic_credentials(request)
    app_id = await app_for_key(request, basic[1] if basic else None)
    await request.app[STORE].apply_calls(app_id, calls)
    return ok()


def _path_id(request: web.Request, name: str = "identifier") -> str:
    value = text(request.match_info[name], 150)
    if value is None:
        raise CompatError(400, "invalid", f"{name} must be 1-150 bytes", name)
    return value


@customerio_errors(Shape.TRACK_V1)
async def put_customer(request: web.Request) -> web.Response:
    """Identify (``PUT /api/v1/customers/{identifier}``)."""
    body = object_of(await read_json(request))
    return await _apply(request, [identify_call(_path_id(request), body)])


@customerio_errors(Shape.TRACK_V1)
async def delete_customer(request: web.Request) -> web.Response:
    """Delete a person: not modelled by relay, forwarded to Customer.io."""
    customer_id = _path_id(request)
    op = {"type": "person", "identifiers": {"id": customer_id}, "action": "delete"}
    return await _apply(request, [Call(None, (Forward(ops.Op(ops.person_lane(customer_id), op)),))])


@customerio_errors(Shape.TRACK_V1)
async def put_device(request: web.Request) -> web.Response:
    """Add or update a device (``PUT /api/v1/customers/{identifier}/devices``)."""
    device = object_of(object_of(await read_json(request)).get("device"))
    token = token_or_none(device.get("id"))
    if token is None:
        raise CompatError(400, "invalid", "device.id must be a device token", "device.id")
    if device.get("platform") not in ("ios", "android"):
        raise CompatError(
            400, "invalid", "device.platform must be ios or android", "device.platform"
        )
    call = device_call(_path_id(request), token, device.get("platform"), device)
    return await _apply(request, [call])


@customerio_errors(Shape.TRACK_V1)
async def delete_device(request: web.Request) -> web.Response:
    """The device leaves the person (``DELETE …/devices/{device_id}``)."""
    token = token_or_none(request.match_info["device_id"])
    if token is None:
        raise CompatError(400, "invalid", "device_id must be a device token", "device_id")
    return await _apply(request, [Call(None, (LeaveDevice(token, _path_id(request)),))])


@customerio_errors(Shape.TRACK_V1)
async def customer_event(request: web.Request) -> web.Response:
    """A person's event (``POST /api/v1/customers/{identifier}/events``)."""
    body = object_of(await read_json(request))
    call = event_call(
        request.app[SETTINGS],
        body.get("name"),
        body.get("data"),
        _path_id(request),
        None,
        body.get("id"),
        body.get("timestamp"),
        timeutil.now(),
    )
    return await _apply(request, [call])


@customerio_errors(Shape.TRACK_V1)
async def anonymous_event(request: web.Request) -> web.Response:
    """An anonymous event (``POST /api/v1/events``)."""
    body = object_of(await read_json(request))
    call = event_call(
        request.app[SETTINGS],
        body.get("name"),
        body.get("data"),
        None,
        text(body.get("anonymous_id")),
        body.get("id"),
        body.get("timestamp"),
        timeutil.now(),
    )
    return await _apply(request, [call])


@customerio_errors(Shape.TRACK_V1)
async def metrics(request: web.Request) -> web.Response:
    """A delivery metric (``POST /api/v1/metrics``)."""
    body = object_of(await read_json(request))
    call = metric_call(
        body.get("delivery_id"),
        body.get("metric"),
        body.get("recipient"),
        body.get("timestamp"),
        timeutil.now(),
        body,
    )
    return await _apply(request, [call])


@customerio_errors(Shape.TRACK_V1)
async def push_events(request: web.Request) -> web.Response:
    """The deprecated push metric (``POST /api/v1/push/events``)."""
    body = object_of(await read_json(request))
    raw = {"delivery_id": body.get("delivery_id"), "metric": body.get("event")}
    if body.get("device_id"):
        raw["recipient"] = body["device_id"]
    if body.get("timestamp"):
        raw["timestamp"] = body["timestamp"]
    call = metric_call(
        body.get("delivery_id"),
        body.get("event"),
        body.get("device_id"),
        body.get("timestamp"),
        timeutil.now(),
        raw,
    )
    return await _apply(request, [call])


@customerio_errors(Shape.TRACK_V1)
async def merge_customers(request: web.Request) -> web.Response:
    """Merge two people (``POST /api/v1/merge_customers``)."""
    body = object_of(await read_json(request))
    op = {"type": "person", "action": "merge", **body}
    return await _apply(request, [v2_call(op, request.app[SETTINGS], timeutil.now())])


@customerio_errors(Shape.TRACK_V2)
async def v2_batch(request: web.Request) -> web.Response:
    """``POST /api/v2/batch``."""
    items = object_of(await read_json(request)).get("batch")
    if not isinstance(items, list):
        raise CompatError(400, "invalid", "batch must be an array", "batch")
    settings, now = request.app[SETTINGS], timeutil.now()
    return await _apply(request, [v2_call(object_of(op), settings, now) for op in items])


@customerio_errors(Shape.TRACK_V2)
async def v2_entity(request: web.Request) -> web.Response:
    """``POST /api/v2/entity``."""
    op = object_of(await read_json(request))
    return await _apply(request, [v2_call(op, request.app[SETTINGS], timeutil.now())])


def _route(method: str, path: str, handler, summary: str) -> Route:  # type: ignore[no-untyped-def]
    return Route(method, path, handler, summary, role=None, responses={200: None})


ROUTES = [
    _route("PUT", "/api/v1/customers/{identifier}", put_customer, "Track: identify"),
    _route("DELETE", "/api/v1/customers/{identifier}", delete_customer, "Track: delete person"),
    _route("PUT", "/api/v1/customers/{identifier}/devices", put_device, "Track: add device"),
    _route(
        "DELETE",
        "/api/v1/customers/{identifier}/devices/{device_id}",
        delete_device,
        "Track: delete device",
    ),
    _route("POST", "/api/v1/customers/{identifier}/events", customer_event, "Track: event"),
    _route("POST", "/api/v1/events", anonymous_event, "Track: anonymous event"),
    _route("POST", "/api/v1/metrics", metrics, "Track: delivery metric"),
    _route("POST", "/api/v1/push/events", push_events, "Track: push metric (deprecated)"),
    _route("POST", "/api/v1/merge_customers", merge_customers, "Track: merge people"),
    _route("POST", "/api/v2/batch", v2_batch, "Track v2: batch"),
    _route("POST", "/api/v2/entity", v2_entity, "Track v2: one operation"),
]
