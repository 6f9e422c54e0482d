"""Statements on devices (one row per token)."""

from __future__ import annotations

from collections.abc import Mapping

from relay.store.connection import Connection, Row
from relay.store.sql.records import DEVICE_COLUMNS

# Tokens an identify no longer reaches: deleted (unregistered) or replaced ones come back
# only by registering them again.
_GONE = "'unregistered', 'replaced'"
_UNDER_ANONYMOUS_ID = f"app_id = ? AND anonymous_id = ? AND status NOT IN ({_GONE})"


def insert_device(conn: Connection, values: Mapping[str, object]) -> None:
    """A new device row with ``values`` (column name → value)."""
    columns = ", ".join(values)
    placeholders = ", ".join("?" for _ in values)
    conn.execute(f"INSERT INTO devices ({columns}) VALUES ({placeholders})", tuple(values.values()))


def update_device(conn: Connection, device_id: int, values: Mapping[str, object]) -> None:
    """Set ``values`` (column name → value) on the device ``device_id``."""
    assignments = ", ".join(f"{name} = ?" for name in values)
    conn.execute(f"UPDATE devices SET {assignments} WHERE id = ?", (*values.values(), device_id))


def update_device_at_token(
    conn: Connection, app_id: str, token: str, values: Mapping[str, object]
) -> None:
    """Set ``values`` (column name → value) on the device of ``token``."""
    assignments = ", ".join(f"{name} = ?" for name in values)
    conn.execute(
        f"UPDATE devices SET {assignments} WHERE app_id = ? AND token = ?",
        (*values.values(), app_id, token),
    )


def copy_device(conn: Connection, source_id: int, token: str, values: Mapping[str, object]) -> None:
    """A new device for ``token`` with the details of device ``source_id`` (platform, settings,
    attributes, first_seen) and ``values`` (column name → value) for the rest."""
    copied = (
        "platform, push_enabled, environment, app_version, os_version, device_model,"
        " locale, timezone, attributes, first_seen"
    )
    conn.execute(
        f"INSERT INTO devices (app_id, token, {copied}, {', '.join(values)})"
        f" SELECT app_id, ?, {copied}, {', '.join('?' for _ in values)}"
        " FROM devices WHERE id = ?",
        (token, *values.values(), source_id),
    )


def mark_replaced(conn: Connection, device_id: int, replaced_by: str, now: float) -> None:
    conn.execute(
        "UPDATE devices SET status = 'replaced', replaced_by = ?, last_seen = ? WHERE id = ?",
        (replaced_by, now, device_id),
    )


def mark_unregistered(conn: Connection, device_id: int) -> None:
    conn.execute("UPDATE devices SET status = 'unregistered' WHERE id = ?", (device_id,))


def mark_invalid(conn: Connection, device_id: int, reason: str) -> None:
    conn.execute(
        "UPDATE devices SET status = 'invalid', invalid_reason = ? WHERE id = ?",
        (reason, device_id),
    )


def devices_of_anonymous_id(conn: Connection, app_id: str, anonymous_id: str) -> list[Row]:
    """The devices under ``anonymous_id``, but for unregistered and replaced ones."""
    rows: list[Row] = conn.execute(
        f"SELECT {DEVICE_COLUMNS} FROM devices WHERE {_UNDER_ANONYMOUS_ID}",
        (app_id, anonymous_id),
    ).fetchall()
    return rows


def attach_devices_of_anonymous_id(
    conn: Connection, app_id: str, anonymous_id: str, customer_id: str
) -> None:
    """The devices of `devices_of_anonymous_id` join ``customer_id``, logged in."""
    conn.execute(
        f"UPDATE devices SET customer_id = ?, logged_out = 0 WHERE {_UNDER_ANONYMOUS_ID}",
        (customer_id, app_id, anonymous_id),
    )


def unregister_devices_of(conn: Connection, app_id: str, customer_id: str) -> None:
    """Every device of ``customer_id`` becomes ``unregistered`` and leaves the customer."""
    conn.execute(
        "UPDATE devices SET status = 'unregistered', customer_id = NULL, logged_out = 0"
        " WHERE app_id = ? AND customer_id = ?",
        (app_id, customer_id),
    )
