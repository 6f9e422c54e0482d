"""``python -m bench.request_cost [--requests N] [--clients 16]``: relay's CPU per
``POST /v1/metrics`` request, for requests that stop at three depths.

- ``refused``: a broken envelope, answered 422 before anything is stored (HTTP, relay's
  middlewares, the key check, decoding, the problem+json answer);
- ``rejected``: one invalid metric, answered 200 with it in ``rejected`` (the same, plus item
  validation and a JSON answer; still no write);
- ``stored``: one valid metric (the same, plus the group-committed write).

The differences say what each stage costs per request; the hello-world baseline of ``bench
ingest`` bounds the first. Relay runs pinned to CPU 0 (as in every benchmark), this process
sends from CPU 1 with 16 closed-loop clients; CPU is read from ``/proc`` around each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import APP_KEY, LOAD_CPU, Relay, cpu_seconds
from bench.generate import active_tokens, dataset, working_copy
from bench.ingest import SIZES
from bench.loadgen import closed_loop

KINDS = ("refused", "rejected", "stored")


def requests_of(
    kind: str, numbers: range, tokens: list[str], timestamp: float
) -> list[tuple[str, str, bytes]]:
    """``POST /v1/metrics`` requests of one kind, numbered (each metric id is its own)."""
    return [
        ("POST", "/v1/metrics", _body(kind, i, tokens[i % len(tokens)], timestamp)) for i in numbers
    ]


def _body(kind: str, i: int, token: str, timestamp: float) -> bytes:
    if kind == "refused":
        return b'{"metricz": 1}'
    metric = {"id": f"rc-{kind}-{i}", "metric": "delivered", "token": token, "timestamp": timestamp}
    if kind == "rejected":
        metric["timestamp"] = "yesterday"
    return json.dumps({"metrics": [metric]}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_cost")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {LOAD_CPU})
    source, _ = dataset(f"ingest-{args.size}", SIZES[args.size]["spec"])
    tokens = active_tokens(source)
    timestamp = time.time() - 60
    with tempfile.TemporaryDirectory(prefix="bench-request-", dir=source.parent) as tmp:
        work = Path(tmp)
        with Relay(working_copy(source, work / "relay.db"), work) as relay:
            for kind in KINDS:
                requests = requests_of(kind, range(args.requests), tokens, timestamp)
                asyncio.run(closed_loop(relay.url, requests[:1000], args.clients, APP_KEY))
                cpu = cpu_seconds(relay.pid)
                run = asyncio.run(closed_loop(relay.url, requests, args.clients, APP_KEY))
                cpu = cpu_seconds(relay.pid) - cpu
                statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(run["statuses"].items()))
                print(
                    f"{kind:>8}: {run['requests_per_s']:>7,.0f} req/s, relay CPU"
                    f" {cpu / run['elapsed']:.0%}, {cpu / args.requests * 1e6:.0f} µs a request,"
                    f" p99 {run['p99_ms']:.1f} ms ({statuses})"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
