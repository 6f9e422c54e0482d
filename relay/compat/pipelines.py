"""Pipelines-compatible routes (``/cdp/v1``): what Customer.io's mobile SDKs and the Segment-style
server libraries send, translated into relay's devices, identities, metrics and events.

- ``Device Created or Updated`` → a device (``context.device.token``; attributes in
  ``properties``; ``push_enabled`` arrives as the string "true"/"false").
- ``Device Deleted`` → the device leaves that profile (a logout), it is not unregistered.
- ``Report Delivery Event`` → a metric (``clicked`` counts as ``opened``); its ``anonymousId``
  is the delivery id on the background delivered call, so it never names an identity.
- ``identify`` with ``userId`` (+ ``anonymousId``) → relay's identify, stitching.
- other ``track`` events → relay events (conversion attribution sees them).
- ``screen``, ``page``, ``group``, ``alias`` → forwarded as they are to Pipelines.
Calls de-duplicate on ``messageId`` (or deliveryId+metric+recipient for delivery events).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web
from ulid import ULID

from relay import timeutil
from relay.api.routing import Route
from relay.api.state import SETTINGS, STORE
from relay.compat.actions import (
    Action,
    Call,
    Forward,
    Identify,
    LeaveDevice,
    RecordEvent,
    RecordMetric,
    UpsertDevice,
)
from relay.compat.timestamps import moment
from relay.compat.values import DEVICE_FIELDS, is_token, scalars, text
from relay.compat.wire import (
    CompatError,
    Shape,
    app_for_key,
    basic_credentials,
    bearer_token,
    customerio_errors,
    ok,
    read_json,
)
from relay.facts import NewEvent, NewMetric
from relay.forward import ops
from relay.models.devices import DevicePut
from relay.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "/cdp/v1"
DEVICE_EVENTS = ("Device Created or Updated", "Device Deleted")
DELIVERY_EVENT = "Report Delivery Event"
METRICS = {
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "opened",
    "converted": "converted",
}
FORWARDED_TYPES = ("screen", "page", "group", "alias")


def translate(call: dict[str, Any], call_type: str, settings: Settings, now: float) -> Call:
    """One Pipelines call → relay actions."""
    message_id = text(call.get("messageId"), 256)
    user_id = text(call.get("userId"))
    anonymous_id = text(call.get("anonymousId"))
    at = moment(call.get("timestamp") or call.get("originalTimestamp"), now)
    context = call.get("context") if isinstance(call.get("context"), dict) else {}
    properties = call.get("properties") if isinstance(call.get("properties"), dict) else {}
    actions: list[Action] = []
    if call_type == "identify":
        traits = dict(call.get("traits")) if isinstance(call.get("traits"), dict) else {}
        if user_id:
            email = traits.pop("email", None)
            attributes = {k: v for k, v in traits.items() if isinstance(k, str)}
            actions.append(
                Identify(
                    user_id, anonymous_id, email if isinstance(email, str) else None, attributes
                )
            )
        else:
            actions.extend(_passthrough("identify", call, settings, at))
    elif call_type == "track":
        event = call.get("event")
        if event in DEVICE_EVENTS:
            device = context.get("device") if isinstance(context.get("device"), dict) else {}
            token = device.get("token")
            if is_token(token):
                if event == "Device Deleted":
                    actions.append(LeaveDevice(token, user_id))
                else:
                    body = _device_put(device, properties, user_id, anonymous_id)
                    given = device.get("type") in ("ios", "android")
                    actions.append(UpsertDevice(token, body, given))
        elif event == DELIVERY_EVENT:
            metric = _delivery_metric(properties, message_id, at)
            if metric is None:
                actions.extend(_passthrough("track", call, settings, at))
            else:
                message_id = metric.client_id
                actions.append(RecordMetric(metric))
        elif isinstance(event, str) and event.strip():
            name = settings.events.canonical_name(event.strip()[:100])
            actions.append(
                RecordEvent(
                    NewEvent(
                        client_id=message_id or f"relay-{ULID()}",
                        name=name,
                        original_name=event,
                        customer_id=user_id,
                        anonymous_id=anonymous_id,
                        token=None,
                        occurred_at=at,
                        properties=msgspec.json.encode(properties).decode(),
                    )
                )
            )
    elif call_type in FORWARDED_TYPES:
        actions.extend(_passthrough(call_type, call, settings, at))
    return Call(message_id, tuple(actions))


def _passthrough(
    call_type: str, call: dict[str, Any], settings: Settings, at: float
) -> list[Action]:
    """A call relay does not model goes on to Customer.io: through Pipelines when relay has a
    Pipelines key; else screens and pages of a known user as Track person operations; else
    nowhere (logged), since Track cannot express it."""
    if settings.customerio.cdp_api_key:
        return [Forward(ops.pipelines_call(call_type, call))]
    user_id = text(call.get("userId"))
    name = call.get("name")
    if call_type in ("screen", "page") and user_id and isinstance(name, str) and name:
        properties = call.get("properties") if isinstance(call.get("properties"), dict) else {}
        return [Forward(ops.person_view(user_id, call_type, name, properties, at))]
    log.info("not forwarded (no [customerio] cdp_api_key): a %s call", call_type)
    return []


def _device_put(
    device: dict[str, Any],
    properties: dict[str, Any],
    user_id: str | None,
    anonymous_id: str | None,
) -> DevicePut:
    platform = device.get("type") if device.get("type") in ("ios", "android") else "ios"
    values: dict[str, Any] = {"platform": platform}
    if user_id:
        values["customer_id"] = user_id
    if anonymous_id:
        values["anonymous_id"] = anonymous_id
    enabled = properties.get("push_enabled")
    if isinstance(enabled, bool) or enabled in ("true", "false"):
        values["push_enabled"] = enabled in (True, "true")
    for theirs, ours in DEVICE_FIELDS.items():
        if isinstance(properties.get(theirs), str):
            values[ours] = properties[theirs][:256]
    known = {*DEVICE_FIELDS, "push_enabled"}
    extra = {k: v for k, v in scalars(properties).items() if k not in known}
    if extra:
        values["attributes"] = dict(list(extra.items())[:300])
    return DevicePut(**values)


def _delivery_metric(
    properties: dict[str, Any], message_id: str | None, at: float
) -> NewMetric | None:
    delivery_id = text(properties.get("deliveryId"))
    metric = METRICS.get(properties.get("metric"))  # type: ignore[arg-type]
    token = properties.get("recipient")
    if not (delivery_id and metric and is_token(token)):
        return None
    reported = properties.get("metric")
    return NewMetric(
        client_id=message_id or f"rde:{delivery_id}:{reported}:{token}",
        metric=metric,
        token=token,
        delivery_id=delivery_id,
        occurred_at=at,
        source="app",
    )


async def _ingest(
    request: web.Request, calls: list[tuple[dict[str, Any], str]], key: str | None
) -> web.Response:
    app_id = await app_for_key(request, key)
    settings, now = request.app[SETTINGS], timeutil.now()
    translated = [translate(call, call_type, settings, now) for call, call_type in calls]
    await request.app[STORE].apply_calls(app_id, translated)
    return ok()


def _key(request: web.Request, body: Any) -> str | None:
    basic = basic_credentials(request)
    if basic is not None and basic[0]:
        return basic[0]
    bearer = bearer_token(request)
    if bearer:
        return bearer
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None


@customerio_errors(Shape.PIPELINES)
async def batch(request: web.Request) -> web.Response:
    """Batch upload (``/b`` from the mobile SDKs, ``/batch`` from server libraries)."""
    body = await read_json(request)
    items = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise CompatError(400, "invalid_request", "batch must be an array", "batch")
    shared = {k: body[k] for k in ("context", "integrations") if isinstance(body.get(k), dict)}
    calls = [
        ({**shared, **item}, str(item.get("type", ""))) for item in items if isinstance(item, dict)
    ]
    return await _ingest(request, calls, _key(request, body))


def _single(call_type: str):  # type: ignore[no-untyped-def]
    @customerio_errors(Shape.PIPELINES)
    async def handler(request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise CompatError(400, "invalid_request", "body must be a JSON object")
        return await _ingest(request, [(body, call_type)], _key(request, body))

    handler.__name__ = f"pipelines_{call_type}"
    handler.__doc__ = f"Pipelines-compatible ``{call_type}`` call."
    return handler


@customerio_errors(Shape.PIPELINES)
async def project_settings(request: web.Request) -> web.Response:
    """SDK settings; the Data Pipelines entry always points the SDK at relay."""
    key = request.match_info["key"]
    await app_for_key(request, key)
    public = request.app[SETTINGS].server.public_url
    host = urlsplit(public).netloc + urlsplit(public).path.rstrip("/") if public else request.host
    return web.json_response(
        {
            "integrations": {
                "Customer.io Data Pipelines": {"apiKey": key, "apiHost": f"{host}{PREFIX}"}
            }
        }
    )


ROUTES = [
    *(
        Route(
            "POST",
            f"{PREFIX}/{name}",
            batch,
            "Pipelines-compatible batch",
            role=None,
            responses={200: None},
        )
        for name in ("b", "batch")
    ),
    *(
        Route(
            "POST",
            f"{PREFIX}/{call_type}",
            _single(call_type),
            f"Pipelines-compatible {call_type}",
            role=None,
            responses={200: None},
        )
        for call_type in ("track", "identify", "screen", "alias", "page", "group")
    ),
    Route(
        "GET",
        f"{PREFIX}/projects/{{key}}/settings",
        project_settings,
        "SDK settings (Pipelines-compatible)",
        role=None,
        responses={200: None},
    ),
]
