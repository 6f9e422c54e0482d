"""The lifecycle every aiohttp-based fake shares: serve on a local port, stop, ``async with``."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LocalAiohttpServer:
    """Subclasses provide :meth:`app`; this serves it on ``host:port`` (0: any free port)."""

    _runner: web.AppRunner | None = None
    _url: str | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port``; returns :attr:`url`."""
        if self._runner is not None:
            raise RuntimeError("already started")
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._url = f"http://{host if host not in ('0.0.0.0', '::') else bound_host}:{bound_port}"
        return self._url

    async def stop(self) -> None:
        """Stop serving; requests still sleeping in a scripted delay get about a second."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server (no trailing slash)."""
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._url

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
