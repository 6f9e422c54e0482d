"""Export on PostgreSQL: the `bench export` dataset copied into PostgreSQL, every built-in segment
streamed by relay on the PostgreSQL engine; time, rows/s and relay's peak RSS.

    TEST_POSTGRES_URL=postgresql://… python -m bench export_pg [--size quick|full]

The SQLite dataset of `bench export` (generated if missing) is copied table by table into a
fresh database ``relay_bench_export`` (``relay migrate`` first; the secondary indexes are
dropped for the copy and built again after it, then ``VACUUM ANALYZE``, as autovacuum would).
relay and PostgreSQL share the machine unpinned. Targets as for SQLite: every segment under
10 s, peak RSS under 200 MB. ``TEST_POSTGRES_URL`` names the server (a superuser connection).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import (
    Relay,
    Report,
    data_dir,
    header,
    mb,
)
from bench.export import SIZES, export_through
from bench.generate import dataset
from relay.segments.definitions import SEGMENTS

DATABASE = "relay_bench_export"
ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://relay_test:relay_test@127.0.0.1:5432/postgres"
)
TABLES = ("api_keys", "profiles", "anonymous_ids", "devices", "metrics", "events")


def _url(admin_url: str) -> str:
    return f"{admin_url.rpartition('/')[0]}/{DATABASE}"


def copy_dataset(db: Path, admin_url: str, workdir: Path) -> dict[str, float]:
    """A fresh PostgreSQL database holding ``db``'s rows; seconds per step."""
    seconds: dict[str, float] = {}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)".encode())
        admin.execute(f"CREATE DATABASE {DATABASE}".encode())
    config = workdir / "migrate.toml"
    config.write_text(f'[storage]\nurl = "{_url(admin_url)}"\n', encoding="utf-8")
    subprocess.run([sys.executable, "-m", "relay", "migrate", "--config", str(config)], check=True)
    source = sqlite3.connect(db)
    with psycopg.connect(_url(admin_url), autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = ANY(%s) AND indexname NOT LIKE '%%pkey'",
            (list(TABLES),),
        ).fetchall()
        for name, _ in indexes:
            with contextlib.suppress(psycopg.Error):  # a UNIQUE constraint's index stays
                conn.execute(f"DROP INDEX {name}".encode())
        for table in TABLES:
            started = time.perf_counter()
            columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
            names = ", ".join(columns)
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY {table} ({names}) FROM STDIN".encode()) as copy,
            ):
                for row in source.execute(f"SELECT {names} FROM {table}"):
                    copy.write_row(row)
            seconds[f"copy {table}"] = time.perf_counter() - started
        started = time.perf_counter()
        for _, definition in indexes:
            with contextlib.suppress(psycopg.errors.DuplicateTable):
                conn.execute(definition.encode())
        for table in ("devices", "metrics", "events"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', "
                f"'{'id' if table == 'devices' else 'seq'}'),"
                f" (SELECT coalesce(max({'id' if table == 'devices' else 'seq'}), 1)"
                f" FROM {table}))".encode()
            )
        seconds["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        # What autovacuum does to a table in service: statistics, and the visibility map that
        # lets the statistics' index-only scans skip the heap.
        conn.execute(b"VACUUM ANALYZE")
        seconds["vacuum analyze"] = time.perf_counter() - started
    source.close()
    return seconds


def _copied(admin_url: str, size: str) -> bool:
    """Whether the database already holds a finished copy of the ``size`` dataset (the
    comment is set once the copy is complete; pg_database is visible from any database)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        comment = admin.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (DATABASE,),
        ).fetchone()
    return comment is not None and comment[0] == f"relay bench {size}"


def run(size: str, admin_url: str = ADMIN_URL, keep: bool = False) -> Report:
    spec = SIZES[size]
    report = Report(
        f"Export on PostgreSQL ({size}: {spec.profiles:,} profiles, {spec.metrics:,} metrics)"
    )
    header(report.name)
    db, meta = dataset(f"export-{size}", spec)
    worst_s = worst_rss = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-export-pg-", dir=data_dir()) as tmp:
        work = Path(tmp)
        if keep and _copied(admin_url, size):
            report.figure("dataset copied into PostgreSQL", "kept from an earlier run", "")
        else:
            steps = copy_dataset(db, admin_url, work)
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f"COMMENT ON DATABASE {DATABASE} IS 'relay bench {size}'".encode())
            report.figure(
                "dataset copied into PostgreSQL",
                f"{sum(steps.values()):.0f} s",
                ", ".join(f"{step} {s:.0f} s" for step, s in steps.items()),
            )
        with Relay(db, work, storage_url=_url(admin_url), cpu=None) as relay:
            for name in SEGMENTS:
                got = export_through(relay, name, meta["as_of"])
                rows, elapsed, rss = got["lines"] - 1, got["elapsed"], got["peak_rss"]
                worst_s, worst_rss = max(worst_s, elapsed), max(worst_rss, rss)
                report.figure(
                    f"{name}: rows, time, rows/s, peak RSS",
                    f"{rows:,} in {elapsed:.2f} s",
                    f"{rows / elapsed:,.0f} rows/s, {mb(rss)}",
                )
    if not keep:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)".encode())
    report.target("every segment under 10 s", worst_s < 10, f"slowest {worst_s:.2f} s")
    report.target(
        "peak RSS under 200 MB", worst_rss < 200 * 1024 * 1024, f"highest {mb(worst_rss)}"
    )
    return report
