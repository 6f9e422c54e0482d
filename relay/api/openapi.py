"""/openapi.json, generated from the route table and the wire structs that validate requests."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from typing import Any

import msgspec

from relay import __version__
from relay.api.routing import Param, Route
from relay.models.common import Problem

_REF = "#/components/schemas/{name}"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Malformed JSON",
    401: "Missing, unknown or revoked key",
    403: "The key lacks the role",
    404: "Not found, or the key's app is not configured",
    408: "The body did not arrive in time",
    413: "Body too large",
    415: "Content-Type is not application/json",
    422: "Validation failed",
    503: "Not ready",
}
# Every route with a key can answer these before its handler runs (404: the key's app, or the
# admin's ?app=, is not configured).
_AUTH_ERRORS = (400, 401, 403, 404, 415)


def _members(annotation: Any) -> list[type]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return list(typing.get_args(annotation))
    return [annotation]


def _tag(path: str) -> str:
    if path.startswith("/v1/"):
        return path.split("/")[2]
    if path.startswith(("/cdp/", "/api/")):
        return "customerio-compatible"
    return "operations"


def build_openapi(routes: Sequence[Route]) -> dict[str, Any]:
    structs: list[Any] = [Problem]
    for route in routes:
        if route.body is not None:
            structs.append(route.body)
        for response in route.responses.values():
            if response is not None and response is not bytes:
                structs.extend(_members(response))
    schemas, components = msgspec.json.schema_components(structs, ref_template=_REF)
    schema_by_type = dict(zip(map(id, structs), schemas, strict=True))

    def schema_of(annotation: Any) -> dict[str, Any]:
        members = [schema_by_type[id(member)] for member in _members(annotation)]
        return members[0] if len(members) == 1 else {"anyOf": members}

    problem_ref = {"$ref": _REF.format(name="Problem")}

    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in routes:
        operation_id = route.handler.__name__
        if operation_id in operation_ids:  # one handler serving two paths (/cdp/v1/b, /batch)
            operation_id += "_" + re.sub(r"\W+", "_", route.path).strip("_")
        operation_ids.add(operation_id)
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": route.summary,
            "description": (route.handler.__doc__ or route.summary).strip(),
            "tags": [_tag(route.path)],
            "responses": {},
        }
        if route.role is not None:
            operation["security"] = [{"bearer": []}]
            operation["x-relay-role"] = route.role
        declared = {p.name for p in route.params}
        implicit = [
            Param(name, "path", name.replace("_", " "))
            for name in re.findall(r"{(\w+)}", route.path)
            if name not in declared
        ]
        if route.params or implicit:
            operation["parameters"] = [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required or p.where == "path",
                    "description": p.description,
                    "schema": p.schema,
                }
                for p in (*route.params, *implicit)
            ]
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of(route.body)}},
            }
        statuses = dict(route.responses)
        if route.role is not None:
            statuses.update({status: statuses.get(status) for status in _AUTH_ERRORS})
            if route.params or route.body is not None:  # a parameter or body out of its rules
                statuses.setdefault(422, Problem)
        for status, response in sorted(statuses.items()):
            entry: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "")}
            if response is bytes:
                entry["content"] = {
                    media: {
                        "schema": {"type": "object" if media == "application/json" else "string"}
                    }
                    for media in route.content_types
                }
            elif response is Problem or (response is None and status >= 400):
                entry["content"] = {"application/problem+json": {"schema": problem_ref}}
            elif response is not None:
                entry["content"] = {"application/json": {"schema": schema_of(response)}}
            operation["responses"][str(status)] = entry
        paths.setdefault(route.path, {})[route.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "relay",
            "version": __version__,
            "description": "Push-metrics relay between mobile apps, APNs/FCM and Customer.io.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
