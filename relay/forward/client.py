"""Customer.io API clients: one HTTP request per call. Track uses Basic ``site_id:api_key``,
Pipelines Basic ``cdp_api_key:``.

They neither retry nor interpret answers; `policy.classify` does that, the worker acts.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from relay.settings import CustomerioSettings

REGION_HOSTS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}
PIPELINES_HOSTS = {"us": "https://cdp.customer.io/v1", "eu": "https://cdp-eu.customer.io/v1"}
BATCH_PATH = "/api/v2/batch"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # None: no HTTP answer (connection failed, timed out)
    body: Any
    retry_after: str | None
    seconds: float
    error: str = ""


def track_base_url(settings: CustomerioSettings) -> str:
    return (settings.track_url or REGION_HOSTS[settings.region]).rstrip("/")


def pipelines_base_url(settings: CustomerioSettings) -> str:
    return (settings.pipelines_url or PIPELINES_HOSTS[settings.region]).rstrip("/")


class ApiClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        username: str,
        password: str,
        timeout: float,
    ) -> None:
        self._session = session
        self._base_url = base_url
        credentials = f"{username}:{password}".encode()
        self._headers = {
            "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
            "Content-Type": "application/json",
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, method: str, path: str, body: bytes) -> Answer:
        started = time.perf_counter()
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                data=body,
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                text = await response.text()
                return Answer(
                    response.status,
                    _parse(text),
                    response.headers.get("Retry-After"),
                    time.perf_counter() - started,
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            return Answer(None, None, None, time.perf_counter() - started, error)


def _parse(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def track_client(
    session: aiohttp.ClientSession, settings: CustomerioSettings, timeout: float
) -> ApiClient:
    return ApiClient(session, track_base_url(settings), settings.site_id, settings.api_key, timeout)


def pipelines_client(
    session: aiohttp.ClientSession, settings: CustomerioSettings, timeout: float
) -> ApiClient | None:
    """None without a Pipelines source key: relay then forwards nothing through Pipelines."""
    if not settings.cdp_api_key:
        return None
    return ApiClient(session, pipelines_base_url(settings), settings.cdp_api_key, "", timeout)
