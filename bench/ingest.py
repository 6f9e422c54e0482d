"""Ingest: metrics/s committed through POST /v1/metrics, and single-metric requests.

- Batched: ``count`` metrics in batches of 100 from N concurrent clients (one process, CPU 1)
  to relay (its own process, CPU 0). Every metric names a delivery, so relay also writes one
  outbox row per metric and moves its device's last_seen, in the same commit.
  Baseline (issue 18's): the same metric rows inserted by a bare sqlite3 script
  (`bench.sqlite_ceiling --dedup-only`, CPU 0) in 10,000-row transactions into a table of the
  same shape whose only index is the unique id. Beside it, the same-schema ceilings: into
  relay's own ``metrics`` (all its indexes), then with the outbox rows, then every write relay
  does.
- Single: one metric per request, requests/s and p50/p99 latency, against an aiohttp
  hello-world handler (`bench.hello`, CPU 0) driven by the same load generator.

Targets: batched ≥ 50% of the bare (unique-id-only) ceiling; single ≥ 70% of hello-world,
p99 < 20 ms at 16 clients (< 50 ms at 64).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import (
    PY,
    RELAY_CPU,
    Profiler,
    Relay,
    Report,
    cpu_seconds,
    data_dir,
    fmt_rate,
    header,
    hello_world,
    pinned,
    print_profile,
    run_json,
    send_metrics,
)
from bench.generate import Spec, active_tokens, dataset, working_copy

SIZES = {
    "smoke": {"spec": Spec(500, 5_000), "batched": 2_000, "single": 300, "clients": 8},
    "quick": {"spec": Spec(20_000, 200_000), "batched": 200_000, "single": 10_000, "clients": 16},
    "full": {
        "spec": Spec(100_000, 1_000_000),
        "batched": 1_000_000,
        "single": 50_000,
        "clients": 16,
    },
}


def run(size: str, profile: bool = False, clients: int | None = None) -> Report:
    cfg = SIZES[size]
    clients = clients or cfg["clients"]
    report = Report(
        f"Ingest ({size})" if clients == cfg["clients"] else f"Ingest ({size}, {clients} clients)"
    )
    header(report.name)
    source, _meta = dataset(f"ingest-{size}", cfg["spec"])
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=source.parent) as tmp:
        work = Path(tmp)
        tokens = work / "tokens.txt"
        tokens.write_text("\n".join(active_tokens(source)))
        ts = time.time() - 60
        batched, single = cfg["batched"], cfg["single"]

        db = working_copy(source, work / "relay.db")
        results = data_dir() / "results"
        results.mkdir(exist_ok=True)
        with Relay(db, work) as relay:

            def load(count: int, batch: int, prefix: str) -> dict:
                return send_metrics(
                    relay.url, tokens, count, prefix, batch=batch, clients=clients, timestamp=ts
                )

            load(max(1000, batched // 50), 100, "warm")
            cpu0 = cpu_seconds(relay.pid)
            profiler = None
            if profile:
                profiler = Profiler(relay.pid, results / f"ingest-{size}.pyspy.txt")
            b = load(batched, 100, "b")
            if profile:
                profiler.stop()
                print_profile(report, profiler, "batched")
            b["server_cpu_util"] = (cpu_seconds(relay.pid) - cpu0) / b["elapsed"]
            if profile:
                profiler = Profiler(relay.pid, results / f"ingest-{size}-single.pyspy.txt")
            cpu0 = cpu_seconds(relay.pid)
            s = load(single, 1, "s")
            s["server_cpu_util"] = (cpu_seconds(relay.pid) - cpu0) / s["elapsed"]
            if profile:
                profiler.stop()
                print_profile(report, profiler, "single")
        conn = sqlite3.connect(db)
        outbox_rows = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        conn.close()

        def ceiling_run(*extra: str) -> dict:
            copy = working_copy(source, work / "ceiling.db")
            return run_json(
                pinned(
                    RELAY_CPU,
                    [
                        PY,
                        "-m",
                        "bench.sqlite_ceiling",
                        "--db",
                        str(copy),
                        "--tokens",
                        str(tokens),
                        "--count",
                        str(batched),
                        "--prefix",
                        "b",
                        "--timestamp",
                        str(ts),
                        *extra,
                    ],
                )
            )

        ceiling_dedup_only = ceiling_run("--dedup-only")
        ceiling = ceiling_run()
        ceiling_outbox = ceiling_run("--outbox")
        ceiling_all = ceiling_run("--all-writes")

        with hello_world(work) as (url, _):
            for count in (max(500, single // 10), single):  # warm-up, then measured
                h = send_metrics(url, tokens, count, "s", batch=1, clients=clients, timestamp=ts)

    committed = b["accepted"]
    rate = committed / b["elapsed"]
    ratio = rate / ceiling_dedup_only["rows_per_s"]
    ratio_schema = rate / ceiling["rows_per_s"]
    report.figure(
        "batched: metrics committed",
        f"{committed:,} of {batched:,}",
        f"{b['rejected']} rejected, {b['duplicates']} duplicates",
    )
    report.figure(
        f"batched: metrics/s ({clients} clients x 100)",
        fmt_rate(rate),
        f"ceiling (unique id only) {fmt_rate(ceiling_dedup_only['rows_per_s'])} → {ratio:.1%}",
    )
    report.figure(
        "batched: vs ceiling into relay's metrics table",
        fmt_rate(rate),
        f"ceiling {fmt_rate(ceiling['rows_per_s'])} → {ratio_schema:.1%}",
    )
    report.figure(
        "batched: vs ceiling with outbox rows",
        fmt_rate(rate),
        f"ceiling {fmt_rate(ceiling_outbox['rows_per_s'])} → "
        f"{rate / ceiling_outbox['rows_per_s']:.1%}",
    )
    report.figure(
        "batched: vs bare SQLite doing all relay's writes",
        fmt_rate(rate),
        f"ceiling {fmt_rate(ceiling_all['rows_per_s'])} → {rate / ceiling_all['rows_per_s']:.1%}",
    )
    report.figure("batched: p50 / p99 per request", f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f} ms")
    report.figure(
        "batched: CPU relay / load generator",
        f"{b['server_cpu_util']:.0%} / {b['client_cpu_util']:.0%}",
    )
    report.figure("outbox rows written (all phases)", f"{outbox_rows:,}")
    s_ratio = s["requests_per_s"] / h["requests_per_s"]
    report.figure(
        f"single: requests/s ({clients} clients)",
        fmt_rate(s["requests_per_s"]),
        f"hello-world {fmt_rate(h['requests_per_s'])} → {s_ratio:.1%}",
    )
    report.figure(
        "single: p50 / p99",
        f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} ms",
        f"hello-world {h['p50_ms']:.2f} / {h['p99_ms']:.2f} ms",
    )
    report.figure("single: CPU relay", f"{s['server_cpu_util']:.0%}")
    report.figure(
        "single: load generator CPU (relay / hello)",
        f"{s['client_cpu_util']:.0%} / {h['client_cpu_util']:.0%}",
    )
    failures = [r["errors"] for r in (b, s) if r["errors"]]
    if failures:
        report.note(f"errors: {failures}")
    report.target(
        "batched ingest ≥ 50% of bare SQLite ceiling (unique id only)",
        ratio >= 0.5,
        f"{ratio:.1%} ({ratio_schema:.1%} of the ceiling into relay's metrics table)",
    )
    report.target("single-metric ≥ 70% of hello-world", s_ratio >= 0.7, f"{s_ratio:.1%}")
    p99_target = 50 if clients >= 64 else 20  # issue 18: < 20 ms at 16 clients, < 50 at 64
    report.target(
        f"single-metric p99 < {p99_target} ms", s["p99_ms"] < p99_target, f"{s['p99_ms']:.2f} ms"
    )
    report.target(
        "zero loss (all metrics committed)",
        committed == batched and s["accepted"] == single,
        f"{committed + s['accepted']:,} of {batched + single:,}",
    )
    report.raw |= {
        "batched": b,
        "single": s,
        "hello": h,
        "ceiling_dedup_only": ceiling_dedup_only,
        "ceiling": ceiling,
        "ceiling_outbox": ceiling_outbox,
        "ceiling_all": ceiling_all,
    }
    return report
