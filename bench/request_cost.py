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
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import (
    APP_KEY,
    LOAD_CPU,
    PY,
    RELAY_CPU,
    Relay,
    free_port,
    pinned,
    wait_ready,
)
from bench.generate import active_tokens, dataset, working_copy
from bench.ingest import SIZES
from bench.loadgen import closed_loop
from bench.workload import metric_item

KINDS = ("refused", "rejected", "stored", "batched")
BATCH = 100  # metrics a ``batched`` request


def requests_of(
    kind: str, numbers: range, tokens: list[str], timestamp: float
) -> list[tuple[str, str, bytes]]:
    """``POST /v1/metrics`` requests of one kind, numbered (each metric id is its own)."""
    return [("POST", "/v1/metrics", _body(kind, i, tokens, timestamp)) for i in numbers]


def _body(kind: str, i: int, tokens: list[str], timestamp: float) -> bytes:
    if kind == "refused":
        return b'{"metricz": 1}'
    if kind == "batched":  # as `bench ingest` sends them: each metric from another device
        numbers = range(i * BATCH, (i + 1) * BATCH)
        items = [metric_item("rc", n, tokens[n % len(tokens)], timestamp) for n in numbers]
        return json.dumps({"metrics": items}).encode()
    token = tokens[i % len(tokens)]
    metric = {"id": f"rc-{kind}-{i}", "metric": "delivered", "token": token, "timestamp": timestamp}
    if kind == "rejected":
        metric["timestamp"] = "yesterday"
    return json.dumps({"metrics": [metric]}).encode()


def thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """(user, system) seconds of the event loop's thread and of all the others together."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = {"loop": (0.0, 0.0), "others": (0.0, 0.0)}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # a thread that ended since the listing
            continue
        fields = stat.rsplit(")", 1)[1].split()
        which = "loop" if int(tid) == pid else "others"
        user, system = cpu[which]
        cpu[which] = (user + int(fields[11]) / tick, system + int(fields[12]) / tick)
    return cpu


def split(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], units: int
) -> str:
    """CPU per unit (request or metric) of each thread, user and system apart, between two
    `thread_cpu` readings."""
    parts = []
    for which, label in (("loop", "loop"), ("others", "other threads")):
        user = (after[which][0] - before[which][0]) / units * 1e6
        system = (after[which][1] - before[which][1]) / units * 1e6
        parts.append(f"{label} {user:.0f} user + {system:.0f} sys")
    return ", ".join(parts)


@contextlib.contextmanager
def hello_world(work: Path) -> Iterator[tuple[str, int]]:
    """`bench.hello` on relay's CPU, as `bench ingest` runs it: (its URL, its pid)."""
    port, log = free_port(), work / "hello.log"
    with open(log, "wb") as sink:
        command = pinned(RELAY_CPU, [PY, "-m", "bench.hello", "--port", str(port)])
        hello = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/readyz", hello, log)
        yield url, hello.pid
    finally:
        hello.terminate()
        hello.wait()


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
