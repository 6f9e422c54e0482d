"""/v1/devices: register, refresh, unregister, inspect."""

from __future__ import annotations

import msgspec
from aiohttp import web

from relay.api.bodies import read_json
from relay.api.limits import check_id, check_map, raise_if_any
from relay.api.responses import json_response
from relay.api.routing import APP_PARAM, Param, Route, caller
from relay.api.state import STORE
from relay.errors import FieldError, ValidationFailed
from relay.models.common import Problem
from relay.models.devices import Device, DeviceAck, DeviceDetail, DevicePut, DeviceRefresh
from relay.models.fields import Token

TOKEN_PARAM = Param(
    "token",
    "path",
    "APNs or FCM device token.",
    {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "^[A-Za-z0-9._:-]+$"},
)


def path_token(request: web.Request) -> str:
    """The ``{token}`` path segment, held to the same rule as tokens in bodies."""
    try:
        return msgspec.convert(request.match_info["token"], Token)
    except msgspec.ValidationError:
        raise ValidationFailed.at("token", "must be 1-4096 characters of [A-Za-z0-9._:-]") from None


async def put_device(request: web.Request) -> web.Response:
    """Register or update a device (idempotent). 201 when created, 200 when updated."""
    who = caller(request)
    token = path_token(request)
    body = await read_json(request, DevicePut)
    errors: list[FieldError] = []
    for name in ("anonymous_id", "customer_id"):
        value = getattr(body, name)
        check_id(errors, name, value if isinstance(value, str) else None)
    check_map(errors, "attributes", body.attributes if isinstance(body.attributes, dict) else None)
    raise_if_any(errors)
    created, device = await request.app[STORE].put_device(who.app_id, token, body)
    answer = device if who.is_admin else DeviceAck(device.token, device.status)
    return json_response(answer, status=201 if created else 200)


async def refresh_device(request: web.Request) -> web.Response:
    """Move a device to its new token; history and profile follow, the old token is replaced."""
    who = caller(request)
    token = path_token(request)
    body = await read_json(request, DeviceRefresh)
    device = await request.app[STORE].refresh_device(who.app_id, token, body.new_token)
    return json_response(DeviceAck(device.token, device.status))


async def delete_device(request: web.Request) -> web.Response:
    """Mark a device unregistered (idempotent)."""
    who = caller(request)
    await request.app[STORE].unregister_device(who.app_id, path_token(request))
    return web.Response(status=204)


async def get_device(request: web.Request) -> web.Response:
    """The device object with its metric counts and newest 50 metrics."""
    who = caller(request)
    return json_response(await request.app[STORE].device_detail(who.app_id, path_token(request)))


ROUTES = [
    Route(
        "PUT",
        "/v1/devices/{token}",
        put_device,
        "Register or update a device",
        role="app",
        body=DevicePut,
        responses={200: Device | DeviceAck, 201: Device | DeviceAck, 422: Problem},
        params=(TOKEN_PARAM, APP_PARAM),
    ),
    Route(
        "POST",
        "/v1/devices/{token}/refresh",
        refresh_device,
        "Replace a device's token",
        role="app",
        body=DeviceRefresh,
        responses={200: DeviceAck, 404: Problem, 422: Problem},
        params=(TOKEN_PARAM, APP_PARAM),
    ),
    Route(
        "DELETE",
        "/v1/devices/{token}",
        delete_device,
        "Unregister a device",
        role="app",
        responses={204: None, 404: Problem},
        params=(TOKEN_PARAM, APP_PARAM),
    ),
    Route(
        "GET",
        "/v1/devices/{token}",
        get_device,
        "Inspect a device",
        role="admin",
        responses={200: DeviceDetail, 404: Problem},
        params=(TOKEN_PARAM, APP_PARAM),
    ),
]
