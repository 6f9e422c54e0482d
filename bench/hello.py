"""The hello-world baseline: a bare aiohttp handler, served and measured the way relay is."""

from __future__ import annotations

import argparse

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, World!")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hello")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/v1/metrics", hello)
    app.router.add_get("/readyz", hello)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
