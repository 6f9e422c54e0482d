"""/v1/metrics and /v1/events: batches validated per item, stored in one commit.

A batch answers 200 whenever its envelope holds 1-1000 items: valid items are stored (and
de-duplicated on their ``id``), invalid ones come back in ``rejected`` with paths relative
to the item. Only a broken envelope fails the whole request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from aiohttp import web

from relay import timeutil
from relay.api.bodies import decode_any, field_error, read_body
from relay.api.limits import check_event_name, check_id, check_map, occurred_at
from relay.api.responses import json_response
from relay.api.routing import APP_PARAM, Route, caller
from relay.api.state import METRICS, SETTINGS, STORE
from relay.domain import Store
from relay.errors import FieldError, MalformedRequest, ValidationFailed
from relay.facts import NewEvent, NewMetric
from relay.models.common import FieldErrorDoc, IngestResult, Problem, Rejection
from relay.models.ingest import MAX_BATCH_ITEMS, EventIn, EventsBatch, MetricIn, MetricsBatch
from relay.observability import Metrics
from relay.retention import FactKind, refusal
from relay.settings import Settings
from relay.tracking_plan import PlanCheck, PlanObserver, PlanTally

ItemT = TypeVar("ItemT")
Stored = tuple[int, int, frozenset[str]]  # accepted, duplicates, the client ids that were new
RecordT = TypeVar("RecordT")


def check_retained(
    errors: list[FieldError], kind: FactKind, moment: float, received_at: float, settings: Settings
) -> None:
    """A fact older than its retention horizon is refused: were it stored, the next prune
    would delete it, and its id could then come back as new (de-duplication would break)."""
    message = refusal(kind, moment, settings.retention, received_at)
    if message is not None:
        errors.append(FieldError("timestamp", message))


def metric_record(item: MetricIn, received_at: float, settings: Settings) -> NewMetric:
    errors: list[FieldError] = []
    check_id(errors, "id", item.id)
    check_id(errors, "delivery_id", item.delivery_id)
    moment = occurred_at(errors, "timestamp", item.timestamp, received_at)
    check_retained(errors, "metrics", moment, received_at, settings)
    if errors:
        raise ValidationFailed("invalid metric", errors)
    return NewMetric(
        client_id=item.id,
        metric=item.metric,
        token=item.token,
        delivery_id=item.delivery_id,
        occurred_at=moment,
        action=item.action,
        deep_link=item.deep_link,
        reason=item.reason,
        source=item.source,
    )


def event_record(item: EventIn, received_at: float, settings: Settings) -> NewEvent:
    errors: list[FieldError] = []
    check_id(errors, "id", item.id)
    check_event_name(errors, "name", item.name)
    check_id(errors, "customer_id", item.customer_id)
    check_id(errors, "anonymous_id", item.anonymous_id)
    check_map(errors, "properties", item.properties)
    if item.customer_id is None and item.anonymous_id is None and item.token is None:
        errors.append(
            FieldError("customer_id", "one of customer_id, anonymous_id or token is required")
        )
    moment = occurred_at(errors, "timestamp", item.timestamp, received_at)
    check_retained(errors, "events", moment, received_at, settings)
    if errors:
        raise ValidationFailed("invalid event", errors)
    return NewEvent(
        client_id=item.id,
        name=settings.events.canonical_name(item.name),
        original_name=item.name,
        customer_id=item.customer_id,
        anonymous_id=item.anonymous_id,
        token=item.token,
        occurred_at=moment,
        properties=msgspec.json.encode(item.properties or {}).decode(),
    )


def event_plan_check(item: EventIn, settings: Settings) -> PlanCheck | None:
    """A valid event checked against the tracking plan, by its canonical name."""
    name = settings.events.canonical_name(item.name)
    return settings.tracking_plan.inspect(name, item.properties)


@dataclass(frozen=True, slots=True)
class BatchKind(Generic[ItemT, RecordT]):
    """What differs between the metrics and the events endpoint."""

    envelope_key: str
    envelope: type
    item: type[ItemT]
    to_record: Callable[[ItemT, float, Settings], RecordT]
    # (store, app, records, plan violations) → (accepted, duplicates, new client ids)
    store: Callable[[Store, str, list[RecordT], PlanTally], Awaitable[Stored]]
    # None: the kind meets no tracking plan (push metrics have no properties)
    plan_check: Callable[[ItemT, Settings], PlanCheck | None] | None = None


async def store_metrics(
    store: Store, app_id: str, metrics: list[NewMetric], _: PlanTally
) -> Stored:
    accepted, duplicates = await store.ingest_metrics(app_id, metrics)
    return accepted, duplicates, frozenset()  # metrics feed no per-item observation


async def store_events(
    store: Store, app_id: str, events: list[NewEvent], tally: PlanTally
) -> Stored:
    return await store.ingest_events(app_id, events, tally.violations)


METRICS_KIND = BatchKind("metrics", MetricsBatch, MetricIn, metric_record, store_metrics)
EVENTS_KIND = BatchKind(
    "events", EventsBatch, EventIn, event_record, store_events, event_plan_check
)


def decode_items(body: bytes, kind: BatchKind[Any, Any]) -> list[Any]:
    """The batch's items, each a typed item or the list of its field errors."""
    try:
        return list(getattr(msgspec.json.decode(body, type=kind.envelope), kind.envelope_key))
    except (msgspec.ValidationError, RecursionError):
        pass  # some item (or the envelope) is wrong: find out which, item by item
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    envelope = decode_any(body)
    key = kind.envelope_key
    if not isinstance(envelope, dict):
        raise ValidationFailed.at(key, "the body must be an object with an array of items")
    unknown = sorted(set(envelope) - {key})
    if unknown:
        raise ValidationFailed.at(unknown[0], "unknown field")
    items = envelope.get(key)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise ValidationFailed.at(key, f"must be an array of 1-{MAX_BATCH_ITEMS} items")
    decoded: list[Any] = []
    for item in items:
        try:
            decoded.append(msgspec.convert(item, kind.item))
        except msgspec.ValidationError as exc:
            decoded.append([field_error(exc)])
    return decoded


async def ingest(request: web.Request, kind: BatchKind[Any, Any]) -> web.Response:
    who = caller(request)
    settings, metrics = request.app[SETTINGS], request.app[METRICS]
    body = await read_body(request)
    received_at = timeutil.now()
    records, rejected = [], []
    tally = PlanTally(metrics.count_plan_check)
    for index, item in enumerate(decode_items(body, kind)):
        try:
            if isinstance(item, list):
                raise ValidationFailed("invalid item", item)
            record = kind.to_record(item, received_at, settings)
            if kind.plan_check is not None:
                follow_plan(kind.plan_check(item, settings), settings, tally)
            records.append(record)
        except ValidationFailed as exc:
            errors = [FieldErrorDoc(e.path, e.message) for e in exc.errors]
            rejected.append(Rejection(index, errors))
    accepted, duplicates, new_ids = 0, 0, frozenset[str]()
    if records or tally.violations:  # refused items' violations are counted all the same
        accepted, duplicates, new_ids = await kind.store(
            request.app[STORE], who.app_id, records, tally
        )
    if kind is EVENTS_KIND:
        stored = [event for event in records if event.client_id in new_ids]
        observe_lateness(stored, settings, metrics, received_at)
    metrics.count_ingest(kind.envelope_key, accepted, duplicates, len(rejected))
    return json_response(IngestResult(accepted=accepted, duplicates=duplicates, rejected=rejected))


def observe_lateness(
    events: list[NewEvent], settings: Settings, metrics: Metrics, received_at: float
) -> None:
    """Each event stored by this request (resent duplicates are not observed again)."""
    plan = settings.tracking_plan.plan
    for event in events:
        metrics.observe_lateness(plan, event.name, event.occurred_at, received_at)
        metrics.observe_properties(plan, event.name, msgspec.json.decode(event.properties))


def follow_plan(check: PlanCheck | None, settings: Settings, observe: PlanObserver) -> None:
    """Count what the plan check found; in enforce mode, refuse an item breaking the plan
    with each broken property as an error path (``properties.total``)."""
    if check is None:
        return
    observe(check)
    if check.violations and settings.tracking_plan.enforced:
        errors = [FieldError(v.path, v.message) for v in check.violations]
        raise ValidationFailed("breaks the tracking plan", errors)


async def post_metrics(request: web.Request) -> web.Response:
    """Report push metrics (1-1000 per request)."""
    return await ingest(request, METRICS_KIND)


async def post_events(request: web.Request) -> web.Response:
    """Report conversion events (1-1000 per request)."""
    return await ingest(request, EVENTS_KIND)


ROUTES = [
    Route(
        "POST",
        "/v1/metrics",
        post_metrics,
        "Report push metrics",
        role="app",
        body=MetricsBatch,
        responses={200: IngestResult, 413: Problem, 422: Problem},
        params=(APP_PARAM,),
    ),
    Route(
        "POST",
        "/v1/events",
        post_events,
        "Report conversion events",
        role="app",
        body=EventsBatch,
        responses={200: IngestResult, 413: Problem, 422: Problem},
        params=(APP_PARAM,),
    ),
]
