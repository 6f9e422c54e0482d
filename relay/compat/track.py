"""Track-compatible routes at Customer.io's own paths, for backends using Customer.io's server
libraries and Track-era SDKs: people, devices, events, push metrics (v1) and ``/api/v2``.

What relay models (people, devices, events, push metrics, merges, deletes, suppressions) goes
through relay's own rules and forwarding; other operations are forwarded as they came. What
relay cannot store is refused in Customer.io's shape (400; 403 for a person-level write with
an app key; a v2 batch answers 207 naming each refused ``batch_index``), never dropped.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from ulid import ULID

from relay import timeutil
from relay.api.responses import json_response
from relay.api.routing import Route
from relay.api.state import SETTINGS
from relay.compat.doors import apply_calls, plan_tally
from relay.compat.plan import admitted_event
from relay.compat.timestamps import moment, retained
from relay.compat.values import (
    Refused,
    device_token,
    device_values,
    email_of,
    event_name,
    identifier,
    object_of,
    optional_identifier,
    platform,
    properties,
    require_person_writes,
)
from relay.compat.wire import (
    CompatError,
    Shape,
    TrackV2Error,
    TrackV2Item,
    answers,
    basic_credentials,
    customerio_errors,
    key_for,
    ok,
    read_json,
    read_object,
)
from relay.domain.actions import (
    Call,
    Context,
    DeletePerson,
    Forward,
    Identify,
    Merge,
    RecordEvent,
    RecordMetric,
    SuppressPerson,
    UnregisterDevice,
    UpsertDevice,
)
from relay.facts import NewMetric
from relay.forward import ops
from relay.keys import KeyRecord
from relay.models.devices import DevicePut
from relay.settings import RetentionSettings

PUSH_METRICS = {"delivered": "delivered", "opened": "opened", "converted": "converted"}
VIEW_TYPES = ("screen", "page")  # Track event types that are views, never conversion events
PERSON_WRITES = {"merge", "delete", "suppress", "unsuppress"}
DEVICE_RESERVED = ("id", "token", "platform", "last_used", "attributes")


def identify_call(customer_id: str, body: Any) -> Call:
    attributes = dict(properties(body, "attributes"))
    email = email_of(attributes, "email")
    anonymous_id = optional_identifier(attributes.pop("anonymous_id", None), "anonymous_id")
    attributes.pop("id", None)
    return Call(None, (Identify(customer_id, anonymous_id, email, attributes),))


def device_call(customer_id: str, device: dict[str, Any], field: str) -> Call:
    """A device add: ``device`` is Customer.io's device object (token under ``token`` or, in
    v1, ``id``; attributes in ``attributes`` or beside the reserved keys)."""
    token = device_token(device.get("token", device.get("id")), f"{field}.token")
    given = platform(device.get("platform"), f"{field}.platform", required=False)
    flat = {k: v for k, v in device.items() if k not in DEVICE_RESERVED}
    attributes = {**object_of(device.get("attributes")), **flat}
    values = device_values(attributes, f"{field}.attributes")
    body = DevicePut(platform=given or "ios", customer_id=customer_id, **values)  # type: ignore[arg-type]
    return Call(None, (UpsertDevice(token, body, given is not None),))


def event_call(
    context: Context,
    body: dict[str, Any],
    customer_id: str | None,
    anonymous_id: str | None,
    attributes_key: str = "data",
    kind: Any = None,
) -> Call:
    """A person's or an anonymous event; a screen or page view (``kind``, v1's ``type``) is
    forwarded as a view, so it never counts as a conversion."""
    name = event_name(body.get("name"), "name")
    event_id = optional_identifier(body.get("id"), "id")
    data = properties(body.get(attributes_key), attributes_key)
    at = moment(body.get("timestamp"), context.now)
    if kind in VIEW_TYPES:
        view = (
            ops.person_view(customer_id, kind, name, data, at)
            if customer_id is not None
            else ops.anonymous_event(anonymous_id, kind, name, data, at, event_id)
        )
        return Call(event_id, (Forward(view),))
    if kind not in (None, "event"):
        raise Refused("type", "must be event, screen or page")
    who = (customer_id, anonymous_id)
    event = admitted_event(context, name, data, attributes_key, at, who, event_id)
    if customer_id is None and anonymous_id is None:
        # relay keeps it, but cannot forward an event of nobody: Customer.io can, as it came
        anonymous = ops.anonymous_event(None, "event", name, data, at, event.client_id)
        return Call(event_id, (RecordEvent(event), Forward(anonymous)))
    return Call(event_id, (RecordEvent(event),))


def metric_call(
    delivery_id: Any,
    metric: Any,
    recipient: Any,
    timestamp: Any,
    now: float,
    as_is: ops.Op,
    retention: RetentionSettings,
) -> Call:
    """A delivery metric: a push metric of a device relay records; any other (an email
    recipient, an in-app metric) goes to Customer.io as it came (``as_is``)."""
    delivery = identifier(delivery_id, "delivery_id")
    if not isinstance(metric, str) or not metric:
        raise Refused("metric", "is required")
    ours = PUSH_METRICS.get(metric)
    if ours is None or not _looks_like_token(recipient):
        return Call(None, (Forward(as_is),))
    token = device_token(recipient, "recipient")
    key = f"rde:{delivery}:{metric}:{token}"
    at = retained("metrics", moment(timestamp, now), retention, now)
    new = NewMetric(key, ours, token, delivery, at, source="app")
    return Call(key, (RecordMetric(new),))


def _v1_metric(body: dict[str, Any]) -> ops.Op:
    return ops.Op("metrics", body, endpoint="POST /api/v1/metrics")


def _looks_like_token(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "@" not in value


def _person_write(context: Context, action: str, op: dict[str, Any]) -> Call:
    """merge, delete, suppress or unsuppress: server and admin keys only."""
    require_person_writes(context.role, "action")
    if action == "merge":
        primary = object_of(op.get("primary"))
        secondary = object_of(op.get("secondary"))
        if "id" not in primary or "id" not in secondary:  # by email or cio_id: Customer.io's
            return Call(None, (Forward(ops.Op(f"passthrough:{ULID()}", op)),))
        first = identifier(primary.get("id"), "primary.id")
        second = identifier(secondary.get("id"), "secondary.id")
        if first == second:
            raise Refused("secondary.id", "must differ from primary.id")
        return Call(None, (Merge(first, second),))
    identifiers = object_of(op.get("identifiers"))
    if "id" not in identifiers:
        return Call(None, (Forward(ops.Op(f"passthrough:{ULID()}", op)),))
    customer_id = identifier(identifiers.get("id"), "identifiers.id")
    if action == "delete":
        return Call(None, (DeletePerson(customer_id),))
    return Call(None, (SuppressPerson(customer_id, action == "suppress"),))


def v2_call(op: Any, context: Context) -> Call:
    """One ``/api/v2`` operation."""
    if not isinstance(op, dict):
        raise Refused("", "an operation must be an object")
    action, kind = op.get("action"), op.get("type")
    if kind == "person" and action in PERSON_WRITES:
        return _person_write(context, action, op)
    identifiers = object_of(op.get("identifiers"))
    if kind == "delivery" and action == "event":
        return metric_call(
            identifiers.get("id"),
            op.get("name"),
            object_of(op.get("attributes")).get("device_token"),
            op.get("timestamp"),
            context.now,
            ops.Op(f"passthrough:{ULID()}", op),
            context.settings.retention,
        )
    customer_id = optional_identifier(identifiers.get("id"), "identifiers.id")
    if kind == "person" and customer_id is not None:
        device = object_of(op.get("device"))
        if action == "identify":
            return identify_call(customer_id, op.get("attributes"))
        if action == "add_device":
            return device_call(customer_id, device, "device")
        if action == "delete_device":
            token = device_token(device.get("token"), "device.token")
            return Call(None, (UnregisterDevice(token, customer_id),))
        if action == "event":
            return event_call(context, op, customer_id, None, attributes_key="attributes")
    lane = ops.person_lane(customer_id) if customer_id else f"passthrough:{ULID()}"
    return Call(None, (Forward(ops.Op(lane, op)),))


async def _apply(request: web.Request, calls: list[Call], key: KeyRecord) -> web.Response:
    await apply_calls(request, key.app_id, calls)
    return ok()


async def _key(request: web.Request) -> KeyRecord:
    basic = basic_credentials(request)
    return await key_for(request, basic[1] if basic else None)


async def _context(request: web.Request) -> tuple[KeyRecord, Context]:
    key = await _key(request)
    tally = plan_tally(request)
    return key, Context(request.app[SETTINGS], key.role, timeutil.now(), tally)


def _path_id(request: web.Request, name: str = "identifier") -> str:
    return identifier(request.match_info[name], name)


@customerio_errors(Shape.TRACK_V1)
async def put_customer(request: web.Request) -> web.Response:
    """Identify (``PUT /api/v1/customers/{identifier}``)."""
    key = await _key(request)
    body = await read_object(request)
    return await _apply(request, [identify_call(_path_id(request), body)], key)


def _person_route(action: str):  # type: ignore[no-untyped-def]
    @customerio_errors(Shape.TRACK_V1)
    async def handler(request: web.Request) -> web.Response:
        key, context = await _context(request)
        op = {"type": "person", "identifiers": {"id": request.match_info["identifier"]}}
        call = _person_write(context, action, {**op, "action": action})
        return await _apply(request, [call], key)

    handler.__name__ = f"{action}_customer"
    handler.__doc__ = f"{action.capitalize()} a person (server and admin keys only)."
    return handler


@customerio_errors(Shape.TRACK_V1)
async def put_device(request: web.Request) -> web.Response:
    """Add or update a device (``PUT /api/v1/customers/{identifier}/devices``)."""
    key = await _key(request)
    device = object_of((await read_object(request)).get("device"))
    platform(device.get("platform"), "device.platform")  # required on this route
    return await _apply(request, [device_call(_path_id(request), device, "device")], key)


@customerio_errors(Shape.TRACK_V1)
async def delete_device(request: web.Request) -> web.Response:
    """Delete a device (``DELETE …/devices/{device_id}``): the token becomes unregistered."""
    key = await _key(request)
    token = device_token(request.match_info["device_id"], "device_id")
    return await _apply(request, [Call(None, (UnregisterDevice(token, _path_id(request)),))], key)


@customerio_errors(Shape.TRACK_V1)
async def customer_event(request: web.Request) -> web.Response:
    """A person's event (``POST /api/v1/customers/{identifier}/events``)."""
    key, context = await _context(request)
    body = await read_object(request)
    call = event_call(context, body, _path_id(request), None, kind=body.get("type"))
    return await _apply(request, [call], key)


@customerio_errors(Shape.TRACK_V1)
async def anonymous_event(request: web.Request) -> web.Response:
    """An anonymous event (``POST /api/v1/events``)."""
    key, context = await _context(request)
    body = await read_object(request)
    anonymous_id = optional_identifier(body.get("anonymous_id"), "anonymous_id")
    call = event_call(context, body, None, anonymous_id, kind=body.get("type"))
    return await _apply(request, [call], key)


@customerio_errors(Shape.TRACK_V1)
async def metrics(request: web.Request) -> web.Response:
    """A delivery metric (``POST /api/v1/metrics``)."""
    key = await _key(request)
    body = await read_object(request)
    call = metric_call(
        body.get("delivery_id"),
        body.get("metric"),
        body.get("recipient"),
        body.get("timestamp"),
        timeutil.now(),
        _v1_metric(body),
        request.app[SETTINGS].retention,
    )
    return await _apply(request, [call], key)


@customerio_errors(Shape.TRACK_V1)
async def push_events(request: web.Request) -> web.Response:
    """The deprecated push metric (``POST /api/v1/push/events``, also ``/push/events``)."""
    key = await _key(request)
    body = await read_object(request)
    token = device_token(body.get("device_id"), "device_id")
    raw = {"delivery_id": body.get("delivery_id"), "metric": body.get("event"), "recipient": token}
    if body.get("timestamp"):
        raw["timestamp"] = body["timestamp"]
    call = metric_call(
        body.get("delivery_id"),
        body.get("event"),
        token,
        body.get("timestamp"),
        timeutil.now(),
        _v1_metric(raw),
        request.app[SETTINGS].retention,
    )
    return await _apply(request, [call], key)


@customerio_errors(Shape.TRACK_V1)
async def merge_customers(request: web.Request) -> web.Response:
    """Merge two people (``POST /api/v1/merge_customers``; server and admin keys only)."""
    key, context = await _context(request)
    body = await read_object(request)
    return await _apply(request, [_person_write(context, "merge", body)], key)


@customerio_errors(Shape.TRACK_V2)
async def v2_batch(request: web.Request) -> web.Response:
    """``POST /api/v2/batch``: refused operations are named by ``batch_index`` (207)."""
    key, context = await _context(request)
    items = (await read_object(request)).get("batch")
    if not isinstance(items, list):
        raise CompatError(400, "invalid", "batch must be an array", "batch")
    calls, errors = [], []
    for index, op in enumerate(items):
        try:
            calls.append(v2_call(op, context))
        except Refused as refused:
            errors.append(TrackV2Item(refused.reason, refused.field, refused.message, index))
    await apply_calls(request, key.app_id, calls)
    return json_response(TrackV2Error(errors), status=207) if errors else ok()


@customerio_errors(Shape.TRACK_V2)
async def v2_entity(request: web.Request) -> web.Response:
    """``POST /api/v2/entity``."""
    key, context = await _context(request)
    return await _apply(request, [v2_call(await read_json(request), context)], key)


def _route(method: str, path: str, handler, summary: str) -> Route:  # type: ignore[no-untyped-def]
    return Route(method, path, handler, summary, role=None, responses=answers(path))


CUSTOMER = "/api/v1/customers/{identifier}"
ROUTES = [
    _route("PUT", CUSTOMER, put_customer, "Track: identify"),
    _route("DELETE", CUSTOMER, _person_route("delete"), "Track: delete person"),
    _route("POST", f"{CUSTOMER}/suppress", _person_route("suppress"), "Track: suppress person"),
    _route(
        "POST", f"{CUSTOMER}/unsuppress", _person_route("unsuppress"), "Track: unsuppress person"
    ),
    _route("PUT", f"{CUSTOMER}/devices", put_device, "Track: add device"),
    _route("DELETE", f"{CUSTOMER}/devices/{{device_id}}", delete_device, "Track: delete device"),
    _route("POST", f"{CUSTOMER}/events", customer_event, "Track: event"),
    _route("POST", "/api/v1/events", anonymous_event, "Track: anonymous event"),
    _route("POST", "/api/v1/metrics", metrics, "Track: delivery metric"),
    _route("POST", "/api/v1/push/events", push_events, "Track: push metric (deprecated)"),
    _route("POST", "/push/events", push_events, "Track-era SDKs: push metric (legacy path)"),
    _route("POST", "/api/v1/merge_customers", merge_customers, "Track: merge people"),
    Route(
        "POST",
        "/api/v2/batch",
        v2_batch,
        "Track v2: batch",
        role=None,
        responses={**answers("/api/v2/batch"), 207: TrackV2Error},
    ),
    _route("POST", "/api/v2/entity", v2_entity, "Track v2: one operation"),
]
