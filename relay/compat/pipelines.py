"""Pipelines-compatible routes (``/cdp/v1``): what Customer.io's mobile SDKs and the Segment-style
server libraries send, translated into relay's devices, identities, metrics and events.

- ``Device Created or Updated`` → a device registration (``context.device.token``; attributes
  in ``properties``): it revives a deleted token.
- ``Device Deleted`` (sent on token refresh and logout) → the token becomes ``unregistered``.
- ``Report Delivery Event`` → a metric (``clicked`` counts as ``opened``); its ``anonymousId``
  is the delivery id on the background delivered call, so it never names an identity.
- ``User Deleted`` / ``User Suppressed`` / ``User Unsuppressed`` → person-level writes, for
  server and admin keys only.
- ``identify`` with ``userId`` (+ ``anonymousId``) → relay's identify, stitching.
- other ``track`` events → relay events (conversion attribution sees them).
- ``screen`` and ``page`` of a known user → views forwarded through Track; other views,
  ``group``, ``alias`` and traits-only ``identify`` → forwarded through Pipelines (they need
  ``cdp_api_key``).

Calls de-duplicate on ``messageId`` (or deliveryId+metric+recipient for delivery events). A
batch answers 200 whenever its envelope is valid (the SDKs drop a whole batch on a 4xx):
each item relay refuses is committed to the rejected-items log instead.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from relay import timeutil
from relay.api.routing import Route
from relay.api.state import METRICS, SETTINGS
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
    answers,
    basic_credentials,
    bearer_token,
    customerio_errors,
    key_for,
    ok,
    read_json,
)
from relay.domain.actions import (
    Action,
    Call,
    Context,
    DeletePerson,
    Forward,
    Identify,
    RecordEvent,
    RecordMetric,
    Reject,
    SuppressPerson,
    UnregisterDevice,
    UpsertDevice,
)
from relay.facts import NewMetric
from relay.forward import ops
from relay.keys import Role
from relay.models.devices import DevicePut

log = logging.getLogger(__name__)

PREFIX = "/cdp/v1"
SURFACE = "pipelines"
DEVICE_UPDATED, DEVICE_DELETED = "Device Created or Updated", "Device Deleted"
DELIVERY_EVENT = "Report Delivery Event"
PERSON_EVENTS = {
    "User Deleted": "delete",
    "User Suppressed": "suppress",
    "User Unsuppressed": "unsuppress",
}
METRICS_MAP = {
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "opened",
    "converted": "converted",
}
VIEW_TYPES = ("screen", "page")
PIPELINES_ONLY_TYPES = ("group", "alias")
MAX_MESSAGE_ID_BYTES = 256


def translate(call: dict[str, Any], call_type: str, context: Context) -> Call:
    """One Pipelines call → relay actions; raises `Refused` for what relay cannot store."""
    message_id = message_id_of(call)
    user_id = optional_identifier(call.get("userId"), "userId")
    at = moment(call.get("timestamp") or call.get("originalTimestamp"), context.now)
    if call_type == "track" and call.get("event") == DELIVERY_EVENT:
        # the background delivered call carries the delivery id as its anonymousId
        metric = _delivery_metric(object_of(call.get("properties")), message_id, at)
        if metric is not None:
            retained("metrics", at, context.settings.retention, context.now)
            return Call(metric.client_id, (RecordMetric(metric),))
        return Call(message_id, _passthrough("track", call, context, at))
    anonymous_id = optional_identifier(call.get("anonymousId"), "anonymousId")
    actions: tuple[Action, ...]
    if call_type == "identify":
        actions = _identify(call, user_id, anonymous_id, context, at)
    elif call_type == "track":
        actions = _track(call, user_id, anonymous_id, context, at, message_id)
    elif call_type in (*VIEW_TYPES, *PIPELINES_ONLY_TYPES):
        actions = _passthrough(call_type, call, context, at)
    else:
        raise Refused("type", "must be identify, track, screen, page, group or alias")
    return Call(message_id, actions)


def message_id_of(call: dict[str, Any]) -> str | None:
    value = call.get("messageId")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value.encode()) > MAX_MESSAGE_ID_BYTES:
        raise Refused("messageId", f"must be a string of at most {MAX_MESSAGE_ID_BYTES} bytes")
    return value


def _identify(
    call: dict[str, Any],
    user_id: str | None,
    anonymous_id: str | None,
    context: Context,
    at: float,
) -> tuple[Action, ...]:
    traits = dict(properties(call.get("traits"), "traits"))
    if user_id is None:  # traits of an anonymous user: Customer.io's business, via Pipelines
        return _passthrough("identify", call, context, at)
    email = email_of(traits, "traits.email")
    return (Identify(user_id, anonymous_id, email, traits),)


def _track(
    call: dict[str, Any],
    user_id: str | None,
    anonymous_id: str | None,
    context: Context,
    at: float,
    message_id: str | None,
) -> tuple[Action, ...]:
    event = event_name(call.get("event"), "event")
    props = properties(call.get("properties"), "properties")
    call_context = object_of(call.get("context"))
    if event == DEVICE_UPDATED:
        device = object_of(call_context.get("device"))
        token = device_token(device.get("token"), "context.device.token")
        kind = platform(device.get("type"), "context.device.type", required=False)
        body = _device_put(call_context, props, kind, user_id, anonymous_id)
        return (UpsertDevice(token, body, kind is not None),)
    if event == DEVICE_DELETED:
        device = object_of(call_context.get("device"))
        token = device_token(device.get("token"), "context.device.token")
        return (UnregisterDevice(token, user_id),)
    if event in PERSON_EVENTS:
        require_person_writes(context.role, "event")
        customer_id = identifier(call.get("userId"), "userId")
        if PERSON_EVENTS[event] == "delete":
            return (DeletePerson(customer_id),)
        return (SuppressPerson(customer_id, PERSON_EVENTS[event] == "suppress"),)
    who = (user_id, anonymous_id)
    return (RecordEvent(admitted_event(context, event, props, "properties", at, who, message_id)),)


def _passthrough(
    call_type: str, call: dict[str, Any], context: Context, at: float
) -> tuple[Action, ...]:
    """A call relay does not model goes on to Customer.io: through Pipelines when relay has a
    Pipelines key; else a known person's screens and pages as Track views. Anything else
    (anonymous views too: Track's anonymous screen and page shapes overlap, so the published
    spec refuses them) cannot be forwarded without that key: refused, never dropped."""
    if context.settings.customerio.cdp_api_key:
        return (Forward(ops.pipelines_call(call_type, call)),)
    name, user_id = call.get("name"), optional_identifier(call.get("userId"), "userId")
    if call_type in VIEW_TYPES and isinstance(name, str) and name and user_id is not None:
        props = properties(call.get("properties"), "properties")
        return (Forward(ops.person_view(user_id, call_type, name, props, at)),)
    raise Refused(
        "type",
        f"relay cannot forward a {call_type} call without [customerio] cdp_api_key",
        reason="unforwardable",
    )


def _device_put(
    call_context: dict[str, Any],
    props: dict[str, Any],
    kind: str | None,
    user_id: str | None,
    anonymous_id: str | None,
) -> DevicePut:
    # The SDK names its user on every call once identified: a registration without userId
    # comes from an anonymous (e.g. logged-out) install and attaches the token to nobody.
    values: dict[str, Any] = {"platform": kind or "ios", "customer_id": user_id}
    if anonymous_id:
        values["anonymous_id"] = anonymous_id
    # device attributes win over what the context says of the same thing
    fallback = {
        "device_os": object_of(call_context.get("os")).get("version"),
        "device_locale": call_context.get("locale"),
        "timezone": call_context.get("timezone"),
    }
    given = {key: value for key, value in fallback.items() if isinstance(value, str) and value}
    values |= device_values({**given, **props}, "properties")
    return DevicePut(**values)


def _delivery_metric(props: dict[str, Any], message_id: str | None, at: float) -> NewMetric | None:
    """The push metric of a Report Delivery Event, or None when it is not one relay records
    (an in-app or unknown metric: forwarded as it came)."""
    reported = props.get("metric")
    metric = METRICS_MAP.get(reported) if isinstance(reported, str) else None
    recipient = props.get("recipient")
    if metric is None or recipient is None:
        return None
    delivery_id = identifier(props.get("deliveryId"), "properties.deliveryId")
    token = device_token(recipient, "properties.recipient")
    return NewMetric(
        client_id=message_id or f"rde:{delivery_id}:{reported}:{token}",
        metric=metric,
        token=token,
        delivery_id=delivery_id,
        occurred_at=at,
        source="app",
    )


def _context(request: web.Request, role: Role) -> Context:
    return Context(request.app[SETTINGS], role, timeutil.now(), plan_tally(request))


def _key(request: web.Request, body: Any) -> str | None:
    basic = basic_credentials(request)
    if basic is not None and basic[0]:
        return basic[0]
    bearer = bearer_token(request)
    if bearer:
        return bearer
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None


def _refused_item(index: int, item: Any, call_id: str | None, refused: Refused) -> Call:
    path = f"batch[{index}]" + (f".{refused.field}" if refused.field else "")
    log.warning("pipelines batch item refused, in the rejected-items log: %s", path)
    kept = item if isinstance(item, dict) else {"value": item}
    reject = Reject(SURFACE, path, refused.reason, refused.message, kept)
    return Call(call_id, (reject,))


@customerio_errors(Shape.PIPELINES)
async def batch(request: web.Request) -> web.Response:
    """Batch upload (``/b`` from the mobile SDKs, ``/batch`` from server libraries)."""
    body = await read_json(request)
    items = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise CompatError(400, "invalid_request", "batch must be an array", "batch")
    key = await key_for(request, _key(request, body))
    context = _context(request, key.role)
    shared = {k: body[k] for k in ("context", "integrations") if isinstance(body.get(k), dict)}
    calls = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise Refused("", "a call must be an object")
            calls.append(translate({**shared, **item}, str(item.get("type", "")), context))
        except Refused as refused:
            calls.append(_refused_item(index, item, _replay_key(item), refused))
    applied = await apply_calls(request, key.app_id, calls)
    counter = request.app[METRICS].rejected_items
    for call in applied:
        for action in call.actions:
            if isinstance(action, Reject):
                counter.labels(action.surface, action.reason).inc()
    return ok()


def _replay_key(item: Any) -> str | None:
    """A refused item's messageId, if it has a usable one: a replayed batch logs it once."""
    try:
        return message_id_of(item) if isinstance(item, dict) else None
    except Refused:
        return None


def _single(call_type: str):  # type: ignore[no-untyped-def]
    @customerio_errors(Shape.PIPELINES)
    async def handler(request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise CompatError(400, "invalid_request", "body must be a JSON object")
        key = await key_for(request, _key(request, body))
        call = translate(body, call_type, _context(request, key.role))
        await apply_calls(request, key.app_id, [call])
        return ok()

    handler.__name__ = f"pipelines_{call_type}"
    handler.__doc__ = f"Pipelines-compatible ``{call_type}`` call."
    return handler


@customerio_errors(Shape.PIPELINES)
async def project_settings(request: web.Request) -> web.Response:
    """SDK settings; the Data Pipelines entry always points the SDK at relay."""
    key = request.match_info["key"]
    await key_for(request, key)
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
            responses=answers(f"{PREFIX}/{name}"),
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
            responses=answers(f"{PREFIX}/{call_type}"),
        )
        for call_type in ("track", "identify", "screen", "alias", "page", "group")
    ),
    Route(
        "GET",
        f"{PREFIX}/projects/{{key}}/settings",
        project_settings,
        "SDK settings (Pipelines-compatible)",
        role=None,
        responses={**answers(f"{PREFIX}/projects/{{key}}/settings"), 200: None},
    ),
]
