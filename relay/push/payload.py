"""Push payloads in Customer.io's layout, so the Customer.io SDK on the device treats a relay
test push like a campaign push: renders it, opens its link and reports its metrics.

APNs: ``aps`` alert with ``mutable-content`` (lets the notification service extension run),
``CIO.push.link``/``image``, the delivery keys at the top level, ``data`` keys beside them.
FCM: a data message whose string map carries ``title``, ``body``, ``link``, ``image``, the
delivery keys and ``data`` (non-string values JSON-encoded). Both providers cap at 4 KB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_PAYLOAD_BYTES = 4096
DELIVERY_ID_KEY = "CIO-Delivery-ID"
DELIVERY_TOKEN_KEY = "CIO-Delivery-Token"


@dataclass(frozen=True, slots=True)
class PushMessage:
    title: str | None = None
    body: str | None = None
    deep_link: str | None = None
    image: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def apns_payload(message: PushMessage, delivery_id: str, token: str) -> dict[str, Any]:
    alert = {k: v for k, v in (("title", message.title), ("body", message.body)) if v}
    push = {k: v for k, v in (("link", message.deep_link), ("image", message.image)) if v}
    payload: dict[str, Any] = {
        **message.data,
        "aps": {"mutable-content": 1, "sound": "default", "alert": alert},
        DELIVERY_ID_KEY: delivery_id,
        DELIVERY_TOKEN_KEY: token,
    }
    if push:
        payload["CIO"] = {"push": push}
    return payload


def fcm_data(message: PushMessage, delivery_id: str, token: str) -> dict[str, str]:
    data = {
        key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in message.data.items()
    }
    for key, value in (
        ("title", message.title),
        ("body", message.body),
        ("link", message.deep_link),
        ("image", message.image),
    ):
        if value:
            data[key] = value
    data[DELIVERY_ID_KEY] = delivery_id
    data[DELIVERY_TOKEN_KEY] = token
    return data


def encoded_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
