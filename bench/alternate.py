"""``python -m bench.alternate before=CHECKOUT,after=CHECKOUT [--kind stored] [--burst 3000]
[--bursts 16] [--clients 16] [--size quick]``: relay's CPU per ``POST /v1/metrics`` request,
two checkouts side by side, for changes too small for `bench.compare`.

This machine's speed drifts by tens of percent within minutes, more than a change of a few
percent moves anything. Here both relays run at once (both on CPU 0, only one loaded at a
time, each on its own copy of the dataset), and bursts of ``--burst`` requests go to each in
turn, in alternating order: the drift falls on both alike. Each burst's CPU per request is
read from ``/proc``; the median ratio of the pairs is the measurement. ``--kind`` is one of
`bench.request_cost`'s kinds (refused, rejected, stored; batched: a request is 100 metrics).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import APP_KEY, LOAD_CPU, Relay, cpu_seconds
from bench.compare import checkouts
from bench.generate import active_tokens, dataset, working_copy
from bench.ingest import SIZES
from bench.loadgen import closed_loop
from bench.request_cost import KINDS, requests_of

WARM_UP = 2000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alternate")
    parser.add_argument("versions", help="name=checkout,name=checkout (two relay source trees)")
    parser.add_argument("--kind", choices=KINDS, default="stored")
    parser.add_argument("--burst", type=int, default=3000, help="requests a burst")
    parser.add_argument("--bursts", type=int, default=16, help="bursts to each checkout")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    args = parser.parse_args(argv)
    versions = checkouts(args.versions)
    if len(versions) != 2:
        parser.error("name exactly two checkouts")
    os.sched_setaffinity(0, {LOAD_CPU})
    source, _ = dataset(f"ingest-{args.size}", SIZES[args.size]["spec"])
    tokens = active_tokens(source)
    timestamp = time.time() - 60
    sent = 0

    def requests(n: int) -> list[tuple[str, str, bytes]]:
        nonlocal sent
        sent += n
        return requests_of(args.kind, range(sent - n, sent), tokens, timestamp)

    bursts: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    with (
        tempfile.TemporaryDirectory(prefix="bench-alternate-", dir=source.parent) as tmp,
        ExitStack() as stack,
    ):
        relays = {}
        for name, checkout in versions.items():
            work = Path(tmp) / name
            work.mkdir()
            env = {"PYTHONPATH": str(checkout.resolve())}
            db = working_copy(source, work / "relay.db")
            relays[name] = stack.enter_context(Relay(db, work, env=env))
        for relay in relays.values():
            asyncio.run(closed_loop(relay.url, requests(WARM_UP), args.clients, APP_KEY))
        for turn in range(args.bursts):
            order = list(relays.items())
            for name, relay in order if turn % 2 == 0 else reversed(order):
                burst = requests(args.burst)
                cpu_before = cpu_seconds(relay.pid)
                result = asyncio.run(closed_loop(relay.url, burst, args.clients, APP_KEY))
                cpu = cpu_seconds(relay.pid) - cpu_before
                bursts[name].append(
                    {
                        "cpu_us": cpu / args.burst * 1e6,
                        "requests_per_s": result["requests_per_s"],
                        "p99_ms": result["p99_ms"],
                    }
                )
    for name, rows in bursts.items():
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print(
            f"{name}: {args.kind} {median['cpu_us']:.0f} µs of relay CPU a request,"
            f" {median['requests_per_s']:,.0f} req/s, p99 {median['p99_ms']:.1f} ms (medians)"
        )
    first, second = bursts.values()
    ratios = [a["cpu_us"] / b["cpu_us"] for a, b in zip(first, second, strict=True)]
    names = " / ".join(bursts)
    print(
        f"CPU a request, {names}, burst by burst: median {statistics.median(ratios):.3f}"
        f" (range {min(ratios):.3f} to {max(ratios):.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
