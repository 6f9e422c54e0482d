"""The Store interface: intent-level operations, one per thing the API, the compat surfaces,
the dashboard and the CLI do. `relay.domain.service.RelayStore` implements it on either storage
engine. Every write returns only after it is committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from relay.domain.actions import Call
from relay.facts import NewEvent, NewMetric
from relay.keys import KeyRecord, Role
from relay.models.devices import Device, DeviceDetail, DevicePut
from relay.models.health import DataHealth
from relay.models.identity import Profile
from relay.models.outbox import OutboxRow, OutboxStatus, Settlement
from relay.models.push import DeliveryTrace
from relay.models.rejected import RejectedItem
from relay.retention import PruneResult
from relay.segments.query import SegmentQuery
from relay.store.sql.push import PushTarget
from relay.tracking_plan import TrackingPlan


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def check(self) -> str | None:
        """None when storage can read and write, else the reason it cannot."""

    # keys
    async def create_key(self, app_id: str, role: Role, name: str, secret: str) -> KeyRecord: ...
    async def list_keys(self) -> list[KeyRecord]: ...
    async def revoke_key(self, key_id: str) -> None: ...
    async def authenticate(self, secret: str) -> KeyRecord | None: ...

    # devices
    async def put_device(self, app_id: str, token: str, body: DevicePut) -> tuple[bool, Device]: ...
    async def refresh_device(self, app_id: str, old_token: str, new_token: str) -> Device: ...
    async def unregister_device(self, app_id: str, token: str) -> None: ...
    async def device_detail(self, app_id: str, token: str) -> DeviceDetail: ...

    # identity
    async def identify(
        self,
        app_id: str,
        customer_id: str,
        anonymous_id: str | None,
        email: str | None,
        attributes: Mapping[str, object] | None,
    ) -> None: ...
    async def merge_profiles(self, app_id: str, primary: str, secondary: str) -> Profile: ...
    async def delete_profile(self, app_id: str, customer_id: str) -> None: ...
    async def suppress_profile(self, app_id: str, customer_id: str, suppressed: bool) -> None: ...
    async def profile(self, app_id: str, customer_id: str) -> Profile: ...

    # facts
    async def ingest_metrics(self, app_id: str, metrics: list[NewMetric]) -> tuple[int, int]: ...
    async def ingest_events(
        self,
        app_id: str,
        events: list[NewEvent],
        violations: Mapping[tuple[str, str], int] | None = None,
    ) -> tuple[int, int, frozenset[str]]:
        """Store the new events; (accepted, duplicates, the client ids that were new).
        Duplicates and ``violations`` (what the door's plan checks found, (event, property) →
        items, refused ones included) go to the data-health counters in the same commit;
        ``events`` may then be empty."""

    # outbox (the forwarder's side; facts enqueue inside their own transactions)
    async def outbox_window(self, limit: int) -> list[OutboxRow]: ...
    async def settle_outbox(self, settlement: Settlement) -> None: ...
    async def outbox_status(self, app_id: str | None) -> OutboxStatus: ...
    async def replay_outbox(self, app_id: str | None) -> int: ...
    async def hold_forwarder_lease(self, holder: str, now: float, expires_at: float) -> bool:
        """Take or renew the lease that lets one process forward; False: another holds it."""

    async def release_forwarder_lease(self, holder: str) -> None: ...

    # segments
    def segment_rows(self, query: SegmentQuery) -> AsyncIterator[list[Any]]:
        """The query's rows in chunks, streamed from one consistent snapshot."""

    async def sync_segment(
        self, app_id: str, segment: str, query: SegmentQuery, customerio_segment_id: str | None
    ) -> tuple[int, int]:
        """Record the segment's members now; enqueue joins and leaves. (added, removed)"""

    # push
    async def push_targets(
        self, app_id: str, token: str | None = None, customer_id: str | None = None
    ) -> list[PushTarget]: ...
    async def record_test_delivery(
        self,
        app_id: str,
        delivery_id: str,
        title: str | None,
        body: str | None,
        deep_link: str | None,
    ) -> None: ...
    async def record_sent(self, app_id: str, delivery_id: str, tokens: list[str]) -> None: ...
    async def invalidate_device(
        self, app_id: str, token: str, reason: str, unregistered_at: float | None
    ) -> bool: ...
    async def mark_stale(self, cutoff: float) -> int: ...
    async def delivery_trace(self, app_id: str, delivery_id: str) -> DeliveryTrace: ...

    # Customer.io-compatible calls
    async def apply_calls(
        self,
        app_id: str,
        calls: list[Call],
        violations: Mapping[tuple[str, str], int] | None = None,
    ) -> list[Call]:
        """Apply each call once per message id, all in one commit; returns the new ones.
        Replayed events and metrics and ``violations`` go to the data-health counters."""

    async def backup(self, target: Path) -> int:
        """A consistent copy of the database at ``target``, taken while serving; its size."""

    async def rejected_items(self, app_id: str, limit: int) -> list[RejectedItem]:
        """The newest entries of the rejected-items log, newest first."""

    async def data_health(
        self, app_id: str, since: float, plan: TrackingPlan | None = None
    ) -> DataHealth:
        """The data-health report of the facts received since ``since`` (API.md)."""

    async def prune(self, now: float) -> PruneResult:
        """Delete metrics and events older than their ``[retention]`` horizon at ``now``, and
        the outbox items still waiting for them, in bounded chunks (writes go on meanwhile)."""

    # dashboard
    async def devices_by_status(self, app_id: str) -> list[tuple[str, str, int]]:
        """(platform, status, devices) of the app's devices, every combination present."""

    async def daily_token_changes(self, app_id: str, start: int, days: int) -> dict[str, list[int]]:
        """Per day from ``start`` (whole unix seconds): ``new``, ``replaced`` and ``invalid``
        tokens (see relay/store/sql/dashboard.py)."""
