"""`RelayStore`: each Store operation as jobs (the domain's rules, relay/domain/*.py) on the
engine the ``[storage] url`` names — SQLite's or PostgreSQL's (docs/architecture.md)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from relay import health as data_health_report
from relay import timeutil
from relay.domain import compat, devices, identity, ingest, retention, segments
from relay.domain.actions import Call
from relay.domain.conversions import AttributionRules
from relay.domain.key_cache import KeyCache
from relay.errors import CannotStart
from relay.facts import NewEvent, NewMetric
from relay.keys import KeyRecord, Role, hash_secret, hashes_match, new_key_id
from relay.models.devices import Device, DeviceDetail, DevicePut
from relay.models.health import DataHealth
from relay.models.identity import Profile
from relay.models.outbox import OutboxRow, OutboxStatus, Settlement
from relay.models.push import DeliveryTrace
from relay.models.rejected import RejectedItem
from relay.retention import FactKind, Horizons, PruneResult
from relay.segments.query import SegmentQuery
from relay.settings import Settings
from relay.store.connection import Connection
from relay.store.dialect import SQLITE
from relay.store.postgres.engine import PgEngine
from relay.store.sql import dashboard, health, keys, outbox, push, queries, rejected
from relay.store.sql.records import device_model
from relay.store.sql.segment_sql import segment_sql
from relay.store.sqlite import backup
from relay.store.sqlite.engine import Engine
from relay.store.writer import WriteObserver
from relay.tracking_plan import TrackingPlan

# Devices per write transaction of the token-hygiene scan: milliseconds each.
STALE_SCAN_CHUNK = 10_000
# Rows per write transaction of a prune: short enough that the ingest requests committing in
# the same group (and those queued behind it) barely notice.
PRUNE_CHUNK = 5_000


class RelayStore:
    def __init__(self, settings: Settings, on_commit: WriteObserver | None = None) -> None:
        self._rules = AttributionRules(
            settings.attribution.conversion_events, settings.attribution.window_hours * 3600
        )
        self.engine: Engine | PgEngine
        if settings.storage.engine == "postgresql":
            self.engine = PgEngine(
                settings.storage.url, pool_size=settings.storage.pool_size, on_commit=on_commit
            )
        else:
            self.engine = Engine(
                settings.storage.sqlite_path,
                synchronous=settings.storage.synchronous,
                read_connections=settings.storage.read_connections,
                on_commit=on_commit,
            )
        self._retention = settings.retention
        self._keys = KeyCache()

    async def open(self) -> None:
        await self.engine.open()

    async def close(self) -> None:
        await self.engine.close()

    async def check(self) -> str | None:
        if not self.engine.is_open:
            return "storage is not open"
        if self.engine.fault is not None:
            return f"storage cannot commit: {self.engine.fault}"
        try:
            await self.engine.read(queries.ping)
        except Exception as exc:
            return f"storage read failed: {exc}"
        return None

    async def create_key(self, app_id: str, role: Role, name: str, secret: str) -> KeyRecord:
        record = KeyRecord(new_key_id(), app_id, role, name, timeutil.now())
        await self._change_keys(
            functools.partial(keys.insert_key, key=record, secret_hash=hash_secret(secret))
        )
        return record

    async def list_keys(self) -> list[KeyRecord]:
        return await self.engine.read(keys.list_keys)

    async def revoke_key(self, key_id: str) -> None:
        await self._change_keys(lambda conn: keys.revoke_key(conn, key_id, timeutil.now()))

    async def _change_keys(self, job: Callable[[Connection], None]) -> None:
        try:
            await self.engine.write(job)
        finally:
            # Even when the write failed: it may have failed after its COMMIT got through.
            self.engine.keys_changed()  # other processes (SQLite: after the commit)
            self._keys.invalidate()  # this one, at once

    async def authenticate(self, secret: str) -> KeyRecord | None:
        presented = hash_secret(secret)
        stamp = self._keys.stamp(self.engine.keys_generation)
        found = self._keys.get(presented, stamp)
        if found is None:
            found = await self.engine.read_point(lambda conn: keys.find_active_key(conn, presented))
            if found is not None:
                self._keys.put(presented, found, stamp)
        if found is None or not hashes_match(found[1], presented):
            return None
        return found[0]

    async def put_device(self, app_id: str, token: str, body: DevicePut) -> tuple[bool, Device]:
        def job(conn):  # type: ignore[no-untyped-def]
            created, row = devices.put_device(
                conn, app_id, token, body, timeutil.now(), self._rules
            )
            return created, device_model(conn, row)

        return await self.engine.write(job)

    async def refresh_device(self, app_id: str, old_token: str, new_token: str) -> Device:
        def job(conn):  # type: ignore[no-untyped-def]
            row = devices.refresh_device(
                conn, app_id, old_token, new_token, timeutil.now(), self._rules
            )
            return device_model(conn, row)

        return await self.engine.write(job)

    async def unregister_device(self, app_id: str, token: str) -> None:
        await self.engine.write(
            lambda conn: devices.unregister_device(conn, app_id, token, timeutil.now())
        )

    async def device_detail(self, app_id: str, token: str) -> DeviceDetail:
        return await self.engine.read(lambda conn: queries.device_detail(conn, app_id, token))

    async def identify(
        self,
        app_id: str,
        customer_id: str,
        anonymous_id: str | None,
        email: str | None,
        attributes: Mapping[str, object] | None,
    ) -> None:
        await self.engine.write(
            lambda conn: identity.identify(
                conn,
                app_id,
                customer_id,
                anonymous_id,
                email,
                attributes,
                timeutil.now(),
                self._rules,
            )
        )

    async def merge_profiles(self, app_id: str, primary: str, secondary: str) -> Profile:
        def job(conn):  # type: ignore[no-untyped-def]
            identity.merge_profiles(conn, app_id, primary, secondary, timeutil.now(), self._rules)
            return queries.profile(conn, app_id, primary, self._rules.conversion_events)

        return await self.engine.write(job)

    async def delete_profile(self, app_id: str, customer_id: str) -> None:
        def job(conn):  # type: ignore[no-untyped-def]
            identity.require_profile(conn, app_id, customer_id)
            identity.delete_person(conn, app_id, customer_id, timeutil.now())

        await self.engine.write(job)

    async def suppress_profile(self, app_id: str, customer_id: str, suppressed: bool) -> None:
        def job(conn):  # type: ignore[no-untyped-def]
            identity.require_profile(conn, app_id, customer_id)
            identity.set_suppressed(conn, app_id, customer_id, suppressed, timeutil.now())

        await self.engine.write(job)

    async def profile(self, app_id: str, customer_id: str) -> Profile:
        return await self.engine.read(
            lambda conn: queries.profile(conn, app_id, customer_id, self._rules.conversion_events)
        )

    async def ingest_metrics(self, app_id: str, metrics: list[NewMetric]) -> tuple[int, int]:
        # Concurrent requests of one app are stored together (`GroupCommitter.write_merged`).
        counts: tuple[int, int] = await self.engine.write_merged(
            self._ingest_metric_requests, app_id, metrics
        )
        return counts

    def _ingest_metric_requests(
        self, conn: Connection, app_id: str, requests: list[list[NewMetric]]
    ) -> list[tuple[int, int]]:
        now = timeutil.now()
        counts = ingest.ingest_metric_requests(conn, app_id, requests, now, self._rules)
        duplicates = sum(duplicates for _, duplicates in counts)
        health.count_at_door(conn, app_id, now, "metrics", duplicates, None)
        return counts

    async def ingest_events(
        self,
        app_id: str,
        events: list[NewEvent],
        violations: Mapping[tuple[str, str], int] | None = None,
    ) -> tuple[int, int, frozenset[str]]:
        def job(conn):  # type: ignore[no-untyped-def]
            now = timeutil.now()
            accepted, duplicates, new_ids = (
                ingest.ingest_events(conn, app_id, events, now, self._rules)
                if events
                else (0, 0, frozenset())
            )
            health.count_at_door(conn, app_id, now, "events", duplicates, violations)
            return accepted, duplicates, new_ids

        return await self.engine.write(job)

    async def data_health(
        self, app_id: str, since: float, plan: TrackingPlan | None = None
    ) -> DataHealth:
        rows = await self.engine.read(lambda conn: health.rows(conn, app_id, since))
        return data_health_report.assemble(
            rows, plan, self._rules.conversion_events, self._rules.window_seconds / 3600
        )

    async def outbox_window(self, limit: int) -> list[OutboxRow]:
        return await self.engine.read(lambda conn: outbox.pending_window(conn, limit))

    async def settle_outbox(self, settlement: Settlement) -> None:
        if settlement:
            await self.engine.write(lambda conn: outbox.settle(conn, settlement))

    async def outbox_status(self, app_id: str | None) -> OutboxStatus:
        return await self.engine.read(lambda conn: outbox.status(conn, app_id, timeutil.now()))

    async def replay_outbox(self, app_id: str | None) -> int:
        return await self.engine.write(lambda conn: outbox.replay(conn, app_id, timeutil.now()))

    async def hold_forwarder_lease(self, holder: str, now: float, expires_at: float) -> bool:
        # An embedded database has one relay process: after a crash, the restarted process
        # takes over at once instead of waiting out the dead one's lease.
        if self.engine.dialect is SQLITE:
            now = float("inf")
        return await self.engine.write(
            lambda conn: outbox.hold_lease(conn, holder, now, expires_at)
        )

    async def release_forwarder_lease(self, holder: str) -> None:
        await self.engine.write(lambda conn: outbox.release_lease(conn, holder))

    def segment_rows(self, query: SegmentQuery) -> AsyncIterator[list[Any]]:
        sql = segment_sql(query, self.engine.dialect)
        return self.engine.stream(sql, query.params)

    async def sync_segment(
        self, app_id: str, segment: str, query: SegmentQuery, customerio_segment_id: str | None
    ) -> tuple[int, int]:
        return await self.engine.write(
            lambda conn: segments.sync_members(
                conn, app_id, segment, query, customerio_segment_id, timeutil.now()
            )
        )

    async def push_targets(
        self, app_id: str, token: str | None = None, customer_id: str | None = None
    ) -> list[push.PushTarget]:
        return await self.engine.read(
            lambda conn: push.push_targets(conn, app_id, token, customer_id)
        )

    async def record_test_delivery(
        self,
        app_id: str,
        delivery_id: str,
        title: str | None,
        body: str | None,
        deep_link: str | None,
    ) -> None:
        await self.engine.write(
            lambda conn: push.record_test_delivery(
                conn, app_id, delivery_id, title, body, deep_link, timeutil.now()
            )
        )

    async def record_sent(self, app_id: str, delivery_id: str, tokens: list[str]) -> None:
        await self.engine.write(
            lambda conn: push.record_sent(conn, app_id, delivery_id, tokens, timeutil.now())
        )

    async def invalidate_device(
        self, app_id: str, token: str, reason: str, unregistered_at: float | None
    ) -> bool:
        return await self.engine.write(
            lambda conn: devices.invalidate_device(
                conn, app_id, token, reason, unregistered_at, timeutil.now()
            )
        )

    async def mark_stale(self, cutoff: float) -> int:
        marked = 0
        after_id: int | None = 0
        while after_id is not None:
            chunk = functools.partial(
                push.mark_stale, cutoff=cutoff, after_id=after_id, limit=STALE_SCAN_CHUNK
            )
            count, after_id = await self.engine.write(chunk)
            marked += count
        return marked

    async def delivery_trace(self, app_id: str, delivery_id: str) -> DeliveryTrace:
        return await self.engine.read(lambda conn: push.delivery_trace(conn, app_id, delivery_id))

    async def apply_calls(
        self,
        app_id: str,
        calls: list[Call],
        violations: Mapping[tuple[str, str], int] | None = None,
    ) -> list[Call]:
        return await self.engine.write(
            lambda conn: compat.apply_calls(
                conn, app_id, calls, timeutil.now(), self._rules, violations
            )
        )

    async def backup(self, target: Path) -> int:
        if not isinstance(self.engine, Engine):
            raise CannotStart(
                "relay backup copies a SQLite database; back up PostgreSQL with pg_dump"
            )
        return await self.engine.read(lambda conn: backup.backup_into(conn, target))

    async def rejected_items(self, app_id: str, limit: int) -> list[RejectedItem]:
        return await self.engine.read(lambda conn: rejected.newest(conn, app_id, limit))

    async def prune(self, now: float) -> PruneResult:
        horizons = Horizons.at(self._retention, now)
        if horizons.metrics is None and horizons.events is None:
            return PruneResult()
        metrics = events = 0
        if horizons.metrics is not None:
            metrics = await self._delete_older("metrics", horizons.metrics)
        if horizons.events is not None:
            events = await self._delete_older("events", horizons.events)
        if horizons.metrics is not None and horizons.events is not None:
            before = min(horizons.metrics, horizons.events)
            await self.engine.write(lambda conn: retention.delete_counters(conn, before))
        return PruneResult(metrics, events, await self._expire_outbox(horizons))

    async def _delete_older(self, table: FactKind, before: float) -> int:
        """One write per chunk, so ingest commits between them."""
        deleted = 0
        while True:
            chunk = functools.partial(
                retention.delete_older, table=table, before=before, limit=PRUNE_CHUNK
            )
            count = await self.engine.write(chunk)
            deleted += count
            if count < PRUNE_CHUNK:
                return deleted

    async def _expire_outbox(self, horizons: Horizons) -> int:
        """The outbox in seq order, a chunk per write (see relay/store/sql/retention.py)."""
        expired = 0
        after_seq: int | None = 0
        while after_seq is not None:
            chunk = functools.partial(
                retention.expire_outbox,
                metrics_before=horizons.metrics,
                events_before=horizons.events,
                after_seq=after_seq,
                limit=PRUNE_CHUNK,
            )
            count, after_seq = await self.engine.write(chunk)
            expired += count
        return expired

    # dashboard
    async def devices_by_status(self, app_id: str) -> list[tuple[str, str, int]]:
        return await self.engine.read(lambda conn: dashboard.devices_by_status(conn, app_id))

    async def daily_token_changes(self, app_id: str, start: int, days: int) -> dict[str, list[int]]:
        return await self.engine.read(
            lambda conn: dashboard.daily_token_changes(conn, app_id, start, days)
        )
