"""Device writes: register/update, refresh, unregister."""

from __future__ import annotations

import json
from typing import TypeGuard

from msgspec import UNSET

from relay.domain.attribution import (
    attach_device_history,
    claim_waiting_facts,
    ensure_person,
    linked_customer,
)
from relay.domain.conversions import AttributionRules, attribute_conversions
from relay.errors import ValidationFailed
from relay.forward import ops
from relay.models.devices import DevicePut
from relay.store.connection import Connection, Row
from relay.store.sql.attribution import move_device_facts
from relay.store.sql.devices import (
    copy_device,
    insert_device,
    mark_invalid,
    mark_replaced,
    mark_unregistered,
    update_device,
    update_device_at_token,
)
from relay.store.sql.outbox import enqueue
from relay.store.sql.records import fetch_device, registered_device

# DevicePut fields stored as they come (omitted = keep the stored value).
_PLAIN_FIELDS = (
    "platform",
    "anonymous_id",
    "environment",
    "app_version",
    "os_version",
    "device_model",
    "locale",
    "timezone",
)


def put_device(
    conn: Connection,
    app_id: str,
    token: str,
    body: DevicePut,
    now: float,
    rules: AttributionRules,
) -> tuple[bool, Row]:
    """Register or update ``token``; returns (created, device row)."""
    existing = fetch_device(conn, app_id, token)
    values = {name: getattr(body, name) for name in _PLAIN_FIELDS}
    values = {name: value for name, value in values.items() if value is not UNSET}
    if body.push_enabled is not UNSET:
        values["push_enabled"] = int(body.push_enabled)
    if body.attributes is not UNSET:
        stored = json.loads(existing["attributes"]) if existing else {}
        values["attributes"] = json.dumps({**stored, **body.attributes})

    customer_id = existing["customer_id"] if existing else None
    logged_out = bool(existing["logged_out"]) if existing else False
    if body.customer_id is not UNSET:
        customer_id = body.customer_id
        # customer_id: null logs the device out; on a brand-new device it just means anonymous.
        logged_out = body.customer_id is None and existing is not None
    if customer_id is None and not logged_out:
        anonymous_id = values.get("anonymous_id", existing["anonymous_id"] if existing else None)
        customer_id = linked_customer(conn, app_id, anonymous_id)
    values |= {
        "customer_id": customer_id,
        "logged_out": int(logged_out),
        "status": "active",
        "invalid_reason": None,
        "replaced_by": None,
        "last_seen": now,
        "token_updated_at": now,
    }

    if existing is None:
        values |= {"app_id": app_id, "token": token, "first_seen": now}
        insert_device(conn, values)
    else:
        update_device(conn, existing["id"], values)
    device = fetch_device(conn, app_id, token)
    assert device is not None
    _settle(conn, device, now, rules)
    enqueue(conn, app_id, device_changes(existing, device), now)
    return existing is None, device


def refresh_device(
    conn: Connection,
    app_id: str,
    old_token: str,
    new_token: str,
    now: float,
    rules: AttributionRules,
) -> Row:
    """Move the device (profile and history) to ``new_token``; the old token is ``replaced``."""
    old = registered_device(conn, app_id, old_token)
    if new_token == old_token:
        raise ValidationFailed.at("new_token", "must differ from the current token")
    before = fetch_device(conn, app_id, new_token)
    identity = {
        "customer_id": old["customer_id"],
        "anonymous_id": old["anonymous_id"],
        "logged_out": old["logged_out"],
        "status": "active",
        "invalid_reason": None,
        "replaced_by": None,
        "last_seen": now,
        "token_updated_at": now,
    }
    if before is None:
        copy_device(conn, old["id"], new_token, identity)
    else:
        update_device_at_token(conn, app_id, new_token, identity)
    new = fetch_device(conn, app_id, new_token)
    assert new is not None
    move_device_facts(conn, old["id"], new["id"])
    mark_replaced(conn, old["id"], new_token, now)
    _settle(conn, new, now, rules)
    changes = device_changes(old, None) + device_changes(before, new)
    enqueue(conn, app_id, changes, now)
    return new


def unregister_device(conn: Connection, app_id: str, token: str, now: float) -> None:
    before = registered_device(conn, app_id, token)
    mark_unregistered(conn, before["id"])
    if before["status"] != "unregistered":
        enqueue(conn, app_id, device_changes(before, None), now)


def device_changes(before: Row | None, after: Row | None) -> list[ops.Op]:
    """What Customer.io must hear when a token moves from ``before`` to ``after``.

    ``after`` None means the token left its person (unregistered, replaced). A device leaves
    its old person before it joins a new one; only live devices with a person are added.
    """
    old = before["customer_id"] if _known_to_customerio(before) else None
    new = after["customer_id"] if _known_to_customerio(after) else None
    changes = []
    if old is not None and old != new:
        changes.append(ops.delete_device(old, before["token"]))  # type: ignore[index]
    if new is not None:
        changes.append(ops.add_device(new, after, json.loads(after["attributes"])))  # type: ignore[arg-type,index]
    return changes


def _known_to_customerio(device: Row | None) -> TypeGuard[Row]:
    # Stale is relay's own judgement (no sends from relay); Customer.io still has the device.
    return device is not None and device["status"] in ("active", "stale")


def _settle(conn: Connection, device: Row, now: float, rules: AttributionRules) -> None:
    """After a device write: its profile exists, waiting facts join, unattached history attaches."""
    claim_waiting_facts(conn, device)
    if device["customer_id"] is not None:
        ensure_person(conn, device["app_id"], device["customer_id"], now)
        attach_device_history(conn, device["app_id"], device["id"], device["customer_id"])
        attribute_conversions(conn, device["app_id"], device["customer_id"], rules, now)


def invalidate_device(
    conn: Connection,
    app_id: str,
    token: str,
    reason: str,
    unregistered_at: float | None,
    now: float,
) -> bool:
    """Mark a dead token ``invalid`` and tell Customer.io; False if it was re-registered since.

    ``unregistered_at`` is APNs's 410 timestamp: a PUT or refresh after it wins (the app
    re-registered the token after Apple last saw it invalid).
    """
    before = fetch_device(conn, app_id, token)
    if before is None:
        return False
    if unregistered_at is not None and before["token_updated_at"] > unregistered_at:
        return False
    mark_invalid(conn, before["id"], reason)
    enqueue(conn, app_id, device_changes(before, None), now)
    return True
