"""The Customer.io stand-in in its own process: `FakeCustomerIO(validate=False)` over HTTPS.

Track (v1, v2) and Pipelines endpoints, auth and size limits as in the tests, but no schema
validation (it costs ~0.4 ms per operation). ``GET /_bench/stats`` answers the counts a
benchmark needs without shipping every recorded request: operations accepted, requests by
status, rejected requests, and the monotonic clock of the first request's arrival and of the
last answer (CLOCK_MONOTONIC is system-wide, so callers compare it with their own).
"""

from __future__ import annotations

import argparse
import ssl
import time

from aiohttp import web

from relay_fakes.fake_customerio import FakeCustomerIO

SITE_ID = "bench-site"
API_KEY = "bench-key"
CDP_API_KEY = "bench-cdp-key"


def build(fake: FakeCustomerIO) -> web.Application:
    app = fake.app()
    clock = {"first": None, "last": None}

    @web.middleware
    async def stats(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path == "/_bench/stats":
            statuses: dict[str, int] = {}
            for record in fake.requests:
                statuses[str(record.status)] = statuses.get(str(record.status), 0) + 1
            return web.json_response(
                {
                    "accepted": sum(len(r.accepted) for r in fake.requests),
                    "requests": len(fake.requests),
                    "statuses": statuses,
                    "invalid": len(fake.invalid),
                    "invalid_sample": fake.invalid[:3],
                    "first": clock["first"],
                    "last": clock["last"],
                }
            )
        if request.path == "/_bench/reset":
            fake.reset()
            clock["first"] = clock["last"] = None
            return web.json_response({})
        if clock["first"] is None:
            clock["first"] = time.monotonic()
        response = await handler(request)
        clock["last"] = time.monotonic()
        return response

    app.middlewares.append(stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.standin")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    fake = FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY, cdp_api_key=CDP_API_KEY, validate=False)
    web.run_app(
        build(fake),
        host="127.0.0.1",
        port=args.port,
        ssl_context=context,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
