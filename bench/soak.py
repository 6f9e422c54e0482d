"""``python -m bench soak [--minutes 30] [--rate 100]``: relay under steady load for a long
time, forwarding to a local fake Customer.io that fails now and then; prints relay's RSS, open
files and outbox every ``--every`` seconds, so memory that grows without bound shows.

Load: ``--rate`` requests a second, each 10 push metrics with delivery ids, from one client.
Every fifth minute Customer.io answers 503 for 30 s (the outbox grows, then drains).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import mb, rss
from bench.crash import API_KEY, SITE_ID, create_key, forwarding_relay
from relay_fakes.fake_customerio import FakeCustomerIO, Reply

OUTAGE_EVERY_S, OUTAGE_FOR_S = 300.0, 30.0


async def run(minutes: float, rate: float, every: float) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="relay-soak-"))
    async with FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY, validate=False) as fake:
        relay = forwarding_relay(workdir, fake, retry_max_seconds=5)
        await asyncio.to_thread(relay.start)
        key = await asyncio.to_thread(create_key, relay)
        token = "soak-device-token-0001"
        headers = {"Authorization": f"Bearer {key}"}
        ends = time.monotonic() + minutes * 60
        print(f"{'minute':>7} {'rss':>9} {'fds':>5} {'pending':>8} {'sent':>9} {'errors':>6}")
        async with aiohttp.ClientSession() as session:
            await session.put(
                f"{relay.url}/v1/devices/{token}",
                json={"platform": "ios", "customer_id": "c1"},
                headers=headers,
            )
            sent = errors = 0
            started = next_sample = next_outage = time.monotonic()
            next_outage, recovery = next_outage + OUTAGE_EVERY_S, float("inf")
            while time.monotonic() < ends:
                now = time.monotonic()
                if now >= next_outage:  # Customer.io down: every request 503 until recovery
                    fake.script(*(Reply(status=503) for _ in range(1_000_000)))
                    recovery, next_outage = now + OUTAGE_FOR_S, next_outage + OUTAGE_EVERY_S
                if now >= recovery:
                    fake.clear_script()
                    recovery = float("inf")
                body = {
                    "metrics": [
                        {
                            "id": f"m{sent}-{i}",
                            "metric": "delivered",
                            "token": token,
                            "delivery_id": f"d{sent}",
                        }
                        for i in range(10)
                    ]
                }
                try:
                    async with session.post(
                        relay.url + "/v1/metrics", json=body, headers=headers
                    ) as response:
                        errors += response.status != 200
                except aiohttp.ClientError:
                    errors += 1
                sent += 1
                if now >= next_sample:
                    async with session.get(relay.url + "/v1/outbox", headers=headers) as out:
                        waiting = (await out.json())["pending"]
                    fds = len(os.listdir(f"/proc/{relay.pid}/fd"))
                    print(
                        f"{(now - started) / 60:7.1f} {mb(rss(relay.pid)):>9} {fds:5d} "
                        f"{waiting:8d} {sent:9d} {errors:6d}",
                        flush=True,
                    )
                    next_sample += every
                await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - now)))
        await asyncio.to_thread(relay.stop)
    return 1 if errors else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=100, help="requests a second")
    parser.add_argument("--every", type=float, default=60, help="seconds between samples")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.minutes, args.rate, args.every))
