"""The load generator: one process (pinned to CPU 1 by the caller), aiohttp, N concurrent clients.

Bodies are encoded before the clock starts; each client takes the next request, sends it and
waits for the answer (a closed loop), recording the latency. The last line of stdout is the
result as JSON. Modes:

- ``metrics``: POST ``--count`` metrics to ``/v1/metrics`` in batches of ``--batch``;
- ``facts``: load the forwarding facts (identifies, devices, events, metrics) into relay;
- ``devices``: PUT ``--count`` new devices;
- ``export``: GET a URL, stream the body, count bytes and lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

import aiohttp

from bench.workload import Facts, metric_item


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


async def closed_loop(
    url: str, requests: Iterable[tuple[str, str, bytes]], clients: int, key: str | None
) -> dict:
    """Send every (method, path, body) with ``clients`` concurrent loops; latencies in ms."""
    pending = list(requests)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = duplicates = rejected = 0
    errors: list[str] = []
    position = 0
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            nonlocal position, accepted, duplicates, rejected
            while position < len(pending):
                method, path, body = pending[position]
                position += 1
                started = time.perf_counter()
                async with session.request(
                    method, url + path, data=body, headers=headers
                ) as response:
                    text = await response.read()
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status >= 300:
                    if len(errors) < 5:
                        errors.append(f"{response.status} {text[:300]!r}")
                    continue
                json_answer = response.content_type == "application/json"
                if json_answer and path.startswith(("/v1/metrics", "/v1/events")):
                    answer = json.loads(text)
                    accepted += answer.get("accepted", 0)
                    duplicates += answer.get("duplicates", 0)
                    rejected += len(answer.get("rejected", ()))

        cpu0, started, wall_start = _cpu(), time.perf_counter(), time.time()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        wall_end = time.time()
        cpu = _cpu() - cpu0
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, round(q / 100 * (len(latencies) - 1)))]

    return {
        "requests": len(pending),
        "elapsed": elapsed,
        "requests_per_s": len(pending) / elapsed,
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "statuses": statuses,
        "errors": errors,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": latencies[-1],
        "client_cpu_util": cpu / elapsed,
        "wall_start": wall_start,
        "wall_end": wall_end,
    }


def metric_requests(
    path: str, tokens: list[str], count: int, batch: int, prefix: str, timestamp: float
) -> list[tuple[str, str, bytes]]:
    out = []
    for start in range(0, count, batch):
        items = [
            metric_item(prefix, i, tokens[i % len(tokens)], timestamp)
            for i in range(start, min(count, start + batch))
        ]
        out.append(("POST", path, json.dumps({"metrics": items}).encode()))
    return out


def fact_phases(facts: Facts) -> list[list[tuple[str, str, bytes]]]:
    """Identifies first, then devices, events and metrics (each phase after the previous)."""
    enc = json.dumps
    identifies = [
        ("POST", "/v1/identify", enc(facts.identify(c)).encode()) for c in range(facts.customers)
    ]
    devices = []
    for d in range(facts.devices):
        token, body = facts.device(d)
        devices.append(("PUT", f"/v1/devices/{token}", enc(body).encode()))
    events = [
        (
            "POST",
            "/v1/events",
            enc(
                {"events": [facts.event(e) for e in range(s, min(facts.events, s + 100))]}
            ).encode(),
        )
        for s in range(0, facts.events, 100)
    ]
    metrics = [
        (
            "POST",
            "/v1/metrics",
            enc(
                {"metrics": [facts.metric(m) for m in range(s, min(facts.metrics, s + 100))]}
            ).encode(),
        )
        for s in range(0, facts.metrics, 100)
    ]
    return [identifies, devices, events, metrics]


async def export(url: str, key: str) -> dict:
    timeout = aiohttp.ClientTimeout(total=3600)
    size = lines = 0
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        first_byte = None
        async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as response:
            if response.status != 200:
                raise SystemExit(f"export answered {response.status}: {await response.text()}")
            async for chunk in response.content.iter_chunked(1 << 16):
                if first_byte is None:
                    first_byte = time.perf_counter() - started
                size += len(chunk)
                lines += chunk.count(b"\n")
        elapsed = time.perf_counter() - started
    return {"bytes": size, "lines": lines, "elapsed": elapsed, "first_byte": first_byte}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("mode", choices=["metrics", "facts", "devices", "export"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key")
    parser.add_argument("--path", default="/v1/metrics")
    parser.add_argument("--tokens", type=Path, help="file of device tokens, one a line")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--prefix", default="run")
    parser.add_argument("--timestamp", type=float, default=None)
    parser.add_argument(
        "--start-at",
        type=float,
        default=None,
        help="metrics: wait until this Unix time (after encoding the bodies) before sending,"
        " so that several load generators start together",
    )
    args = parser.parse_args()
    timestamp = args.timestamp if args.timestamp is not None else time.time()

    if args.mode == "export":
        result = asyncio.run(export(args.url, args.key))
    elif args.mode == "metrics":
        tokens = args.tokens.read_text().split()
        requests = metric_requests(
            args.path, tokens, args.count, args.batch, args.prefix, timestamp
        )
        if args.start_at is not None:
            time.sleep(max(0.0, args.start_at - time.time()))
        result = asyncio.run(closed_loop(args.url, requests, args.clients, args.key))
    elif args.mode == "devices":
        requests = [
            (
                "PUT",
                f"/v1/devices/{args.prefix}{i:010d}",
                json.dumps({"platform": "ios", "anonymous_id": f"{args.prefix}-anon-{i}"}).encode(),
            )
            for i in range(args.count)
        ]
        result = asyncio.run(closed_loop(args.url, requests, args.clients, args.key))
    else:
        facts = Facts(args.count, timestamp)
        phases = []
        for requests in fact_phases(facts):
            phases.append(asyncio.run(closed_loop(args.url, requests, args.clients, args.key)))
        result = {
            "phases": phases,
            "elapsed": sum(p["elapsed"] for p in phases),
            "failed": sum(n for p in phases for s, n in p["statuses"].items() if int(s) >= 300),
            "errors": [e for p in phases for e in p["errors"]],
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
