"""``relay segments list|export``."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import click

from relay import timeutil
from relay.api.segments import parse_segment_request
from relay.cli.common import app_option, config_option, echo_json, fail, run_with_store
from relay.domain import Store
from relay.errors import RelayError
from relay.models.segments import SegmentInfo
from relay.segments.definitions import SEGMENTS
from relay.segments.formats import encode_rows, header
from relay.segments.query import build_query
from relay.settings import Settings


@click.group()
def segments() -> None:
    """List and export push-engagement segments."""


@segments.command("list")
@config_option
def list_segments(settings: Settings) -> None:
    """The built-in segments with their parameters and defaults, as JSON."""
    echo_json([SegmentInfo(s.name, s.description, dict(s.params)) for s in SEGMENTS.values()])


class Progress:
    """Rows so far and the rate, redrawn on stderr — only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.rows = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def advance(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.2:
            self._drawn = now
            self._draw(now)

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            click.echo(err=True)

    def _draw(self, now: float) -> None:
        rate = self.rows / max(now - self.started, 1e-9)
        click.echo(f"\r{self.rows:,} rows  {rate:,.0f} rows/s", nl=False, err=True)


@segments.command()
@config_option
@app_option
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="Default: from -o FILE's suffix (.jsonl, .csv), else csv.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Segment parameter.")
@click.option("--as-of", default=None, help="RFC 3339 or unix seconds (default: now).")
def export(
    settings: Settings,
    app_id: str,
    name: str,
    fmt: str | None,
    output: str | None,
    params: tuple[str, ...],
    as_of: str | None,
) -> None:
    """Export segment NAME to stdout or -o FILE, streaming with constant memory."""
    fmt = fmt or format_for(output)
    query_args = {"format": fmt}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep:
            fail(f"--param {param!r}: expected KEY=VALUE", status=2)
        query_args[key] = value
    if as_of is not None:
        query_args["as_of"] = as_of
    try:
        parsed = parse_segment_request(name, query_args, timeutil.now())
    except RelayError as exc:
        fail(exc.detail, status=2)
    query = build_query(
        parsed.segment, parsed.values, parsed.as_of, app_id, settings.attribution.conversion_events
    )
    progress = Progress(enabled=sys.stderr.isatty())

    async def write(store: Store, sink: IO[bytes]) -> None:
        if fmt == "csv":
            sink.write(header("csv"))
        async for rows in store.segment_rows(query):
            sink.write(encode_rows(fmt, rows))
            progress.advance(len(rows))

    if output is None:
        run_with_store(settings, lambda store: write(store, sys.stdout.buffer))
    else:
        with atomic_file(Path(output)) as sink:
            run_with_store(settings, lambda store: write(store, sink))
    progress.finish()


def format_for(output: str | None) -> str:
    """What -o FILE's suffix asks for: ``.jsonl`` (or ``.ndjson``) is JSON Lines, else CSV."""
    suffix = Path(output).suffix.lower() if output else ""
    return "jsonl" if suffix in (".jsonl", ".ndjson") else "csv"


@contextlib.contextmanager
def atomic_file(path: Path):  # type: ignore[no-untyped-def]
    """Write to a temporary file beside ``path``; rename over it only when complete."""
    handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as sink:
            yield sink
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
