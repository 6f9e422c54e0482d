"""Identity writes: identify (stitching anonymous activity) and profile merge."""

from __future__ import annotations

import json
from collections.abc import Mapping

from relay.domain.attribution import (
    FACT_TABLES,
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
from relay.store.sql.outbox import enqueue
from relay.store.sql.records import DEVICE_COLUMNS

_GONE = "'unregistered', 'replaced'"


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
        row = conn.execute(
            "SELECT attributes FROM profiles WHERE app_id = ? AND customer_id = ?",
            (app_id, customer_id),
        ).fetchone()
        merged = {**json.loads(row[0]), **(attributes or {})}
        conn.execute(
            "UPDATE profiles SET email = coalesce(?, email), attributes = ?, updated_at = ?"
            " WHERE app_id = ? AND customer_id = ?",
            (email, json.dumps(merged), now, app_id, customer_id),
        )
    if anonymous_id is not None:
        changes += _link_anonymous_id(conn, app_id, anonymous_id, customer_id, now)
    enqueue(conn, app_id, changes, now)
    attribute_conversions(conn, app_id, customer_id, rules, now)


def _link_anonymous_id(
    conn: Connection, app_id: str, anonymous_id: str, customer_id: str, now: float
) -> list[ops.Op]:
    """Link the id, its devices and their unattributed history; returns the device changes."""
    conn.execute(
        "INSERT INTO anonymous_ids (app_id, anonymous_id, customer_id, identified_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (app_id, anonymous_id)"
        " DO UPDATE SET customer_id = excluded.customer_id, identified_at = excluded.identified_at",
        (app_id, anonymous_id, customer_id, now),
    )
    # A deleted (unregistered) or replaced token comes back only by registering it again.
    under_id = f"app_id = ? AND anonymous_id = ? AND status NOT IN ({_GONE})"
    select = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE {under_id}"
    before = conn.execute(select, (app_id, anonymous_id)).fetchall()
    conn.execute(
        f"UPDATE devices SET customer_id = ?, logged_out = 0 WHERE {under_id}",
        (customer_id, app_id, anonymous_id),
    )
    after = {row["id"]: row for row in conn.execute(select, (app_id, anonymous_id))}
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
    rows = {
        row["customer_id"]: row
        for row in conn.execute(
            "SELECT customer_id, email, attributes FROM profiles"
            " WHERE app_id = ? AND customer_id IN (?, ?)",
            (app_id, primary, secondary),
        )
    }
    for customer_id in (primary, secondary):
        if customer_id not in rows:
            raise NotFound(f"profile {customer_id!r} does not exist")
    for table in ("devices", "anonymous_ids", *FACT_TABLES):
        conn.execute(
            f"UPDATE {table} SET customer_id = ? WHERE app_id = ? AND customer_id = ?",
            (primary, app_id, secondary),
        )
    attributes = {
        **json.loads(rows[secondary]["attributes"]),
        **json.loads(rows[primary]["attributes"]),
    }
    conn.execute(
        "UPDATE profiles SET email = coalesce(email, ?), attributes = ?, updated_at = ?"
        " WHERE app_id = ? AND customer_id = ?",
        (rows[secondary]["email"], json.dumps(attributes), now, app_id, primary),
    )
    conn.execute("DELETE FROM profiles WHERE app_id = ? AND customer_id = ?", (app_id, secondary))
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
    if _profile_exists(conn, app_id, secondary):
        merge_profiles(conn, app_id, primary, secondary, now, rules)
    else:
        enqueue(conn, app_id, [ops.merge(primary, secondary)], now)


def delete_person(conn: Connection, app_id: str, customer_id: str, now: float) -> None:
    """The profile goes: its devices become ``unregistered``, its anonymous ids are released,
    its metrics and events stay (in device counts) without a customer."""
    conn.execute(
        "UPDATE devices SET status = 'unregistered', customer_id = NULL, logged_out = 0"
        " WHERE app_id = ? AND customer_id = ?",
        (app_id, customer_id),
    )
    for table in FACT_TABLES:
        conn.execute(
            f"UPDATE {table} SET customer_id = NULL WHERE app_id = ? AND customer_id = ?",
            (app_id, customer_id),
        )
    for table in ("anonymous_ids", "segment_members", "profiles"):
        conn.execute(
            f"DELETE FROM {table} WHERE app_id = ? AND customer_id = ?", (app_id, customer_id)
        )
    # Customer.io deletes the person's devices with it: no device deletes to send.
    enqueue(conn, app_id, [ops.delete_person(customer_id)], now)


def set_suppressed(
    conn: Connection, app_id: str, customer_id: str, suppressed: bool, now: float
) -> None:
    """Suppressed profiles get no test push by customer and leave segment exports."""
    ensure_profile(conn, app_id, customer_id, now)
    conn.execute(
        "UPDATE profiles SET suppressed = ?, updated_at = ? WHERE app_id = ? AND customer_id = ?",
        (int(suppressed), now, app_id, customer_id),
    )
    enqueue(conn, app_id, [ops.suppress_person(customer_id, suppressed)], now)


def require_profile(conn: Connection, app_id: str, customer_id: str) -> None:
    if not _profile_exists(conn, app_id, customer_id):
        raise NotFound(f"profile {customer_id!r} does not exist")


def _profile_exists(conn: Connection, app_id: str, customer_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM profiles WHERE app_id = ? AND customer_id = ?", (app_id, customer_id)
    ).fetchone()
    return row is not None
