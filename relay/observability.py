"""Prometheus metrics, one registry per application (no module-level state)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from relay.tracking_plan import PlanCheck, TrackingPlan, json_type

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# Any token is a method to HTTP: others are counted as one label, so that a client cannot
# grow /metrics (or the children cached for it) without bound.
REQUEST_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "relay_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "relay_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.ingested = Counter(
            "relay_ingested_items",
            "Metrics and events received, by kind and outcome (accepted, duplicate, rejected).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "relay_storage_write_duration_seconds",
            "Time to run and commit one group-committed storage transaction.",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.commit_jobs = Histogram(
            "relay_storage_jobs_per_commit",
            "Writes (requests) group-committed in one storage transaction.",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.rejected_items = Counter(
            "relay_rejected_items",
            "Items of Pipelines batches kept in the rejected-items log, by surface and reason.",
            ["surface", "reason"],
            registry=self.registry,
        )
        # Labels stay bounded: violations happen only to planned events and properties.
        self.plan_violations = Counter(
            "relay_tracking_plan_violations",
            "Event properties breaking the tracking plan (missing or mistyped), by event and "
            "property; counted in report and enforce mode.",
            ["event", "property"],
            registry=self.registry,
        )
        self.plan_unknown_events = Counter(
            "relay_tracking_plan_unknown_events",
            "Events whose (canonical) name the tracking plan does not list; accepted.",
            registry=self.registry,
        )

        self.event_lateness = Histogram(
            "relay_event_lateness_seconds",
            "Receipt time minus event timestamp of the events stored, by event (see "
            "`EventLabels`: the plan's names, else the first 50 names; the rest 'other').",
            ["event"],
            registry=self.registry,
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 604800),
        )
        self.event_labels = EventLabels()
        self.type_drift = Counter(
            "relay_property_type_drift",
            "Events with a property whose JSON type differs from the first one this process saw"
            " for it, by event and property (labels bounded as for lateness; properties: the"
            " plan's, else the first 20 per event; others are not tracked).",
            ["event", "property"],
            registry=self.registry,
        )
        self.property_types = PropertyTypes()

        self.forwarded = Counter(
            "relay_forwarded_operations",
            "Outbox operations settled, by outcome (delivered, retried, dead).",
            ["outcome"],
            registry=self.registry,
        )
        self.forward_seconds = Histogram(
            "relay_forward_request_duration_seconds",
            "Customer.io request latency, by path and status (none: no answer).",
            ["path", "status"],
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "relay_outbox_pending",
            "Operations waiting to reach Customer.io.",
            registry=self.registry,
        )
        self.outbox_dead = Gauge(
            "relay_outbox_dead", "Dead-lettered operations.", registry=self.registry
        )
        self.outbox_expired = Counter(
            "relay_outbox_expired",
            "Outbox operations deleted by retention: the facts they forwarded were pruned.",
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "relay_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending operation.",
            registry=self.registry,
        )

        self.push_sends = Counter(
            "relay_push_sends",
            "Test-push results, by platform and outcome.",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self.push_provider_seconds = Histogram(
            "relay_push_provider_duration_seconds",
            "APNs/FCM answer latency per send attempt.",
            ["platform"],
            registry=self.registry,
        )
        self.push_invalidations = Counter(
            "relay_push_token_invalidations",
            "Tokens marked invalid from provider answers, by platform and reason.",
            ["platform", "reason"],
            registry=self.registry,
        )
        self.stale_marked = Counter(
            "relay_tokens_marked_stale", "Tokens marked stale by hygiene.", registry=self.registry
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count an answered request; ``route`` is its template (a bounded set)."""
        method = method if method in REQUEST_METHODS else "other"
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            # labels() validates and locks on every call: looked up once per route, method
            # and status instead.
            children = (
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route),
            )
            self._request_children[key] = children
        count, duration = children
        count.inc()
        duration.observe(seconds)

    def observe_commit(self, jobs: int, seconds: float) -> None:
        self.commit_seconds.observe(seconds)
        self.commit_jobs.observe(jobs)

    def count_ingest(self, kind: str, accepted: int, duplicates: int, rejected: int) -> None:
        for outcome, n in (
            ("accepted", accepted),
            ("duplicate", duplicates),
            ("rejected", rejected),
        ):
            if n:
                self.ingested.labels(kind, outcome).inc(n)

    def count_plan_check(self, check: PlanCheck) -> None:
        if not check.known:
            self.plan_unknown_events.inc()
        for violation in check.violations:
            self.plan_violations.labels(check.event, violation.property).inc()

    def observe_lateness(
        self, plan: TrackingPlan | None, name: str, occurred_at: float, received_at: float
    ) -> None:
        label = self.event_labels.label(plan, name)
        self.event_lateness.labels(label).observe(max(0.0, received_at - occurred_at))

    def observe_properties(
        self, plan: TrackingPlan | None, name: str, properties: Mapping[str, Any]
    ) -> None:
        """Count type drift: a property arriving with another JSON type than before."""
        event = self.event_labels.label(plan, name)
        if event == EventLabels.OTHER:  # unbounded names: neither labels nor memory for them
            return
        spec = plan.events.get(name) if plan is not None else None
        for key, value in properties.items():
            if spec is not None and key not in spec.required and key not in spec.optional:
                continue  # the plan's properties only: a bounded set
            drifted = self.property_types.drifted(event, key, json_type(value))
            if drifted is not None:
                self.type_drift.labels(event, drifted).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class EventLabels:
    """The ``event`` label of a lateness observation, from a bounded set: with a tracking
    plan, the plan's names; without one, the first ``limit`` distinct names this process
    saw (per process: a restart starts over), every other name folded into ``other``."""

    OTHER = "other"

    def __init__(self, limit: int = 50) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def label(self, plan: TrackingPlan | None, name: str) -> str:
        if plan is not None:
            return name if plan.known(name) else self.OTHER
        if name in self._seen:
            return name
        if len(self._seen) < self.limit:
            self._seen.add(name)
            return name
        return self.OTHER


class PropertyTypes:
    """The first JSON type seen per (event label, property) in this process; at most
    ``limit`` properties per event are tracked (bounded labels and memory)."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._first: dict[tuple[str, str], str] = {}
        self._per_event: dict[str, int] = {}

    def drifted(self, event: str, key: str, seen: str) -> str | None:
        """``key`` when ``seen`` differs from its first type, else None (also when the
        property is past the limit and not tracked)."""
        first = self._first.get((event, key))
        if first is None:
            if self._per_event.get(event, 0) < self.limit:
                self._per_event[event] = self._per_event.get(event, 0) + 1
                self._first[(event, key)] = seen
            return None
        return key if first != seen else None
