"""The mapping from relay's facts to Customer.io Track operations, and their ordering lanes.

Pure functions: each returns `Op`s that the store writes to the outbox in the same
transaction as the fact. Shapes follow Customer.io's Track API v2 (``/api/v2/batch``); only
anonymous events use v1 (``POST /api/v1/events``), since v2 needs a person identifier.

Lanes keep order where Customer.io needs it: a person's identify before their devices and
events (``person:`` lane), a device's add before its delete and its metrics (``token:``
lane), and anonymous events before the identify that merges them (``anonymous:`` lane).
Customer.io is one workspace for every relay app, so lanes are not scoped by app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ulid import ULID

# What operations are built with (BATCH and Op re-exported for the domain).
from relay.models.outbox import BATCH as BATCH
from relay.models.outbox import FromRow, RowsOp
from relay.models.outbox import Op as Op

V1_ANONYMOUS_EVENT = "POST /api/v1/events"
PIPELINES = "PIPELINES"  # endpoint "PIPELINES POST /screen": a call to the Pipelines API

DEEP_LINK_FAILED_EVENT = "Deep Link Failed"
ACTION_TAPPED_EVENT = "Push Action Tapped"
# relay metric → Customer.io delivery metric (tapped counts as the delivery's open)
DELIVERY_METRIC = {
    "delivered": "delivered",
    "opened": "opened",
    "tapped": "opened",
    "converted": "converted",  # as reported by an SDK; relay's own conversions go directly
}


def person_lane(customer_id: str) -> str:
    return f"person:{customer_id}"


TOKEN_LANE = "token:"


def token_lane(token: str) -> str:
    return f"{TOKEN_LANE}{token}"


def anonymous_lane(anonymous_id: str) -> str:
    return f"anonymous:{anonymous_id}"


def _person(customer_id: str) -> dict[str, Any]:
    return {"type": "person", "identifiers": {"id": customer_id}}


def identify(
    customer_id: str,
    anonymous_id: str | None,
    email: str | None,
    attributes: Mapping[str, Any] | None,
    timestamp: float,
) -> Op:
    values: dict[str, Any] = dict(attributes or {})
    if email is not None:
        values["email"] = email
    if anonymous_id is not None:
        # Customer.io merges the anonymous activity of this id into the person.
        values["anonymous_id"] = anonymous_id
    payload = {**_person(customer_id), "action": "identify", "timestamp": int(timestamp)}
    if values:
        payload["attributes"] = values
    return Op(
        person_lane(customer_id),
        payload,
        wait_lane=anonymous_lane(anonymous_id) if anonymous_id else None,
    )


def device_attributes(device: Mapping[str, Any], custom: Mapping[str, Any]) -> dict[str, str]:
    """Customer.io device attributes are strings, ``push_enabled`` included."""
    values = {key: _as_string(value) for key, value in custom.items()}
    values["push_enabled"] = "true" if device["push_enabled"] else "false"
    for ours, theirs in (
        ("app_version", "app_version"),
        ("os_version", "device_os"),
        ("device_model", "device_model"),
        ("locale", "device_locale"),
        ("timezone", "timezone"),
    ):
        if device[ours] is not None:
            values[theirs] = str(device[ours])
    return values


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def add_device(customer_id: str, device: Mapping[str, Any], custom: Mapping[str, Any]) -> Op:
    payload = {
        **_person(customer_id),
        "action": "add_device",
        "device": {
            "token": device["token"],
            "platform": device["platform"],
            "last_used": int(device["last_seen"]),
            "attributes": device_attributes(device, custom),
        },
    }
    return Op(token_lane(device["token"]), payload, wait_lane=person_lane(customer_id))


def delete_device(customer_id: str, token: str) -> Op:
    payload = {**_person(customer_id), "action": "delete_device", "device": {"token": token}}
    return Op(token_lane(token), payload, wait_lane=person_lane(customer_id))


def merge(primary: str, secondary: str) -> Op:
    payload = {
        "type": "person",
        "action": "merge",
        "primary": {"id": primary},
        "secondary": {"id": secondary},
    }
    return Op(person_lane(primary), payload, wait_lane=person_lane(secondary))


def delete_person(customer_id: str) -> Op:
    return Op(person_lane(customer_id), {**_person(customer_id), "action": "delete"})


def suppress_person(customer_id: str, suppressed: bool) -> Op:
    action = "suppress" if suppressed else "unsuppress"
    return Op(person_lane(customer_id), {**_person(customer_id), "action": action})


def event(
    name: str,
    timestamp: float,
    attributes: Mapping[str, Any],
    customer_id: str | None,
    anonymous_id: str | None,
    event_id: str | None = None,
) -> Op | None:
    """A person event, or an anonymous one (v1); None when nobody is known to own it."""
    event_id = event_id or str(ULID())
    if customer_id is not None:
        payload = {
            **_person(customer_id),
            "action": "event",
            "name": name,
            "id": event_id,
            "timestamp": int(timestamp),
            "attributes": dict(attributes),
        }
        return Op(person_lane(customer_id), payload)
    if anonymous_id is not None:
        body = {
            "name": name,
            "anonymous_id": anonymous_id,
            "id": event_id,
            "timestamp": int(timestamp),
            "data": dict(attributes),
        }
        return Op(anonymous_lane(anonymous_id), body, endpoint=V1_ANONYMOUS_EVENT)
    return None


def _delivery_payload(delivery_id: Any, token: Any, metric: Any, timestamp: Any) -> dict[str, Any]:
    return {
        "type": "delivery",
        "action": "event",
        "identifiers": {"id": delivery_id},
        "name": metric,
        "timestamp": timestamp,
        "attributes": {"device_token": token},
    }


def delivery_metric(delivery_id: str, token: str, metric: str, timestamp: float) -> Op:
    return Op(token_lane(token), _delivery_payload(delivery_id, token, metric, int(timestamp)))


# `delivery_metric` for each row of a set of metrics, written by the store in one statement
# (`facts.enqueue_delivery_metrics`): the rows offer delivery_id, token, occurred_at and
# name (the Customer.io metric of their kind, `DELIVERY_METRIC`).
DELIVERY_METRIC_ROWS = RowsOp(
    TOKEN_LANE,
    "token",
    _delivery_payload(
        FromRow("delivery_id"), FromRow("token"), FromRow("name"), FromRow("occurred_at", True)
    ),
)


def person_attributes(customer_id: str, attributes: Mapping[str, Any], timestamp: float) -> Op:
    """An identify that only sets attributes (segment membership flags)."""
    return identify(customer_id, None, None, attributes, timestamp)


def manual_segment(segment_id: str, action: str, customer_ids: list[str]) -> Op:
    """Add to / remove from a Customer.io manual segment (v1 only; v2 has no such operation)."""
    return Op(
        f"segment:{segment_id}",
        {"ids": customer_ids},
        endpoint=f"POST /api/v1/segments/{segment_id}/{action}",
    )


def pipelines_call(call_type: str, call: dict[str, Any]) -> Op:
    """A Pipelines call relay has no model for (screen, page, group, alias…), passed on as is."""
    owner = call.get("userId") or call.get("anonymousId") or call.get("messageId") or "none"
    lane = person_lane(owner) if call.get("userId") else anonymous_lane(str(owner))
    return Op(lane, {**call, "type": call_type}, endpoint=f"{PIPELINES} POST /{call_type}")


def person_view(
    customer_id: str, kind: str, name: str, attributes: Mapping[str, Any], timestamp: float
) -> Op:
    """A screen or page view of a known person (Track v2 ``screen``/``page``)."""
    payload = {
        **_person(customer_id),
        "action": kind,
        "name": name,
        "timestamp": int(timestamp),
        "attributes": dict(attributes),
    }
    return Op(person_lane(customer_id), payload)


def anonymous_event(
    anonymous_id: str | None,
    kind: str,
    name: str,
    attributes: Mapping[str, Any],
    timestamp: float,
    event_id: str | None,
) -> Op:
    """An event, screen or page view (``kind``) of someone not yet identified, or of nobody
    known (Track v1 anonymous event; ``anonymous_id`` is optional there)."""
    body: dict[str, Any] = {
        "name": name,
        "type": kind,
        "id": event_id or str(ULID()),
        "timestamp": int(timestamp),
        "data": dict(attributes),
    }
    if anonymous_id is not None:
        body["anonymous_id"] = anonymous_id
    lane = anonymous_lane(anonymous_id) if anonymous_id else f"anonymous:{body['id']}"
    return Op(lane, body, endpoint=V1_ANONYMOUS_EVENT)
