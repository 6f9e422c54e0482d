"""Scaling: ingest rate and export time with 10 K, 100 K, 1 M and 10 M stored metrics.

For each size, a dataset of that many metrics (profiles = metrics / 20) is generated once
and copied; relay (CPU 0) exports ``push_engaged`` (as of the dataset's time; the best of three
runs) and then ingests a fixed number of metrics in batches of 100 from 16 clients (CPU 1).

Targets: the ingest rate falls by at most 2x per 10x of stored data; export time grows at
most linearly with the rows the export returns (time ratio ≤ rows ratio between sizes).
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.common import (
    ADMIN_KEY,
    Relay,
    Report,
    data_dir,
    fmt_rate,
    header,
    loadgen,
    send_metrics,
)
from bench.generate import Spec, active_tokens, dataset, working_copy

SIZES = {
    "smoke": ([1_000, 10_000], 2_000),
    "quick": ([10_000, 100_000, 1_000_000], 50_000),
    "full": ([10_000, 100_000, 1_000_000, 10_000_000], 100_000),
}
SEGMENT = "push_engaged"
EXPORT_RUNS = 3


def run(size: str) -> Report:
    stored_sizes, ingest_count = SIZES[size]
    report = Report(f"Scaling ({size})")
    header(report.name)
    points = []
    for stored in stored_sizes:
        source, meta = dataset(f"scaling-{stored}", Spec(max(100, stored // 20), stored))
        with tempfile.TemporaryDirectory(prefix="bench-scaling-", dir=data_dir()) as tmp:
            work = Path(tmp)
            tokens = work / "tokens.txt"
            tokens.write_text("\n".join(active_tokens(source)))
            db = working_copy(source, work / "relay.db")
            with Relay(db, work) as relay:
                query = urlencode({"as_of": repr(meta["as_of"]), "format": "csv"})
                # Best of EXPORT_RUNS: one export at 10 K metrics takes milliseconds, and a
                # single scheduling hiccup would decide the ratio.
                exported = min(
                    (
                        loadgen(
                            "export",
                            "--url",
                            f"{relay.url}/v1/segments/{SEGMENT}/export?{query}",
                            "--key",
                            ADMIN_KEY,
                        )
                        for _ in range(EXPORT_RUNS)
                    ),
                    key=lambda run: run["elapsed"],
                )
                send_metrics(relay.url, tokens, 1000, "warm")
                ingested = send_metrics(
                    relay.url, tokens, ingest_count, "scale", timestamp=time.time() - 60
                )
        rate = ingested["accepted"] / ingested["elapsed"]
        rows = exported["lines"] - 1
        points.append(
            {"stored": stored, "rate": rate, "rows": rows, "export_s": exported["elapsed"]}
        )
        report.figure(
            f"{stored:>10,} stored: ingest",
            fmt_rate(rate, "metrics/s"),
            f"export {SEGMENT}: {rows:,} rows in {exported['elapsed']:.3f} s "
            f"({exported['elapsed'] / max(rows, 1) * 1e6:.1f} µs/row)",
        )
    rate_ok = export_ok = True
    details_rate, details_export = [], []
    for prev, cur in itertools.pairwise(points):
        fall = prev["rate"] / cur["rate"]
        rate_ok &= fall <= 2
        details_rate.append(f"{prev['stored']:,}→{cur['stored']:,}: ÷{fall:.2f}")
        time_ratio = cur["export_s"] / prev["export_s"]
        rows_ratio = cur["rows"] / max(prev["rows"], 1)
        export_ok &= time_ratio <= rows_ratio
        details_export.append(f"time x{time_ratio:.1f} for rows x{rows_ratio:.1f}")
    report.target("ingest rate falls ≤ 2x per 10x stored", rate_ok, "; ".join(details_rate))
    report.target("export time grows ≤ linearly with rows", export_ok, "; ".join(details_export))
    report.raw = {"points": points}
    return report
