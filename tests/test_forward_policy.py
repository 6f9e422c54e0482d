"""The retry policy and the lane rule, as tables (pure functions, no I/O)."""

from __future__ import annotations

import random

import pytest

from relay.forward.policy import Verdict, backoff, classify, parse_retry_after
from relay.forward.worker import ready_rows
from relay.models.outbox import OutboxRow


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (207, Verdict.PARTIAL),
        (None, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
        (400, Verdict.DEAD),
        (401, Verdict.DEAD),
        (403, Verdict.DEAD),
        (404, Verdict.DEAD),
        (413, Verdict.DEAD),
        (422, Verdict.DEAD),
    ],
)
def test_each_answer_has_one_verdict(status: int | None, verdict: Verdict) -> None:
    assert classify(status).verdict is verdict


def test_a_207_names_exactly_the_failed_batch_indexes() -> None:
    body = {
        "errors": [
            {"batch_index": 1, "reason": "invalid", "field": "identifiers", "message": "bad"},
            {"batch_index": 4, "reason": "invalid", "message": "worse"},
        ]
    }
    decision = classify(207, body)
    assert set(decision.failed) == {1, 4}
    assert "identifiers" in decision.failed[1]


def test_a_429_carries_its_retry_after() -> None:
    assert classify(429, retry_after="7").retry_after == 7.0


def test_a_429_without_retry_after_leaves_the_delay_to_backoff() -> None:
    assert classify(429).retry_after is None


def test_retry_after_may_be_an_http_date() -> None:
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=1767225600.0) == 30.0


@pytest.mark.parametrize("garbage", ["", "soon", "-5", None])
def test_a_garbled_retry_after_is_ignored(garbage: str | None) -> None:
    assert parse_retry_after(garbage, now=0.0) is None


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    top = random.Random(0)
    top.random = lambda: 1.0  # type: ignore[method-assign]
    assert [backoff(n, 1, 60, top) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_jitters_between_half_and_all_of_the_delay() -> None:
    delays = [backoff(3, 1, 60, random.Random(seed)) for seed in range(200)]
    assert all(4 <= d <= 8 for d in delays)
    assert len(set(delays)) > 100


def _row(seq: int, lane: str, wait: str | None = None, due: float = 0.0) -> OutboxRow:
    return OutboxRow(seq, lane, wait, "batch", "{}", 0, due, None)


def test_rows_of_free_lanes_are_ready_in_order() -> None:
    rows = [_row(1, "a"), _row(2, "b"), _row(3, "a")]
    assert [r.seq for r in ready_rows(rows, now=10)] == [1, 2, 3]


def test_a_row_waiting_for_its_retry_holds_back_the_rest_of_its_lane() -> None:
    rows = [_row(1, "a", due=99), _row(2, "b"), _row(3, "a")]
    assert [r.seq for r in ready_rows(rows, now=10)] == [2]


def test_a_row_waits_for_the_earlier_rows_of_its_wait_lane() -> None:
    identify_retrying = _row(1, "person:c", due=99)
    device_add = _row(2, "token:t", wait="person:c")
    metric_of_device = _row(3, "token:t")
    other = _row(4, "token:u", wait="person:d")
    ready = ready_rows([identify_retrying, device_add, metric_of_device, other], now=10)
    assert [r.seq for r in ready] == [4]


def test_a_later_row_of_the_wait_lane_does_not_hold_back_an_earlier_row() -> None:
    rows = [_row(1, "token:t", wait="person:c"), _row(2, "person:c", due=99)]
    assert [r.seq for r in ready_rows(rows, now=10)] == [1]
