"""Identity writes: identify (stitching anonymous activity) and profile merge."""

from __future__ import annotations

import json
from collections.abc import Mapping

from relay.domain.attribution import (
    attach_anonymous_history,
    attach_device_history,
    ensure_person,
    ensure_profile,
)
from relay.domain.conversions import AttributionRules, attribute_conversions
from relay.domain.devices import device_changes
from relay.errors import NotFound
from relay.forward import ops
from relay.store.connection import Connection
from relay.store.sql.attribution import detach_customer_facts
from relay.store.sql.devices import (
    attach_devices_of_anonymous_id,
    devices_of_anonymous_id,
    unregister_devices_of,
)
from relay.store.sql.outbox import enqueue
from relay.store.sql.profiles import (
    delete_profile,
    forget_customer,
    link_anonymous_id,
    move_customer,
    profile_attributes,
    profile_exists,
    profiles_of,
    set_profile_suppressed,
    update_profile,
)


def identify(
    conn: Connection,
    app_id: str,
    customer_id: str,
    anonymous_id: str | None,
    email: str | None,
    attributes: Mapping[str, object] | None,
    now: float,
    rules: AttributionRules,
) -> None:
    """Create/update the profile; link ``anonymous_id`` and everything under it to the customer.

    Every device under the anonymous id follows, including logged-out ones (this identify came
    after their logout), and so do the facts of the id and of those devices that have no
    profile yet. The link also catches devices that register later (see devices.put_device).
    """
    ensure_profile(conn, app_id, customer_id, now)
    changes = [ops.identify(customer_id, anonymous_id, email, attributes, now)]
    if email is not None or attributes:
        stored = json.loads(profile_attributes(conn, app_id, customer_id))
        merged = {**stored, **(attributes or {})}
        update_profile(conn, app_id, customer_id, email, json.dumps(merged), now)
    if anonymous_id is not None:
        changes += _link_anonymous_id(conn, app_id, anonymous_id, customer_id, now)
    enqueue(conn, app_id, changes, now)
    attribute_conversions(conn, app_id, customer_id, rules, now)


def _link_anonymous_id(
    conn: Connection, app_id: str, anonymous_id: str, customer_id: str, now: float
) -> list[ops.Op]:
    """Link the id, its devices and their unattributed history; returns the device changes."""
    link_anonymous_id(conn, app_id, anonymous_id, customer_id, now)
    # A deleted (unregistered) or replaced token comes back only by registering it again:
    # devices_of_anonymous_id leaves those out.
    before = devices_of_anonymous_id(conn, app_id, anonymous_id)
    attach_devices_of_anonymous_id(conn, app_id, anonymous_id, customer_id)
    after = {row["id"]: row for row in devices_of_anonymous_id(conn, app_id, anonymous_id)}
    attach_anonymous_history(conn, app_id, anonymous_id, customer_id)
    changes: list[ops.Op] = []
    for device in before:
        attach_device_history(conn, app_id, device["id"], customer_id)
        changes += device_changes(device, after[device["id"]])
    return changes


def merge_profiles(
    conn: Connection,
    app_id: str,
    primary: str,
    secondary: str,
    now: float,
    rules: AttributionRules,
) -> None:
    """Everything of ``secondary`` moves to ``primary``; ``secondary`` stops existing."""
    rows = {row["customer_id"]: row for row in profiles_of(conn, app_id, primary, secondary)}
    for customer_id in (primary, secondary):
        if customer_id not in rows:
            raise NotFound(f"profile {customer_id!r} does not exist")
    move_customer(conn, app_id, secondary, primary)
    attributes = {
        **json.loads(rows[secondary]["attributes"]),
        **json.loads(rows[primary]["attributes"]),
    }
    email = rows[secondary]["email"]
    update_profile(conn, app_id, primary, email, json.dumps(attributes), now, keep_email=True)
    delete_profile(conn, app_id, secondary)
    enqueue(conn, app_id, [ops.merge(primary, secondary)], now)
    attribute_conversions(conn, app_id, primary, rules, now)


def merge_known(
    conn: Connection,
    app_id: str,
    primary: str,
    secondary: str,
    now: float,
    rules: AttributionRules,
) -> None:
    """A merge from a Customer.io client, which may name people relay never saw: what relay
    has of ``secondary`` moves, and Customer.io hears the merge whatever relay knew."""
    ensure_person(conn, app_id, primary, now)
    if profile_exists(conn, app_id, secondary):
        merge_profiles(conn, app_id, primary, secondary, now, rules)
    else:
        enqueue(conn, app_id, [ops.merge(primary, secondary)], now)


def delete_person(conn: Connection, app_id: str, customer_id: str, now: float) -> None:
    """The profile goes: its devices become ``unregistered``, its anonymous ids are released,
    its metrics and events stay (in device counts) without a customer."""
    unregister_devices_of(conn, app_id, customer_id)
    detach_customer_facts(conn, app_id, customer_id)
    forget_customer(conn, app_id, customer_id)
    # Customer.io deletes the person's devices with it: no device deletes to send.
    enqueue(conn, app_id, [ops.delete_person(customer_id)], now)


def set_suppressed(
    conn: Connection, app_id: str, customer_id: str, suppressed: bool, now: float
) -> None:
    """Suppressed profiles get no test push by customer and leave segment exports."""
    ensure_profile(conn, app_id, customer_id, now)
    set_profile_suppressed(conn, app_id, customer_id, suppressed, now)
    enqueue(conn, app_id, [ops.suppress_person(customer_id, suppressed)], now)


def require_profile(conn: Connection, app_id: str, customer_id: str) -> None:
    if not profile_exists(conn, app_id, customer_id):
        raise NotFound(f"profile {customer_id!r} does not exist")
