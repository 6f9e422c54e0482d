"""``python -m bench.request_cost [--requests N] [--clients 16]``: relay's CPU per
``POST /v1/metrics`` request, for requests that stop at three depths, and per metric batched.

- ``refused``: a broken envelope, answered 422 before anything is stored (HTTP, relay's
  middlewares, the key check, decoding, the problem+json answer);
- ``rejected``: one invalid metric, answered 200 with it in ``rejected`` (the same, plus item
  validation and a JSON answer; still no write);
- ``stored``: one valid metric (the same, plus the group-committed write);
- ``batched``: 100 valid metrics of ``bench ingest``'s batched phase (figures per metric).

The differences say what each stage costs per request. The first line is the baseline: the
hello-world server of ``bench ingest`` (a bare aiohttp handler on the same CPU, sent the same
requests), the floor of a request's cost in this HTTP stack. Relay runs pinned to CPU 0 (as in
every benchmark), this process sends from CPU 1 with 16 closed-loop clients; CPU is read from
``/proc`` around each run, thread by thread: the event loop's thread (HTTP, middlewares,
decoding, validation) apart from the others (relay's: SQLite's writer above all, its
checkpointer and readers), user and system time apart (system time is mostly the writer's WAL
writes and fsyncs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import APP_KEY, LOAD_CPU, Relay, hello_world, user_system_seconds
from bench.generate import active_tokens, dataset, working_copy
from bench.ingest import SIZES
from bench.loadgen import closed_loop, metric_requests

KINDS = ("refused", "rejected", "stored", "batched")
BATCH = 100  # metrics a ``batched`` request

CpuByThread = dict[str, tuple[float, float]]  # "loop" / "other threads" → (user, system) s


def requests_of(
    kind: str, numbers: range, tokens: list[str], timestamp: float
) -> list[tuple[str, str, bytes]]:
    """``POST /v1/metrics`` requests of one kind, numbered (each metric id is its own)."""
    if kind == "batched":  # as `bench ingest` sends them: each metric from another device
        prefix = f"rc-{numbers.start}"  # another range, other ids
        return metric_requests(
            "/v1/metrics", tokens, len(numbers) * BATCH, BATCH, prefix, timestamp
        )
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


def thread_cpu(pid: int) -> CpuByThread:
    """CPU seconds of the event loop's thread and of all the others together."""
    cpu = {"loop": (0.0, 0.0), "other threads": (0.0, 0.0)}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            user, system = user_system_seconds(Path(f"/proc/{pid}/task/{tid}/stat"))
        except FileNotFoundError:  # a thread that ended since the listing
            continue
        which = "loop" if int(tid) == pid else "other threads"
        cpu[which] = (cpu[which][0] + user, cpu[which][1] + system)
    return cpu


def split(before: CpuByThread, after: CpuByThread, units: int) -> str:
    """CPU per unit (request or metric) of each thread, user and system apart."""
    return ", ".join(
        f"{which} {(after[which][0] - user) / units * 1e6:.0f} user"
        f" + {(after[which][1] - system) / units * 1e6:.0f} sys"
        for which, (user, system) in before.items()
    )


def measure(
    label: str,
    url: str,
    pid: int,
    kind: str,
    count: int,
    tokens: list[str],
    timestamp: float,
    clients: int,
) -> None:
    """Warm up, then send ``count`` requests of ``kind`` and print the server's CPU."""
    warm_up = requests_of(kind, range(count, count + count // 10), tokens, timestamp)
    asyncio.run(closed_loop(url, warm_up, clients, APP_KEY))
    requests = requests_of(kind, range(count), tokens, timestamp)
    before = thread_cpu(pid)
    run = asyncio.run(closed_loop(url, requests, clients, APP_KEY))
    after = thread_cpu(pid)
    cpu = sum(sum(after[t]) - sum(before[t]) for t in after)
    statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(run["statuses"].items()))
    unit, units = ("metric", count * BATCH) if kind == "batched" else ("request", count)
    print(
        f"{label:>8}: {run['requests_per_s'] * units / count:>7,.0f} {unit}s/s,"
        f" server CPU {cpu / run['elapsed']:.0%}, {cpu / units * 1e6:.0f} µs a {unit}"
        f" ({split(before, after, units)} µs),"
        f" p99 {run['p99_ms']:.1f} ms a request ({statuses})"
    )


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
        with hello_world(work) as (url, pid):  # the baseline: aiohttp's floor per request
            measure("hello", url, pid, "stored", args.requests, tokens, timestamp, args.clients)
        with Relay(working_copy(source, work / "relay.db"), work) as relay:
            for kind in KINDS:
                # batched: as many metrics as the single kinds send, a hundred a request
                count = args.requests // BATCH if kind == "batched" else args.requests
                measure(kind, relay.url, relay.pid, kind, count, tokens, timestamp, args.clients)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
