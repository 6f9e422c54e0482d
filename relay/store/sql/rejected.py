"""The rejected-items log: what a Pipelines batch answered 200 for but relay refused to store
as data, kept (tokens masked) so that its 200 still means committed somewhere."""

from __future__ import annotations

import json
from typing import Any

from relay.models.rejected import RejectedItem
from relay.redact import mask_tokens
from relay.store.connection import Connection
from relay.timeutil import format_timestamp


def record(
    conn: Connection,
    app_id: str,
    at: float,
    where: tuple[str, str],
    why: tuple[str, str],
    item: dict[str, Any],
) -> None:
    """Keep a refused item: ``where`` = (surface, path), ``why`` = (reason, message)."""
    (surface, path), (reason, message) = where, why
    conn.execute(
        "INSERT INTO rejected_items (app_id, at, surface, path, reason, message, item)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (app_id, at, surface, path, reason, message, json.dumps(mask_tokens(item))),
    )


def newest(conn: Connection, app_id: str, limit: int) -> list[RejectedItem]:
    rows = conn.execute(
        "SELECT at, surface, path, reason, message, item FROM rejected_items"
        " WHERE app_id = ? ORDER BY id DESC LIMIT ?",
        (app_id, limit),
    )
    return [
        RejectedItem(
            at=format_timestamp(at) or "",
            surface=surface,
            path=path,
            reason=reason,
            message=message,
            item=json.loads(item),
        )
        for at, surface, path, reason, message, item in rows
    ]
