"""What a storage job sees of its connection, whichever the engine.

``sqlite3.Connection`` has this shape already; `relay.store.postgres.connection.PgConnection`
gives a psycopg connection the same one. Rows read by index and by column name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...


# A result row: ``sqlite3.Row`` or `relay.store.postgres.connection.Row`.
Row = Any
