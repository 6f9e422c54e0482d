"""The few SQL fragments that differ between SQLite and PostgreSQL, one object per engine.

Statements are written once, with ``?`` placeholders, in the SQL both engines share (``INSERT
… ON CONFLICT``, ``RETURNING``, ``coalesce``); where they part ways a statement asks the
connection's dialect for the fragment. A job gets its dialect with `dialect_of(conn)`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str

    def values_of(self, sql_type: str = "bigint", param: str = "?") -> str:
        """A subquery over the elements of one JSON-array parameter (a list passed as one
        parameter, whatever its length, so the statement text stays cacheable)."""
        if self.name == "sqlite":
            return f"SELECT value FROM json_each({param})"
        return (
            f"SELECT CAST(value AS {sql_type})"
            f" FROM jsonb_array_elements_text(CAST({param} AS jsonb)) AS value"
        )

    def json_text(self, column: str, *path: str) -> str:
        """The text at ``path`` inside the JSON text in ``column`` (NULL when absent)."""
        if self.name == "sqlite":
            return f"json_extract({column}, '$.{'.'.join(path)}')"
        return f"(CAST({column} AS jsonb) #>> '{{{','.join(path)}}}')"

    def json_number(self, column: str, *path: str) -> str:
        if self.name == "sqlite":
            return self.json_text(column, *path)
        return f"CAST({self.json_text(column, *path)} AS double precision)"

    def greatest(self, *values: str) -> str:
        """The largest non-NULL value (NULL when all are NULL)."""
        if self.name == "sqlite":
            # SQLite's scalar max() is NULL when any argument is: fold the NULLs away first.
            return f"nullif(max({', '.join(f'coalesce({v}, -1e308)' for v in values)}), -1e308)"
        return f"greatest({', '.join(values)})"

    def json_string(self, expr: str) -> str:
        """``expr`` as the text of a JSON string (quoted and escaped)."""
        if self.name == "sqlite":
            return f"json_quote({expr})"
        return f"CAST(to_json(CAST({expr} AS text)) AS text)"

    def whole_seconds_text(self, expr: str) -> str:
        """The number ``expr`` truncated toward zero (Python's ``int()``), as text."""
        if self.name == "sqlite":
            return f"CAST(CAST({expr} AS INTEGER) AS TEXT)"
        return f"CAST(CAST(trunc({expr}) AS bigint) AS text)"

    def json_entries(self, column: str) -> str:
        """A table source of ``key`` and ``type`` (JSON type name) per member of an object."""
        if self.name == "sqlite":
            return f"json_each({column})"
        return (
            "LATERAL (SELECT key, jsonb_typeof(value) AS type"
            f" FROM jsonb_each(CAST({column} AS jsonb)) AS member)"
        )


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


def dialect_of(conn: Any) -> Dialect:
    return SQLITE if isinstance(conn, sqlite3.Connection) else POSTGRES
