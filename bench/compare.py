"""Interleaved A/B of relay checkouts on the ingest workloads, for a machine whose speed drifts.

One benchmark run per version says little on a shared machine (the same run varies by tens of
percent from one minute to the next). This runs each version in turn, round after round, on
a fresh copy of the same dataset, and prints every round and the medians:

    git worktree add /tmp/relay-before HEAD~1
    python -m bench.compare before=/tmp/relay-before,after=. --rounds 3

Each checkout's relay is started from its own source tree (``PYTHONPATH``) with this venv.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Relay, send_metrics
from bench.generate import active_tokens, dataset, working_copy
from bench.ingest import SIZES

BATCHED = 100_000
SINGLE = 5_000


def measure(
    source: Path,
    work: Path,
    checkout: Path,
    prefix: str,
    tokens: Path,
    clients: int,
    batched_metrics: int = BATCHED,
    single_requests: int = SINGLE,
) -> dict:
    db = working_copy(source, work / "relay.db")
    with Relay(db, work, env={"PYTHONPATH": str(checkout.resolve())}) as relay:
        ts = time.time() - 60
        send_metrics(relay.url, tokens, 2000, f"{prefix}w", timestamp=ts)
        batched = 0.0
        if batched_metrics:
            sent = send_metrics(
                relay.url, tokens, batched_metrics, f"{prefix}b", clients=clients, timestamp=ts
            )
            batched = sent["accepted"] / sent["elapsed"]
        single = send_metrics(
            relay.url, tokens, single_requests, f"{prefix}s", batch=1, clients=clients, timestamp=ts
        )
    return {
        "batched": batched,
        "single": single["requests_per_s"],
        "p99": single["p99_ms"],
    }


def checkouts(versions: str) -> dict[str, Path]:
    """``name=checkout,name=checkout`` as names and source trees."""
    return {name: Path(path) for name, path in (v.split("=", 1) for v in versions.split(","))}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare")
    parser.add_argument("versions", help="name=checkout,name=checkout (relay source trees)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batched", type=int, default=BATCHED, help="metrics, 100 a request")
    parser.add_argument("--single", type=int, default=SINGLE, help="one-metric requests")
    args = parser.parse_args()
    versions = checkouts(args.versions)
    source, _meta = dataset("ingest-quick", SIZES["quick"]["spec"])
    results: dict[str, list[dict]] = {name: [] for name in versions}
    with tempfile.TemporaryDirectory(prefix="bench-compare-", dir=source.parent) as tmp:
        work = Path(tmp)
        tokens = work / "tokens.txt"
        tokens.write_text("\n".join(active_tokens(source)))
        for round_ in range(args.rounds):
            for name, checkout in versions.items():
                figures = measure(
                    source,
                    work,
                    checkout,
                    f"r{round_}{name}",
                    tokens,
                    args.clients,
                    args.batched,
                    args.single,
                )
                results[name].append(figures)
                print(
                    f"round {round_} {name}: batched {figures['batched']:,.0f} metrics/s,"
                    f" single {figures['single']:,.0f} req/s, p99 {figures['p99']:.1f} ms",
                    flush=True,
                )
    for name, rounds in results.items():
        median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        print(
            f"{name} median: batched {median['batched']:,.0f} metrics/s,"
            f" single {median['single']:,.0f} req/s, p99 {median['p99']:.1f} ms"
        )


if __name__ == "__main__":
    main()
