"""/v1/identify and /v1/profiles: stitching anonymous activity to customers."""

from __future__ import annotations

from aiohttp import web

from relay.api.bodies import read_json
from relay.api.limits import check_id, check_map, raise_if_any
from relay.api.responses import json_response
from relay.api.routing import APP_PARAM, Param, Route, caller
from relay.api.state import STORE
from relay.errors import FieldError, ValidationFailed
from relay.models.common import Problem
from relay.models.identity import IdentifyAck, IdentifyIn, MergeIn, Profile, Suppression


async def identify(request: web.Request) -> web.Response:
    """Attach an anonymous id, its devices and their unattributed history to a customer."""
    who = caller(request)
    body = await read_json(request, IdentifyIn)
    errors: list[FieldError] = []
    check_id(errors, "customer_id", body.customer_id)
    check_id(errors, "anonymous_id", body.anonymous_id)
    check_map(errors, "attributes", body.attributes)
    raise_if_any(errors)
    await request.app[STORE].identify(
        who.app_id, body.customer_id, body.anonymous_id, body.email, body.attributes
    )
    return json_response(IdentifyAck(body.customer_id))


async def merge_profiles(request: web.Request) -> web.Response:
    """Move everything of the secondary profile to the primary (server and admin keys; a server
    key, which reads nothing, gets back only the primary's customer id)."""
    who = caller(request)
    body = await read_json(request, MergeIn)
    errors: list[FieldError] = []
    check_id(errors, "primary", body.primary)
    check_id(errors, "secondary", body.secondary)
    raise_if_any(errors)
    if body.primary == body.secondary:
        raise ValidationFailed.at("secondary", "must differ from primary")
    profile = await request.app[STORE].merge_profiles(who.app_id, body.primary, body.secondary)
    return json_response(profile if who.is_admin else IdentifyAck(profile.customer_id))


async def delete_profile(request: web.Request) -> web.Response:
    """Delete a person: devices become unregistered, anonymous ids are released, metrics and
    events stay in device counts without a customer; Customer.io deletes the person too."""
    who = caller(request)
    await request.app[STORE].delete_profile(who.app_id, _path_customer_id(request))
    return web.Response(status=204)


def _suppression(suppressed: bool):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        who = caller(request)
        customer_id = _path_customer_id(request)
        await request.app[STORE].suppress_profile(who.app_id, customer_id, suppressed)
        return json_response(Suppression(customer_id, suppressed))

    verb = "suppress" if suppressed else "unsuppress"
    handler.__name__ = f"{verb}_profile"
    handler.__doc__ = (
        "Suppress a person: no test pushes by customer, out of segment exports; forwarded."
        if suppressed
        else "Lift a suppression; forwarded."
    )
    return handler


def _path_customer_id(request: web.Request) -> str:
    customer_id = request.match_info["customer_id"]
    errors: list[FieldError] = []
    check_id(errors, "customer_id", customer_id)
    raise_if_any(errors)
    return customer_id


async def get_profile(request: web.Request) -> web.Response:
    """A profile with its devices, anonymous ids and attributed metric counts."""
    who = caller(request)
    customer_id = _path_customer_id(request)
    return json_response(await request.app[STORE].profile(who.app_id, customer_id))


ROUTES = [
    Route(
        "POST",
        "/v1/identify",
        identify,
        "Identify a customer",
        role="app",
        body=IdentifyIn,
        responses={200: IdentifyAck, 422: Problem},
        params=(APP_PARAM,),
    ),
    Route(
        "POST",
        "/v1/profiles/merge",
        merge_profiles,
        "Merge two profiles",
        role="server",
        body=MergeIn,
        responses={200: Profile | IdentifyAck, 404: Problem, 422: Problem},
        params=(APP_PARAM,),
    ),
    Route(
        "GET",
        "/v1/profiles/{customer_id}",
        get_profile,
        "Inspect a profile",
        role="admin",
        responses={200: Profile, 404: Problem},
        params=(Param("customer_id", "path", "The customer id."), APP_PARAM),
    ),
    Route(
        "DELETE",
        "/v1/profiles/{customer_id}",
        delete_profile,
        "Delete a person",
        role="server",
        responses={204: None, 404: Problem, 422: Problem},
        params=(Param("customer_id", "path", "The customer id."), APP_PARAM),
    ),
    *(
        Route(
            "POST",
            f"/v1/profiles/{{customer_id}}/{verb}",
            _suppression(verb == "suppress"),
            f"{verb.capitalize()} a person",
            role="server",
            responses={200: Suppression, 404: Problem, 422: Problem},
            params=(Param("customer_id", "path", "The customer id."), APP_PARAM),
        )
        for verb in ("suppress", "unsuppress")
    ),
]
