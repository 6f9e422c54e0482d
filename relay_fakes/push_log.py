"""One line per push the fakes receive, so QA sees what a device would have got.

Device tokens never appear whole (as in relay's own logs): the token and any copy of it inside
the payload (``CIO-Delivery-Token``) are shown as ``abcd…wxyz``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from relay_fakes.fake_apns import APNsRequest
from relay_fakes.fake_fcm import FCMRequest

# What an Android app receives of an FCM message; the rest (android.priority...) is transport.
FCM_DEVICE_FIELDS = ("notification", "data")


def mask_token(token: str) -> str:
    """``abcd…wxyz``: enough to tell tokens apart, never enough to send to one."""
    return f"{token[:4]}…{token[-4:]}" if len(token) > 12 else "…"


def masked(value: Any, token: str) -> Any:
    """A copy of a JSON value with every occurrence of ``token`` in its strings masked."""
    if isinstance(value, dict):
        return {key: masked(item, token) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item, token) for item in value]
    if isinstance(value, str) and token:
        return value.replace(token, mask_token(token))
    return value


def apns_line(request: APNsRequest) -> str:
    if request.status == 200:
        outcome = "200 delivered"
    elif request.status == 410:
        outcome = f"410 {request.reason} (unregistered)"
    else:
        outcome = f"{request.status} {request.reason} (refused)"
    return _line("apns", request.token, outcome, request.payload)


def fcm_line(request: FCMRequest) -> str:
    if request.status == 200:
        outcome = (
            "200 validated (dry run, not delivered)" if request.validate_only else "200 delivered"
        )
    elif request.error == "UNREGISTERED":
        outcome = f"{request.status} UNREGISTERED (unregistered)"
    else:
        outcome = f"{request.status} {request.error or 'invalid request'} (refused)"
    message = request.message or {}
    payload = {key: message[key] for key in FCM_DEVICE_FIELDS if key in message}
    return _line("fcm", request.target or "", outcome, payload)


def _line(platform: str, token: str, outcome: str, payload: Any) -> str:
    shown = json.dumps(masked(payload, token), ensure_ascii=False, separators=(",", ":"))
    at = time.strftime("%H:%M:%S")
    return f"{at} {platform} push to {mask_token(token)}: {outcome}; payload {shown}"


class PushReporter:
    """Writes a line per push through ``echo``; a closed terminal must not fail the push."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo

    def apns(self, request: APNsRequest) -> None:
        self._write(apns_line(request))

    def fcm(self, request: FCMRequest) -> None:
        self._write(fcm_line(request))

    def _write(self, line: str) -> None:
        # stdout gone (terminal closed, pipe reader exited): keep answering pushes all the same.
        with contextlib.suppress(OSError, ValueError):
            self._echo(line)
