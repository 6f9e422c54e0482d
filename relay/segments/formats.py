"""Export encodings: CSV (UTF-8, no BOM, header row, RFC 4180 quoting) and JSON Lines."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from relay.segments.query import COLUMNS, TIMESTAMP_COLUMNS
from relay.timeutil import format_timestamp

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


_TIMESTAMP_INDEXES = [i for i, name in enumerate(COLUMNS) if name in TIMESTAMP_COLUMNS]


def _values(row: Sequence[Any]) -> list[Any]:
    values = list(row)
    for i in _TIMESTAMP_INDEXES:
        if values[i] is not None:
            values[i] = format_timestamp(values[i])
    return values


def header(fmt: str) -> bytes:
    return encode_rows(fmt, [], with_header=True)


def encode_rows(fmt: str, rows: Iterable[Sequence[Any]], with_header: bool = False) -> bytes:
    if fmt == "jsonl":
        encoder = msgspec.json.Encoder()
        return b"".join(
            encoder.encode(dict(zip(COLUMNS, _values(row), strict=True))) + b"\n" for row in rows
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if with_header:
        writer.writerow(COLUMNS)
    writer.writerows(map(_values, rows))  # the csv module writes None as an empty field
    return buffer.getvalue().encode("utf-8")
