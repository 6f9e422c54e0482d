"""Export: every built-in segment over a generated dataset, rows/s and peak RSS.

relay (CPU 0) streams ``GET /v1/segments/{name}/export?as_of=…`` (CSV) to the load generator
(CPU 1); relay's peak RSS is its VmHWM, reset before each segment. Baseline: the same SQL
(`relay.segments.query.build_query`, the same bound parameters) run by the ``sqlite3`` CLI
(CPU 0, ``-csv -header``, output to a file), its peak RSS from ``wait4``.

Sizes: ``full`` is the task's 1,000,000 profiles / 20,000,000 metrics (~8 GB, several minutes
to generate, free disk is checked first); ``quick`` is 100,000 / 2,000,000.
Targets: every segment under 10 s, peak RSS under 200 MB.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.common import (
    ADMIN_KEY,
    RELAY_CPU,
    Relay,
    Report,
    data_dir,
    header,
    loadgen,
    mb,
    peak_rss,
    pinned,
    reset_peak_rss,
    rss,
    warm_page_cache,
)
from bench.generate import Spec, dataset
from relay.segments.definitions import SEGMENTS
from relay.segments.query import SegmentQuery, build_query
from relay.settings import AttributionSettings
from relay.store.dialect import SQLITE
from relay.store.sql.segment_sql import segment_sql

SIZES = {
    "smoke": Spec(1_000, 20_000),
    "quick": Spec(100_000, 2_000_000),
    "full": Spec(1_000_000, 20_000_000),
}


def segment_query(name: str, as_of: float) -> SegmentQuery:
    segment = SEGMENTS[name]
    conversions = AttributionSettings().conversion_events
    return build_query(segment, dict(segment.params), as_of, "default", conversions)


def sqlite_cli(db: Path, query: SegmentQuery, out: Path) -> dict:
    """Run ``query`` with the sqlite3 shell; seconds, rows and peak RSS."""
    lines = [".parameter init"]
    for key, value in query.params.items():
        literal = "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(value)
        # the shell reads a double-quoted argument with C escapes (JSON holds double quotes)
        argument = literal.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'.parameter set :{key} "{argument}"')
    lines.append(segment_sql(query, SQLITE).strip() + ";")
    script = out.with_suffix(".sql")
    script.write_text("\n".join(lines) + "\n")
    with open(script, "rb") as stdin, open(out, "wb") as stdout:
        started = time.perf_counter()
        process = subprocess.Popen(
            pinned(RELAY_CPU, ["sqlite3", "-readonly", "-csv", "-header", str(db)]),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"sqlite3 failed: {process.stderr.read().decode()[-2000:]}")
    with open(out, "rb") as result:
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: result.read(1 << 20), b"")) - 1
    out.unlink()
    return {"elapsed": elapsed, "rows": max(rows, 0), "peak_rss": usage.ru_maxrss * 1024}


def export_through(relay: Relay, name: str, as_of: float) -> dict:
    """One segment's CSV export streamed from ``relay``: the load generator's figures and
    relay's peak RSS while it ran."""
    reset_peak_rss(relay.pid)
    query = urlencode({"as_of": repr(as_of), "format": "csv"})
    got: dict = loadgen(
        "export", "--url", f"{relay.url}/v1/segments/{name}/export?{query}", "--key", ADMIN_KEY
    )
    got["peak_rss"] = peak_rss(relay.pid)
    return got


def run(size: str) -> Report:
    spec = SIZES[size]
    report = Report(f"Export ({size}: {spec.profiles:,} profiles, {spec.metrics:,} metrics)")
    header(report.name)
    db, meta = dataset(f"export-{size}", spec)
    as_of = meta["as_of"]
    report.figure(
        "dataset",
        f"{meta['bytes'] / 1e9:.2f} GB",
        f"generated in {meta['seconds']:.0f} s; {meta['devices']:,} devices, "
        f"{meta['events']:,} events",
    )
    # Relay's first export would otherwise pay for reading the file from disk and the CLI,
    # running after it, would not: both measure with the file in the OS page cache.
    warmed = warm_page_cache(db)
    report.figure("page cache warmed before measuring", f"{warmed:.1f} s")
    worst_s = worst_rss = 0.0
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-", dir=data_dir()) as tmp:
        work = Path(tmp)
        with Relay(db, work) as relay:
            idle = rss(relay.pid)
            report.figure("relay RSS before exports", mb(idle))
            can_reset = reset_peak_rss(relay.pid)
            if not can_reset:
                report.note("could not reset VmHWM: peak RSS is relay's lifetime peak")
            for name in SEGMENTS:
                results[name] = {"relay": export_through(relay, name, as_of)}
        for name in SEGMENTS:
            results[name]["sqlite3"] = sqlite_cli(db, segment_query(name, as_of), work / "out.csv")

    for name, r in results.items():
        ours, cli = r["relay"], r["sqlite3"]
        rows = ours["lines"] - 1
        rate = rows / ours["elapsed"]
        cli_rate = cli["rows"] / cli["elapsed"] if cli["elapsed"] else 0.0
        worst_s = max(worst_s, ours["elapsed"])
        worst_rss = max(worst_rss, ours["peak_rss"])
        same = "" if rows == cli["rows"] else f" (sqlite3 returned {cli['rows']:,} rows!)"
        report.figure(
            f"{name}: rows, time, rows/s, peak RSS",
            f"{rows:,} in {ours['elapsed']:.2f} s",
            f"{rate:,.0f} rows/s, {mb(ours['peak_rss'])}; sqlite3 CLI "
            f"{cli['elapsed']:.2f} s, {cli_rate:,.0f} rows/s, {mb(cli['peak_rss'])} → "
            f"relay takes {ours['elapsed'] / cli['elapsed']:.2f}x{same}",
        )
    report.target("every segment under 10 s", worst_s < 10, f"slowest {worst_s:.2f} s")
    report.target(
        "peak RSS under 200 MB",
        worst_rss < 200 * 1024 * 1024,
        f"highest {mb(worst_rss)} (whole relay process)",
    )
    report.raw = {"results": results, "meta": meta}
    return report
