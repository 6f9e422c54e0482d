"""The Customer.io endpoints the fake serves, and the answer shapes each API family uses.

Kept apart from the server so the endpoint list reads as a table: which paths exist, which API
family answers (Track v1 and v2 and Pipelines shape their errors differently), and which
credentials each needs (Track's metric endpoints need none, per the Track document's
``security: []``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Family = Literal["v1", "v2", "cdp"]
Auth = Literal["track", "none", "cdp"]

# Per the Track and Pipelines documents: 32 KB per call / operation, 500 KB per batch. Read as
# decimal kilobytes, the stricter reading, so a client that passes here passes Customer.io.
MAX_BATCH_BYTES = 500_000
MAX_OPERATION_BYTES = 32_000


@dataclass(frozen=True)
class Route:
    """One Customer.io endpoint: ``template`` as written in the Track document or served by
    Pipelines (``/v1/track`` for the document's ``/track``)."""

    method: str
    template: str
    family: Family
    auth: Auth

    @property
    def is_batch(self) -> bool:
        return self.template in ("/api/v2/batch", "/v1/batch")

    @property
    def size_limited(self) -> bool:
        """Whether the documents put the 32 KB / 500 KB limits on this endpoint."""
        return self.family in ("v2", "cdp")


def _track_v1(method: str, template: str, auth: Auth = "track") -> Route:
    return Route(method, template, "v1", auth)


ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/v2/batch", "v2", "track"),
    Route("POST", "/api/v2/entity", "v2", "track"),
    _track_v1("PUT", "/api/v1/customers/{identifier}"),
    _track_v1("DELETE", "/api/v1/customers/{identifier}"),
    _track_v1("PUT", "/api/v1/customers/{identifier}/devices"),
    _track_v1("DELETE", "/api/v1/customers/{identifier}/devices/{device_id}"),
    _track_v1("POST", "/api/v1/customers/{identifier}/events"),
    _track_v1("POST", "/api/v1/events"),
    _track_v1("POST", "/api/v1/metrics", auth="none"),
    _track_v1("POST", "/api/v1/push/events", auth="none"),
    _track_v1("POST", "/api/v1/merge_customers"),
    _track_v1("POST", "/api/v1/segments/{segment_id}/add_customers"),
    _track_v1("POST", "/api/v1/segments/{segment_id}/remove_customers"),
    _track_v1("GET", "/api/v1/accounts/region"),
    *(
        Route("POST", f"/v1/{call}", "cdp", "cdp")
        for call in ("batch", "track", "identify", "screen", "alias", "page", "group")
    ),
)


def operations_of(route: Route, path: str, body: Any) -> list[Any]:
    """The operations a request carries, in order; ``Reply.failed_indexes`` index this list.

    v2 and Pipelines operations are self-describing and kept as sent (batch items one by one);
    a v1 call is only meaningful with its method and path, so it becomes
    ``{"v1": "<METHOD> <path>", "body": ...}``. Reads (the region lookup) carry none.
    """
    if route.method == "GET":
        return []
    if route.family == "v1":
        return [{"v1": f"{route.method} {path}", "body": body}]
    if route.is_batch:
        items = body.get("batch") if isinstance(body, dict) else None
        return list(items) if isinstance(items, list) else []
    return [body]


def error_body(family: Family, issues: Iterable[tuple[str, str]], reason: str = "invalid") -> Any:
    """A Customer.io-shaped error answer for ``(field, message)`` pairs.

    Track v2 documents ``{"errors": [{"reason", "field", "message"}]}``; Track v1 and Pipelines
    document ``{"meta": {"errors": ["..."]}}``.
    """
    pairs = list(issues)
    if family == "v2":
        return {
            "errors": [
                {"reason": reason, "field": field, "message": message} for field, message in pairs
            ]
        }
    return {
        "meta": {
            "errors": [f"{field}: {message}" if field else message for field, message in pairs]
        }
    }


def unauthorized_body() -> Any:
    """Neither document gives a 401 body; this is the shape Track's v1 answers use for one."""
    return {"meta": {"error": "Unauthorized request"}}


def partial_failure_body(failed_indexes: Iterable[int]) -> Any:
    """The documented 207 answer: one error per failed batch index, the rest accepted."""
    return {
        "errors": [
            {
                "batch_index": index,
                "reason": "invalid",
                "field": "identifiers",
                "message": "scripted failure",
            }
            for index in failed_indexes
        ]
    }
