#!/usr/bin/env python3
"""Run the fake Customer.io (Track + Pipelines) locally until Ctrl-C, for manual QA.

    .venv/bin/python scripts/fake_customerio.py --port 9000 --site-id S --api-key K

Point relay's forwarder at http://127.0.0.1:9000. Every request is logged on one line (path,
status, operation count, validation errors). Inspect and script it over HTTP:

    curl -s localhost:9000/_fake/requests      # what arrived
    curl -s localhost:9000/_fake/operations    # what was accepted
    curl -s -X POST localhost:9000/_fake/script -d '[{"status": 429, "retry_after": 2}]'
    curl -s -X POST localhost:9000/_fake/reset

Needs relay installed with the ``test`` or ``bench`` extra (``pip install -e '.[test]'``, as
``scripts/bootstrap`` does): it imports from ``relay_fakes``, whose Customer.io fake validates
requests with jsonschema.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from relay_fakes.fake_customerio import FakeCustomerIO


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Local stand-in for Customer.io's ingest APIs.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to bind, 0 = any (9000)")
    parser.add_argument("--site-id", help="Track Site ID to require (unchecked if omitted)")
    parser.add_argument("--api-key", help="Track API key to require (unchecked if omitted)")
    parser.add_argument("--cdp-api-key", help="Pipelines API key to require (unchecked if omitted)")
    parser.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="skip OpenAPI validation of bodies (for load tests; limits and auth still apply)",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT/SIGTERM."""
    fake = FakeCustomerIO(
        site_id=args.site_id,
        api_key=args.api_key,
        cdp_api_key=args.cdp_api_key,
        validate=args.validate,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still interrupts
            loop.add_signal_handler(signum, stop.set)
    url = await fake.start(args.host, args.port)
    validation = "on" if args.validate else "off"
    logging.getLogger("fake_customerio").info("serving on %s (validation %s)", url, validation)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
