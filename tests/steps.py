"""Steps the HTTP specification tests share: register, report, read back, compare.

Each step asserts the answer it needs, so a test reads as the behaviour it specifies.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from tests.support import Answer, Api

DEVICE_FIELDS = {
    "token",
    "app_id",
    "platform",
    "status",
    "customer_id",
    "anonymous_id",
    "push_enabled",
    "environment",
    "first_seen",
    "last_seen",
    "token_updated_at",
    "invalid_reason",
    "replaced_by",
    "counts",
}
COUNT_FIELDS = ("sent", "delivered", "opened", "tapped", "deep_link_failed", "converted")

_ids = itertools.count(1)


async def register(api: Api, token: str, expect: int | None = None, **fields: Any) -> Answer:
    answer = await api.put(f"/v1/devices/{token}", {"platform": "ios", **fields})
    if expect is not None:
        assert answer.status == expect, answer.text
    return answer


async def identify(api: Api, customer_id: str, **fields: Any) -> Answer:
    answer = await api.post("/v1/identify", {"customer_id": customer_id, **fields})
    assert answer.status == 200, answer.text
    return answer


async def report(api: Api, token: str, *kinds: str, timestamps: list[float] | None = None) -> None:
    """Report one metric per kind for ``token``, each with a fresh id."""
    items = []
    for index, kind in enumerate(kinds):
        item: dict[str, Any] = {"id": f"m-{next(_ids)}", "metric": kind, "token": token}
        if timestamps is not None:
            item["timestamp"] = timestamps[index]
        items.append(item)
    answer = await api.post("/v1/metrics", {"metrics": items})
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == len(kinds), answer.body


async def send_event(api: Api, name: str = "Order Completed", **who: Any) -> None:
    event = {"id": f"e-{next(_ids)}", "name": name, **who}
    answer = await api.post("/v1/events", {"events": [event]})
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == 1, answer.body


async def merge(admin: Api, primary: str, secondary: str) -> Answer:
    return await admin.post("/v1/profiles/merge", {"primary": primary, "secondary": secondary})


async def device(admin: Api, token: str) -> dict[str, Any]:
    answer = await admin.get(f"/v1/devices/{token}")
    assert answer.status == 200, answer.text
    return dict(answer.body)


async def profile(admin: Api, customer_id: str) -> dict[str, Any]:
    answer = await admin.get(f"/v1/profiles/{customer_id}")
    assert answer.status == 200, answer.text
    return dict(answer.body)


def counts(**given: int) -> dict[str, int]:
    return {name: given.get(name, 0) for name in COUNT_FIELDS}


def counts_of(thing: dict[str, Any]) -> dict[str, int]:
    return {name: thing["counts"][name] for name in COUNT_FIELDS}


def tokens_of(profile_body: dict[str, Any]) -> set[str]:
    return {d["token"] for d in profile_body["devices"]}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def error_paths(answer: Answer) -> list[str]:
    return [e["path"] for e in answer.body.get("errors", [])]
