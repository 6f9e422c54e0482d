"""``python -m bench plan-cost [--rounds 5] [--events 50000]``: what the tracking-plan checks
cost batched event ingest. Interleaved A/B of one checkout: relay without a plan, then with
`config/tracking-plan.example.toml` in report mode, round after round, each on a fresh
database; 16 clients post batches of 100 `Order Completed` events (valid for the plan, so the
check runs in full). Prints every round, the medians and their ratio."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import Relay

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "config" / "tracking-plan.example.toml"
CLIENTS, BATCH = 16, 100


def measure(work: Path, plan: bool, events: int, prefix: str) -> float:
    """Events stored per second by a fresh relay (with or without the plan)."""
    work.mkdir()
    extra = f'[tracking_plan]\npath = "{PLAN}"\nmode = "report"\n' if plan else ""
    with Relay(work / "relay.db", work, extra_config=extra) as relay:
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "relay",
                "keys",
                "create",
                "--role",
                "app",
                "--config",
                str(work / "relay.toml"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        key = created.stdout.strip().splitlines()[-1]
        return asyncio.run(post(relay.url, key, events, prefix))


async def post(url: str, key: str, events: int, prefix: str) -> float:
    requests = [
        {
            "events": [
                {
                    "id": f"{prefix}-{start + i}",
                    "name": "Order Completed",
                    "customer_id": f"c{(start + i) % 1000}",
                    "properties": {"order_id": f"o{start + i}", "total": 42.5, "currency": "EUR"},
                }
                for i in range(BATCH)
            ]
        }
        for start in range(0, events, BATCH)
    ]
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for body in requests:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {key}"}

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(url + "/v1/events", json=body, headers=headers) as answer:
                assert answer.status == 200, await answer.text()

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
        return events / (time.perf_counter() - started)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench plan-cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args(argv)
    rates: dict[str, list[float]] = {"no plan": [], "plan": []}
    with tempfile.TemporaryDirectory(prefix="relay-plan-cost-") as tmp:
        for round_ in range(args.rounds):
            for name in rates:
                work = Path(tmp) / f"r{round_}-{name.replace(' ', '-')}"
                rate = measure(work, name == "plan", args.events, f"r{round_}")
                rates[name].append(rate)
                print(f"round {round_} {name}: {rate:,.0f} events/s", flush=True)
    without, with_plan = (statistics.median(rates[name]) for name in ("no plan", "plan"))
    print(f"median without a plan: {without:,.0f} events/s; with: {with_plan:,.0f} events/s")
    print(f"the checks cost {(1 - with_plan / without) * 100:.1f} % of batched event ingest")
    return 0
