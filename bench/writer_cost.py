"""``python -m bench.writer_cost [--size quick] [--per-commit 7,1600] [--metrics N]``: what
relay's SQLite writer costs per metric, without HTTP, the event loop or a second thread.

On a migrated copy of the ingest dataset, one thread commits the metric jobs relay's writer
runs (`RelayStore._ingest_metric_requests` itself, with relay's default settings: the merged
ingest of the requests, then the data-health count) through `writer.commit_batch`, with the
writer connection's own
pragmas, ``--per-commit`` metrics a commit (7: sixteen clients sending one metric each; 1,600:
sixteen sending a hundred). It prints metrics/s, milliseconds per commit and the CPU per metric
(user and system, from ``getrusage``), so a change to the write path is measured apart from
what the event loop costs. Run it pinned (``taskset -c 0``) and interleave checkouts:
``PYTHONPATH=CHECKOUT python bench/writer_cost.py`` (run as a file) imports relay, and the
bench modules it uses, from that checkout.
A commit that fails stops the run: a rolled-back transaction is not a measurement.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.generate import active_tokens, dataset, working_copy
from bench.ingest import SIZES
from relay.domain.service import RelayStore
from relay.facts import NewMetric
from relay.settings import Settings, StorageSettings
from relay.store.sqlite.engine import _configure_writer
from relay.store.sqlite.migrate import apply_migrations
from relay.store.writer import commit_batch

APP = "default"
CHECKPOINT_EVERY_S = 1.0  # as relay's background checkpoint


def measure(db: Path, tokens: list[str], per_commit: int, count: int, prefix: str) -> dict:
    store = RelayStore(Settings(storage=StorageSettings(url=f"sqlite:///{db}")))  # never opened
    conn = sqlite3.connect(db, isolation_level=None)
    _configure_writer(conn, "full")
    apply_migrations(conn)
    timestamp = time.time() - 60
    commits = count // per_commit
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    checkpointed = started
    for c in range(commits):
        requests = []
        for i in range(c * per_commit, (c + 1) * per_commit):
            metric = "opened" if i % 10 >= 7 else "delivered"
            token = tokens[i % len(tokens)]
            requests.append(
                [NewMetric(f"{prefix}-{i}", metric, token, f"{prefix}-d{i}", timestamp)]
            )
        job = functools.partial(store._ingest_metric_requests, app_id=APP, requests=requests)
        ((ok, result),) = commit_batch(conn, [job], "BEGIN IMMEDIATE", lambda _: False)
        if not ok:
            raise SystemExit(f"commit {c} failed: {result!r}")
        if time.perf_counter() - checkpointed > CHECKPOINT_EVERY_S:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            checkpointed = time.perf_counter()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    conn.close()
    metrics = commits * per_commit
    return {
        "per_commit": per_commit,
        "metrics_per_s": metrics / elapsed,
        "ms_per_commit": elapsed / commits * 1000,
        "user_us_per_metric": (after.ru_utime - before.ru_utime) / metrics * 1e6,
        "system_us_per_metric": (after.ru_stime - before.ru_stime) / metrics * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writer_cost")
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--per-commit", default="7,1600", help="metrics a commit, comma-separated")
    parser.add_argument(
        "--metrics",
        type=int,
        default=0,
        help="how many per commit size (default 7,000 below 100 a commit, else 100,000)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    source, _ = dataset(f"ingest-{args.size}", SIZES[args.size]["spec"])
    tokens = active_tokens(source)
    for per_commit in (int(n) for n in args.per_commit.split(",")):
        count = args.metrics or (7_000 if per_commit < 100 else 100_000)
        with tempfile.TemporaryDirectory(prefix="bench-writer-", dir=source.parent) as tmp:
            db = working_copy(source, Path(tmp) / "relay.db")
            figures = measure(db, tokens, per_commit, count, f"w{per_commit}")
        if args.json:
            print(json.dumps(figures))
        else:
            print(
                f"{per_commit:>5} metrics a commit: {figures['metrics_per_s']:>9,.0f} metrics/s,"
                f" {figures['ms_per_commit']:.3f} ms a commit; per metric"
                f" {figures['user_us_per_metric']:.0f} µs user,"
                f" {figures['system_us_per_metric']:.0f} µs system"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
