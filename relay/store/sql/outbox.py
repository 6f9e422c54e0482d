"""The outbox: filled inside fact transactions; read, settled and replayed by the forwarder."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from relay.models.outbox import FromRow, Op, OutboxRow, OutboxStatus, RowsOp, Settlement
from relay.store.connection import Connection
from relay.store.dialect import Dialect, dialect_of

_json = msgspec.json.Encoder()


def _encode(payload: object) -> str:
    return _json.encode(payload).decode()


_INSERT = (
    "INSERT INTO outbox (app_id, lane, wait_lane, endpoint, payload, next_attempt_at, created_at)"
)


def enqueue(conn: Connection, app_id: str, ops: Iterable[Op], now: float) -> None:
    conn.executemany(
        f"{_INSERT} VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(app_id, op.lane, op.wait_lane, op.endpoint, _encode(op.payload), now, now) for op in ops],
    )


def enqueue_rows(
    conn: Connection, op: RowsOp, rows: str, params: Sequence[object], now: float
) -> None:
    """``op`` for each row of the query ``rows`` (its parameters ``params``), in ``seq`` order,
    in one statement: ``rows`` yields ``seq``, ``app_id``, the lane column and every column
    the payload names."""
    payload, payload_params = _payload_sql(op.payload, dialect_of(conn))
    conn.execute(
        f"{_INSERT} SELECT r.app_id, ? || r.{_column(op.lane_column)}, NULL, ?, {payload},"
        f" ?, ? FROM ({rows}) AS r ORDER BY r.seq",
        (op.lane_prefix, op.endpoint, *payload_params, now, now, *params),
    )


def _column(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"not a column name: {name!r}")
    return name


def _payload_sql(template: dict[str, Any], dialect: Dialect) -> tuple[str, list[object]]:
    """SQL that writes ``template`` as compact JSON text, as `_encode` writes the same dict
    with its `FromRow` leaves filled in: the fixed text between two row values travels as
    one parameter, joined to them with ``||``."""
    parts: list[str] = []
    params: list[object] = []
    fixed: list[str] = []

    def flush() -> None:
        if fixed:
            parts.append("?")
            params.append("".join(fixed))
            fixed.clear()

    def write(value: Any) -> None:
        if isinstance(value, FromRow):
            flush()
            column = f"r.{_column(value.name)}"
            text = dialect.whole_seconds_text if value.whole else dialect.json_string
            parts.append(text(column))
        elif isinstance(value, dict):
            fixed.append("{")
            for index, (key, item) in enumerate(value.items()):
                fixed.append(("," if index else "") + _encode(key) + ":")
                write(item)
            fixed.append("}")
        else:
            fixed.append(_encode(value))

    write(template)
    flush()
    return " || ".join(parts), params


def pending_window(conn: Connection, limit: int) -> list[OutboxRow]:
    """The oldest ``limit`` pending rows, in order: every row that could block a later one."""
    return [
        OutboxRow(*row)
        for row in conn.execute(
            "SELECT seq, lane, wait_lane, endpoint, payload, attempts, next_attempt_at,"
            " first_attempt_at FROM outbox WHERE status = 'pending' ORDER BY seq LIMIT ?",
            (limit,),
        )
    ]


def settle(conn: Connection, settlement: Settlement) -> None:
    """Record one send's outcome: delivered rows go, retried rows wait, dead rows stay dead."""
    conn.execute(
        f"DELETE FROM outbox WHERE seq IN ({dialect_of(conn).values_of()})",
        (_encode(settlement.delivered),),
    )
    conn.executemany(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
        " first_attempt_at = coalesce(first_attempt_at, ?) WHERE seq = ?",
        [(r.next_attempt_at, r.error, settlement.attempted_at, r.seq) for r in settlement.retry],
    )
    conn.executemany(
        "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ?,"
        " first_attempt_at = coalesce(first_attempt_at, ?) WHERE seq = ?",
        [(error, settlement.attempted_at, seq) for seq, error in settlement.dead],
    )


def status(conn: Connection, app_id: str | None, now: float) -> OutboxStatus:
    scope, args = ("app_id = ? AND ", (app_id,)) if app_id else ("", ())
    counts = dict(
        conn.execute(
            f"SELECT status, count(*) FROM outbox WHERE {scope}1 = 1 GROUP BY status", args
        ).fetchall()
    )
    oldest = conn.execute(
        f"SELECT min(created_at) FROM outbox WHERE {scope}status = 'pending'", args
    ).fetchone()[0]
    last_error = conn.execute(
        f"SELECT last_error FROM outbox WHERE {scope}last_error IS NOT NULL"
        " ORDER BY coalesce(first_attempt_at, 0) DESC, seq DESC LIMIT 1",
        args,
    ).fetchone()
    return OutboxStatus(
        pending=counts.get("pending", 0),
        dead=counts.get("dead", 0),
        oldest_pending_age_s=round(now - oldest, 3) if oldest is not None else None,
        last_error=last_error[0] if last_error else None,
    )


def replay(conn: Connection, app_id: str | None, now: float) -> int:
    """Dead rows back to pending, as if new (a fresh give-up horizon)."""
    scope, args = ("app_id = ? AND ", (app_id,)) if app_id else ("", ())
    cursor = conn.execute(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
        f" first_attempt_at = NULL WHERE {scope}status = 'dead'",
        (now, *args),
    )
    return cursor.rowcount


def is_test_delivery(conn: Connection, delivery_id: str) -> bool:
    """relay's own QA deliveries stay local: Customer.io does not know their ids."""
    found = conn.execute(
        "SELECT 1 FROM test_deliveries WHERE delivery_id = ?", (delivery_id,)
    ).fetchone()
    return found is not None


def hold_lease(conn: Connection, holder: str, now: float, expires_at: float) -> bool:
    """Take or renew the forwarder lease for ``holder``; False while another holds it."""
    held = conn.execute(
        "INSERT INTO forwarder_lease (name, holder, expires_at) VALUES ('outbox', ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE forwarder_lease.holder = excluded.holder OR forwarder_lease.expires_at <= ?"
        " RETURNING holder",
        (holder, expires_at, now),
    ).fetchone()
    return held is not None


def release_lease(conn: Connection, holder: str) -> None:
    conn.execute(
        "UPDATE forwarder_lease SET expires_at = 0 WHERE name = 'outbox' AND holder = ?",
        (holder,),
    )
