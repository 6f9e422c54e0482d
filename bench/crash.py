"""``python -m bench crash [--kills 20] [--clients 4] [--slow] [--postgresql URL --instances 2]``:
SIGKILL relay again and again under continuous ingest, then count what happened to every event
a client sent.

With ``--postgresql`` (an admin URL; the database ``relay_bench_crash`` is created afresh) and
``--instances N``, N relay processes share one PostgreSQL database; each kill takes one of them
(in turn) and restarts it, and a client whose process is down sends to the next one, as a load
balancer would. Their forwarder lease is 2 s, so a killed forwarder's turn passes quickly.

Clients send conversion events (each with a unique id and ``properties.seq``) to
``POST /v1/events``; a request that fails (relay killed under it) is sent again, same ids, until
relay answers 2xx. relay forwards to a local fake Customer.io (``--slow``: each of its answers
takes 0.2-0.5 s, so kills land mid-request). After the last kill relay runs until its outbox
is empty. Then:

- acknowledged: ids relay answered 2xx for (accepted or duplicate);
- stored: ids in relay's database (must include every acknowledged one);
- forwarded: ids the fake accepted at least once (must include every acknowledged one);
- duplicates upstream: accepted copies beyond the first (at most the batches in flight at
  each kill; Customer.io de-duplicates events by their ``id``).

Exit status 1 if anything acknowledged was not stored or not forwarded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench.common import Relay
from relay_fakes.fake_customerio import FakeCustomerIO, Reply

SITE_ID, API_KEY = "crash-site", "crash-key"
DATABASE = "relay_bench_crash"


async def run(
    kills: int, clients: int, slow: bool, interval: float, postgresql: str, instances: int
) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="relay-crash-"))
    storage_url = fresh_database(postgresql) if postgresql else ""
    async with FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY, validate=False) as fake:
        if slow:
            fake.script(*(Reply(delay=random.uniform(0.2, 0.5)) for _ in range(100_000)))
        relays = []
        for n in range(instances):
            (workdir / f"r{n}").mkdir()
            relays.append(forwarding_relay(workdir / f"r{n}", fake, 1, storage_url))
        for relay in relays:
            await asyncio.to_thread(relay.start)
        key = await asyncio.to_thread(create_key, relays[0])
        acknowledged: set[str] = set()
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            senders = [
                asyncio.create_task(send(session, relays, key, n, acknowledged, stop))
                for n in range(clients)
            ]
            for kill in range(kills):
                await asyncio.sleep(interval * random.uniform(0.5, 1.5))
                relay = relays[kill % instances]
                relay.process.kill()  # type: ignore[union-attr]
                relay.process.wait()  # type: ignore[union-attr]
                relay.process = None
                print(
                    f"kill {kill + 1}/{kills} (process {kill % instances}):"
                    f" {len(acknowledged)} acknowledged so far"
                )
                await asyncio.to_thread(relay.start)
            stop.set()
            await asyncio.gather(*senders)
            if slow:
                fake.clear_script()  # answer the drain quickly
            started = time.monotonic()
            while await pending(session, relays[0], key) and time.monotonic() - started < 300:  # noqa: ASYNC110 - polls relay over HTTP
                await asyncio.sleep(0.5)
        for relay in relays:
            await asyncio.to_thread(relay.stop)
        # relay forwards with an operation id of its own: match by the event's properties
        forwarded = Counter(
            str(op.get("attributes", {}).get("event"))
            for request in fake.requests
            for op in request.accepted
            if isinstance(op, dict) and op.get("action") == "event"
        )
    stored = stored_ids(storage_url or f"sqlite:///{workdir / 'r0' / 'relay.db'}")
    return report(kills, acknowledged, stored, forwarded)


def fresh_database(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)".encode())
        admin.execute(f"CREATE DATABASE {DATABASE}".encode())
    return f"{admin_url.rpartition('/')[0]}/{DATABASE}"


def forwarding_relay(
    workdir: Path, fake: FakeCustomerIO, retry_max_seconds: float, storage_url: str = ""
) -> Relay:
    """relay in ``workdir``, forwarding to ``fake`` with quick retries."""
    return Relay(
        workdir / "relay.db",
        workdir,
        storage_url=storage_url,
        extra_config=(
            f'[customerio]\nsite_id = "{SITE_ID}"\napi_key = "{API_KEY}"\n'
            f'track_url = "{fake.url}"\n\n[forwarding]\nretry_initial_seconds = 0.1\n'
            f"retry_max_seconds = {retry_max_seconds}\nmax_requests_per_second = 1000\n"
            "lease_seconds = 2\n"
        ),
    )


def create_key(relay: Relay) -> str:
    import subprocess

    config = relay.workdir / "relay.toml"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "relay",
            "keys",
            "create",
            "--role",
            "admin",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


async def send(
    session: aiohttp.ClientSession,
    relays: list[Relay],
    key: str,
    client: int,
    acknowledged: set[str],
    stop: asyncio.Event,
) -> None:
    seq = 0
    while not stop.is_set():
        ids = [f"c{client}-e{seq + i}" for i in range(20)]
        seq += 20
        body = {
            "events": [
                {
                    "id": i,
                    "name": "Order Completed",
                    "customer_id": f"cust-{client}",
                    "properties": {"event": i},
                }
                for i in ids
            ]
        }
        target = client
        while True:  # until relay answers: what it did not answer, the client still has
            relay = relays[target % len(relays)]
            target += 1  # a retry goes to the next process, as a load balancer would send it
            try:
                async with session.post(
                    relay.url + "/v1/events",
                    json=body,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    if response.status == 200:
                        acknowledged.update(ids)
                        break
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)


async def pending(session: aiohttp.ClientSession, relay: Relay, key: str) -> int:
    async with session.get(
        relay.url + "/v1/outbox", headers={"Authorization": f"Bearer {key}"}
    ) as response:
        return int((await response.json())["pending"])


def stored_ids(url: str) -> set[str]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return {row[0] for row in conn.execute("SELECT client_id FROM events")}
    import psycopg

    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT client_id FROM events")}


def report(kills: int, acknowledged: set[str], stored: set[str], forwarded: Counter[str]) -> int:
    lost_storage = acknowledged - stored
    lost_upstream = acknowledged - set(forwarded)
    duplicates = sum(n - 1 for n in forwarded.values())
    figures = {
        "kills": kills,
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "acknowledged but not stored": len(lost_storage),
        "forwarded (distinct)": len(forwarded),
        "acknowledged but not forwarded": len(lost_upstream),
        "duplicate copies upstream": duplicates,
    }
    print(json.dumps(figures, indent=2))
    return 1 if lost_storage or lost_upstream else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench crash", description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between kills")
    parser.add_argument("--slow", action="store_true", help="Customer.io answers slowly")
    parser.add_argument(
        "--postgresql", default="", help="admin URL: run on PostgreSQL instead of SQLite"
    )
    parser.add_argument("--instances", type=int, default=1, help="relay processes (PostgreSQL)")
    args = parser.parse_args(argv)
    if args.instances > 1 and not args.postgresql:
        parser.error("--instances > 1 needs --postgresql (processes share one database)")
    return asyncio.run(
        run(args.kills, args.clients, args.slow, args.interval, args.postgresql, args.instances)
    )
