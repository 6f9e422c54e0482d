"""JSON responses encoded by msgspec."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(value), content_type="application/json"
    )
