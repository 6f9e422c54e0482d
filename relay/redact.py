"""Device tokens never appear whole outside the devices table: logs, the rejected-items log."""

from __future__ import annotations

from typing import Any

# Keys under which Customer.io and relay payloads carry a device token.
TOKEN_KEYS = frozenset({"token", "recipient", "device_token", "new_token", "device_id"})


def mask_token(token: str) -> str:
    """``abcd…wxyz``: enough to tell tokens apart, never enough to send to one."""
    return f"{token[:4]}…{token[-4:]}" if len(token) > 12 else "…"


def mask_tokens(value: Any) -> Any:
    """A copy of a JSON value with every string under a token key masked."""
    if isinstance(value, dict):
        return {
            key: mask_token(item)
            if key in TOKEN_KEYS and isinstance(item, str)
            else mask_tokens(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_tokens(item) for item in value]
    return value
