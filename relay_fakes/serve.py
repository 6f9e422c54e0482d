"""``relay-fakes serve``: the APNs and FCM fakes on fixed local ports, answering as QA expects,
until SIGINT or SIGTERM.

Every token is delivered, except tokens starting with ``dead``: APNs answers them 410
``Unregistered`` (timestamp: now), FCM 404 ``UNREGISTERED``, so relay's dead-token path can be
tried too. The config is written only once both fakes listen, so its appearance means "ready".
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from relay_fakes.fake_apns import FakeAPNs
from relay_fakes.fake_fcm import FakeFCM
from relay_fakes.push_log import PushReporter
from relay_fakes.qa_config import (
    CONFIG_FILE_MODE,
    KEY_FILE_MODE,
    apps_block,
    key_path_beside,
    new_identity,
    write_atomically,
)

HOST = "127.0.0.1"
DEAD_TOKEN_PREFIX = "dead"

Request = TypeVar("Request")


class FakesError(Exception):
    """A reason to stop before serving (port in use, unwritable file), in one line."""


@dataclass(frozen=True)
class ServeOptions:
    apns_port: int
    fcm_port: int
    config_path: Path
    app_id: str


async def serve_fakes(options: ServeOptions, echo: Callable[[str], None]) -> None:
    """Serve until SIGINT/SIGTERM; raises :class:`FakesError` if the fakes cannot start."""
    stop = _stop_requested()
    identity = new_identity(options.app_id)
    reporter = PushReporter(echo)
    apns = FakeAPNs(
        key_id=identity.key_id,
        team_id=identity.team_id,
        public_key=identity.private_key.public_key(),
        topics={identity.topic},
        hex_tokens_only=False,  # QA registers made-up tokens; relay checks their characters
    )
    apns.answer_prefix(DEAD_TOKEN_PREFIX, 410)
    fcm = FakeFCM(project_id=identity.project_id)  # any bearer: relay's static test token
    fcm.answer_prefix(DEAD_TOKEN_PREFIX, "UNREGISTERED")
    apns.on_reply = _reported_then_forgotten(reporter.apns, apns)
    fcm.on_reply = _reported_then_forgotten(reporter.fcm, fcm)
    async with contextlib.AsyncExitStack() as running:
        apns_url = await _listen(apns.start, options.apns_port, "the APNs fake")
        running.push_async_callback(apns.stop)
        fcm_url = await _listen(fcm.start, options.fcm_port, "the FCM fake")
        running.push_async_callback(fcm.stop)
        key_path = key_path_beside(options.config_path, options.app_id)
        # The key first: a config must never name a key that is not there yet.
        _write("the signing key", key_path, identity.private_key_pem(), KEY_FILE_MODE)
        block = apps_block(identity, key_path, apns_url, fcm_url)
        _write("the config", options.config_path, block.encode("utf-8"), CONFIG_FILE_MODE)
        echo(f"relay-fakes: APNs fake (HTTP/2 without TLS) listening on {apns_url}")
        echo(f"relay-fakes: FCM v1 fake listening on {fcm_url}")
        echo(
            f"relay-fakes: wrote the [[apps]] block for app {options.app_id!r} to "
            f"{options.config_path.resolve()} (signing key {key_path})"
        )
        echo(
            f"relay-fakes: every token is delivered except tokens starting with "
            f"{DEAD_TOKEN_PREFIX!r} (unregistered); Ctrl-C stops"
        )
        await stop.wait()
    echo("relay-fakes: stopped")


def _stop_requested() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so both end in a clean shutdown and exit 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    return stop


async def _listen(start: Callable[[str, int], Awaitable[str]], port: int, what: str) -> str:
    try:
        return await start(HOST, port)
    except OSError as error:
        raise FakesError(f"cannot listen on {HOST}:{port} for {what}: {_reason(error)}") from None


def _write(what: str, path: Path, data: bytes, mode: int) -> None:
    try:
        write_atomically(path, data, mode)
    except OSError as error:
        raise FakesError(f"cannot write {what} {path}: {_reason(error)}") from None


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _reported_then_forgotten(
    report: Callable[[Request], None], fake: FakeAPNs | FakeFCM
) -> Callable[[Request], None]:
    """Report each push, then drop the fake's history: nothing reads it here, and a QA session
    that runs for days must not grow without bound."""

    def on_reply(request: Request) -> None:
        report(request)
        fake.requests.clear()
        fake.invalid.clear()

    return on_reply
