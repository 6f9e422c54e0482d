"""A psycopg connection that takes the statements written for sqlite3.

Storage jobs are plain functions of a DB-API connection, written once: ``conn.execute(sql,
params)`` with ``?`` (or ``:name``) placeholders, rows read by index or by column name. This
wrapper gives a psycopg connection that shape: placeholders become psycopg's (cached per
statement text), booleans travel as 0/1 (the schema keeps SQLite's integer flags, so both
engines answer the same statements), and rows are `Row`s.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import RowMaker

_POSITIONAL = re.compile(r"\?")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``?`` → ``%s`` and ``:name`` → ``%(name)s``; a literal ``%`` is doubled."""
    sql = sql.replace("%", "%%")
    sql = _POSITIONAL.sub("%s", sql)
    return _NAMED.sub(r"%(\1)s", sql)


class Row(Sequence[Any]):
    """A result row readable by position and by column name, like ``sqlite3.Row``."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __eq__(self, other: object) -> bool:
        return tuple(self._values) == (tuple(other) if isinstance(other, Row | tuple) else other)

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        return f"Row{tuple(self._values)!r}"


def first_line(exc: BaseException) -> str:
    """A psycopg error's first line (its DETAIL and HINT lines are for logs), for messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _rows(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(names, values)


def _adapt(params: Any) -> Any:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return tuple(int(v) if isinstance(v, bool) else v for v in params)


class PgConnection:
    """What storage jobs see of a PostgreSQL connection (see the module docstring)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Any = None) -> psycopg.Cursor[Row]:
        cursor = self.raw.cursor(row_factory=_rows)
        if params is None or len(params) == 0:
            return cursor.execute(sql)  # no parameters: psycopg sends the text as it is
        return cursor.execute(translate(sql), _adapt(params))

    def executemany(self, sql: str, rows: Iterable[Any]) -> psycopg.Cursor[Row]:
        cursor = self.raw.cursor(row_factory=_rows)
        cursor.executemany(translate(sql), [_adapt(row) for row in rows])
        return cursor

    def stream(self, sql: str, params: Any, size: int) -> Generator[Row, None, None]:
        """The rows of one query as the server produces them, ``size`` per network chunk.

        One portal run to its end, unlike a ``DECLARE``d cursor's ``FETCH``es, so the
        server may plan it in parallel; closing the generator early cancels the query."""
        cursor = self.raw.cursor(row_factory=_rows)
        yield from cursor.stream(translate(sql), _adapt(params), size=size)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
