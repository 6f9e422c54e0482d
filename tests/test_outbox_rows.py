"""Operations the store writes set-wise in SQL are the operations relay builds in Python."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from relay.domain.service import RelayStore
from relay.facts import NewMetric
from relay.forward import ops
from tests.support import make_settings

# Quotes, a backslash, a slash, non-ASCII and control characters: what JSON must escape, and
# what it must not.
TOKEN = 'tok "quoted" \\ / é ✓\n\t\x01'
DELIVERY = 'delivery "1" ü'


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RelayStore]:
    store = RelayStore(make_settings(tmp_path))
    await store.open()
    yield store
    await store.close()


async def _outbox(store: RelayStore) -> list[tuple[str, str | None, str, str]]:
    rows = await store.engine.read(
        lambda c: c.execute(
            "SELECT lane, wait_lane, endpoint, payload FROM outbox ORDER BY seq"
        ).fetchall()
    )
    return [tuple(row) for row in rows]


@pytest.mark.parametrize(("metric", "name"), sorted(ops.DELIVERY_METRIC.items()))
async def test_a_delivery_metric_written_in_sql_is_the_operation_python_builds(
    store: RelayStore, metric: str, name: str
) -> None:
    moment = 1_700_000_000.97
    await store.ingest_metrics("default", [NewMetric("m-1", metric, TOKEN, DELIVERY, moment)])

    expected = ops.delivery_metric(DELIVERY, TOKEN, name, moment)
    assert await _outbox(store) == [
        (expected.lane, None, expected.endpoint, msgspec.json.encode(expected.payload).decode())
    ]


async def test_only_the_first_metric_of_a_kind_per_delivery_and_token_is_written(
    store: RelayStore,
) -> None:
    metrics = [
        NewMetric("m-1", "opened", TOKEN, DELIVERY, 1_700_000_000),
        NewMetric("m-2", "tapped", TOKEN, DELIVERY, 1_700_000_001),
        NewMetric("m-3", "opened", "other-token", DELIVERY, 1_700_000_002),
    ]
    await store.ingest_metrics("default", metrics)

    lanes = [lane for lane, *_ in await _outbox(store)]
    assert lanes == [ops.token_lane(TOKEN), ops.token_lane("other-token")]
