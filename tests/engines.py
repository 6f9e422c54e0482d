"""The storage engine the suite runs against: ``pytest --engine sqlite|postgresql``.

Every test that stores anything gets a database of its own: a file in its ``tmp_path`` on
SQLite; on PostgreSQL a database copied from a migrated template (a copy takes ~0.2 s, a
migration several), dropped when the session ends. The PostgreSQL server is named by
``TEST_POSTGRES_URL`` (a superuser connection to any database); `.ci/run` starts the machine's.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg

from relay.store.postgres.connection import PgConnection
from relay.store.postgres.migrate import apply_migrations

ENGINES = ("sqlite", "postgresql")
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Databases are named for the test session's process, so sessions running side by side never
# drop each other's; what a session that died left behind is dropped by the next one.
PREFIX = "relay_test_"
SESSION = f"{PREFIX}{os.getpid()}_"
TEMPLATE = f"{SESSION}template"

engine = "sqlite"
_numbers = itertools.count()
_databases: dict[str, str] = {}


def _url_of(database: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def prepare(chosen: str) -> None:
    """Select the engine; on PostgreSQL drop what an earlier run left and build the template."""
    global engine
    engine = chosen
    if engine != "postgresql":
        return
    try:
        admin = _admin()
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"--engine postgresql: cannot connect to {ADMIN_URL} ({exc}). Start PostgreSQL"
            " (`.ci/run` does) or set TEST_POSTGRES_URL."
        ) from None
    with admin:
        _drop(admin, _left_by_dead_sessions)
        admin.execute(f'CREATE DATABASE "{TEMPLATE}"'.encode())
    with psycopg.connect(_url_of(TEMPLATE), autocommit=True) as conn:
        apply_migrations(PgConnection(conn))


def _left_by_dead_sessions(name: str) -> bool:
    pid = name.removeprefix(PREFIX).split("_", 1)[0]
    return pid.isdigit() and not Path(f"/proc/{pid}").exists()


def _of_this_session(name: str) -> bool:
    return name.startswith(SESSION)


def _drop(admin: psycopg.Connection[tuple[object, ...]], which: Callable[[str], bool]) -> None:
    names = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)
    ).fetchall()
    for (name,) in names:
        if which(name):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def finish() -> None:
    if engine == "postgresql":
        with _admin() as admin:
            _drop(admin, _of_this_session)


def database_url(path: Path) -> str:
    """The database a test would keep in the SQLite file ``path``: that file, or on
    PostgreSQL a new, empty, migrated database (the same one for the same path)."""
    if engine == "sqlite":
        return f"sqlite:///{path}"
    if str(path) not in _databases:
        name = f"{SESSION}{next(_numbers)}"
        with _admin() as admin:
            admin.execute(
                f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY'.encode()
            )
        _databases[str(path)] = _url_of(name)
    return _databases[str(path)]


def query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement on the database at ``url`` from outside relay (committed at once);
    its rows. ``?`` placeholders on both engines."""
    if url.startswith("sqlite:///"):
        database = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(database)) as conn, conn:
            return [tuple(row) for row in conn.execute(sql, params).fetchall()]
    with psycopg.connect(url, autocommit=True) as raw:
        cursor = PgConnection(raw).execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
