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


def _values(row: Sequence[Any]) -> list[Any]:
    return [
        format_timestamp(value) if name in TIMESTAMP_COLUMNS else value
        for name, value in zip(COLUMNS, row, strict=True)
    ]


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
    writer.writerows(["" if v is None else v for v in _values(row)] for row in rows)
    return buffer.getvalue().encode("utf-8")
