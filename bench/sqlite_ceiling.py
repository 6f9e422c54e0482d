"""The ingest ceiling: the rows relay stores, inserted by a bare sqlite3 script.

Same database (a copy of the same dataset), same pragmas as relay's writer (WAL, synchronous
FULL), the same ``INSERT OR IGNORE`` into ``metrics`` with device and profile already resolved
(outside the clock), in transactions of ``--tx`` rows. ``--outbox`` also inserts the outbox
row relay writes for each metric (its JSON payload built outside the clock too);
``--all-writes`` does every write relay does for these metrics: the metric, its outbox row,
and per 100-metric request one ``last_seen`` update per distinct device (in ``device_seen``,
where relay moves it since migration 0011). The copy gets
relay's migrations first, so its schema (tables and indexes) is relay's.

``--dedup-only`` is issue 18's ceiling: the same rows into a table of the same shape whose
only index is the unique id (``app_id, client_id``), not relay's ``metrics`` with its query
indexes.

``--journal-fold`` measures the design issue 18 proposes instead of inserting: each
transaction appends the rows to a journal whose only index is the unique id (after probing
``metrics`` for ids already folded), and a fold step then moves the journal into ``metrics``
and writes the outbox rows, 10,000 rows a transaction, and empties the journal. It prints the
receipt alone (``receipt_rows_per_s``) and receipt plus fold (``rows_per_s``): on one core
the fold is work the receipt only postponed.

``--deferred-indexes`` measures a smaller step: the metric and outbox rows go into relay's
tables as they are, but the two indexes whose keys land on random pages
(``metrics_by_customer``, ``metrics_by_device``) become partial (``WHERE indexed = 1``) and
each row arrives with ``indexed = 0``; a later step sets ``indexed = 1`` for 10,000 rows a
transaction, which adds their entries. Printed like ``--journal-fold``.
The last stdout line is the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from bench.workload import APP, metric_item
from relay.store.sqlite.migrate import apply_migrations

METRIC_SQL = (
    "INSERT OR IGNORE INTO metrics (app_id, client_id, metric, token, device_id, customer_id,"
    " anonymous_id, delivery_id, occurred_at, received_at, action, deep_link, reason, source)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
OUTBOX_SQL = (
    "INSERT INTO outbox (app_id, lane, wait_lane, endpoint, payload, next_attempt_at,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
COLUMNS = (
    "app_id, client_id, metric, token, device_id, customer_id, anonymous_id, delivery_id,"
    " occurred_at, received_at, action, deep_link, reason, source"
)
SHAPE_ONLY_SQL = """
CREATE TABLE {name} (seq INTEGER PRIMARY KEY, app_id TEXT NOT NULL, client_id TEXT NOT NULL,
    metric TEXT NOT NULL, token TEXT NOT NULL, device_id INTEGER, customer_id TEXT,
    anonymous_id TEXT, delivery_id TEXT, occurred_at REAL NOT NULL, received_at REAL NOT NULL,
    action TEXT, deep_link TEXT, reason TEXT, source TEXT);
CREATE UNIQUE INDEX {name}_dedup ON {name} (app_id, client_id);
"""
JOURNAL_SQL = (
    f"INSERT OR IGNORE INTO journal ({COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
    " WHERE NOT EXISTS (SELECT 1 FROM metrics WHERE app_id = ?1 AND client_id = ?2)"
)
FOLD_SQL = (
    f"INSERT OR IGNORE INTO metrics ({COLUMNS}) SELECT {COLUMNS} FROM journal"
    " WHERE seq <= ? ORDER BY seq"
)
FOLD_CHUNK = 10_000
DEFERRED_INDEXES_SQL = """
ALTER TABLE metrics ADD COLUMN indexed INTEGER NOT NULL DEFAULT 1;
DROP INDEX metrics_by_customer;
DROP INDEX metrics_by_device;
CREATE INDEX metrics_by_customer ON metrics (app_id, customer_id, metric, occurred_at)
    WHERE indexed = 1;
CREATE INDEX metrics_by_device ON metrics (device_id, occurred_at) WHERE indexed = 1;
CREATE INDEX metrics_unindexed ON metrics (seq) WHERE indexed = 0;
"""
TOUCH_SQL = (
    "INSERT INTO device_seen (device_id, last_seen) VALUES (?, ?) ON CONFLICT (device_id)"
    " DO UPDATE SET last_seen = excluded.last_seen WHERE last_seen < excluded.last_seen"
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlite_ceiling")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", default="run")
    parser.add_argument("--timestamp", type=float, required=True)
    parser.add_argument("--tx", type=int, default=10_000)
    parser.add_argument("--outbox", action="store_true")
    parser.add_argument("--all-writes", action="store_true")
    parser.add_argument("--dedup-only", action="store_true")
    parser.add_argument("--journal-fold", action="store_true")
    parser.add_argument("--deferred-indexes", action="store_true")
    args = parser.parse_args()

    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    apply_migrations(conn)
    tokens = args.tokens.read_text().split()
    owners = {
        token: (device_id, customer_id, anonymous_id)
        for device_id, token, customer_id, anonymous_id in conn.execute(
            "SELECT id, token, customer_id, anonymous_id FROM devices WHERE app_id = ?", (APP,)
        )
    }
    now = time.time()
    metrics, outbox = [], []
    for i in range(args.count):
        m = metric_item(args.prefix, i, tokens[i % len(tokens)], args.timestamp)
        device_id, customer_id, anonymous_id = owners.get(m["token"], (None, None, None))
        metrics.append(
            (
                APP,
                m["id"],
                m["metric"],
                m["token"],
                device_id,
                customer_id,
                anonymous_id,
                m["delivery_id"],
                m["timestamp"],
                now,
                None,
                None,
                None,
                m["source"],
            )
        )
        payload = {
            "type": "delivery",
            "action": "event",
            "identifiers": {"id": m["delivery_id"]},
            "name": m["metric"],
            "timestamp": int(m["timestamp"]),
            "attributes": {"device_token": m["token"]},
        }
        outbox.append((APP, f"token:{m['token']}", None, "batch", json.dumps(payload), now, now))
    touches = [
        [(owners[t][0], now) for t in {row[3] for row in metrics[s : s + 100]} if t in owners]
        for s in range(0, args.count, 100)
    ]

    if args.journal_fold:
        print(json.dumps(_journal_fold(conn, args.tx, metrics, outbox)))
        return
    if args.deferred_indexes:
        print(json.dumps(_deferred_indexes(conn, args.tx, metrics, outbox)))
        return
    insert_sql = METRIC_SQL
    if args.dedup_only:
        conn.executescript(SHAPE_ONLY_SQL.format(name="metric_rows"))
        insert_sql = METRIC_SQL.replace("INTO metrics", "INTO metric_rows")
    started = time.perf_counter()
    for start in range(0, args.count, args.tx):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert_sql, metrics[start : start + args.tx])
        if args.outbox or args.all_writes:
            conn.executemany(OUTBOX_SQL, outbox[start : start + args.tx])
        if args.all_writes:
            for touch in touches[start // 100 : (start + args.tx) // 100]:
                conn.executemany(TOUCH_SQL, touch)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    print(json.dumps({"rows": args.count, "elapsed": elapsed, "rows_per_s": args.count / elapsed}))


def _in_transactions(
    conn: sqlite3.Connection, tx: int, statements: list[tuple[str, list[tuple]]]
) -> None:
    """Each statement's rows, ``tx`` of each per transaction, in order."""
    for start in range(0, len(statements[0][1]), tx):
        conn.execute("BEGIN IMMEDIATE")
        for sql, rows in statements:
            conn.executemany(sql, rows[start : start + tx])
        conn.execute("COMMIT")


def _two_steps(
    conn: sqlite3.Connection, rows: int, receive: Callable[[], None], complete: Callable[[], None]
) -> dict[str, float]:
    """The rates of ``receive`` alone and of ``receive`` then ``complete``."""
    started = time.perf_counter()
    receive()
    received = time.perf_counter()
    complete()
    done = time.perf_counter()
    conn.close()
    return {
        "rows": rows,
        "elapsed": done - started,
        "receipt_rows_per_s": rows / (received - started),
        "rows_per_s": rows / (done - started),
    }


def _journal_fold(
    conn: sqlite3.Connection, tx: int, metrics: list[tuple], outbox: list[tuple]
) -> dict[str, float]:
    conn.executescript(SHAPE_ONLY_SQL.format(name="journal"))

    def fold() -> None:
        for start in range(0, len(metrics), FOLD_CHUNK):
            conn.execute("BEGIN IMMEDIATE")
            (last,) = conn.execute(
                "SELECT max(seq) FROM (SELECT seq FROM journal ORDER BY seq LIMIT ?)",
                (FOLD_CHUNK,),
            ).fetchone()
            conn.execute(FOLD_SQL, (last,))
            conn.executemany(OUTBOX_SQL, outbox[start : start + FOLD_CHUNK])
            conn.execute("DELETE FROM journal WHERE seq <= ?", (last,))
            conn.execute("COMMIT")

    return _two_steps(
        conn, len(metrics), lambda: _in_transactions(conn, tx, [(JOURNAL_SQL, metrics)]), fold
    )


def _deferred_indexes(
    conn: sqlite3.Connection, tx: int, metrics: list[tuple], outbox: list[tuple]
) -> dict[str, float]:
    conn.executescript(DEFERRED_INDEXES_SQL)
    unindexed_sql = METRIC_SQL.replace("source)", "source, indexed)").replace("?, ?)", "?, ?, 0)")

    def index() -> None:
        while True:
            conn.execute("BEGIN IMMEDIATE")
            changed = conn.execute(
                "UPDATE metrics SET indexed = 1 WHERE seq IN"
                " (SELECT seq FROM metrics WHERE indexed = 0 ORDER BY seq LIMIT ?)",
                (FOLD_CHUNK,),
            ).rowcount
            conn.execute("COMMIT")
            if changed < FOLD_CHUNK:
                break

    def receive() -> None:
        _in_transactions(conn, tx, [(unindexed_sql, metrics), (OUTBOX_SQL, outbox)])

    return _two_steps(conn, len(metrics), receive, index)


if __name__ == "__main__":
    main()
