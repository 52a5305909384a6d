"""METRIC points per destination (delivery/metric_points.py): deltas, so a run's lines sum to its
totals; and the one format both the target (through the SDK) and the redrive tool write them in."""

from __future__ import annotations

import json
import logging

import pytest

from target_kinesis.delivery.metric_points import DEAD_LETTERED_RECORDS, Point, by_code, delivery_points


def _by_metric(points: list[Point]) -> dict[tuple[str, str], int | float]:
    return {(p.metric, p.tags.get("status") or p.tags.get("error_code") or ""): p.value for p in points}


def test_points_are_what_changed_since_the_last_lines() -> None:
    before = {"calls": 10, "calls_failed": 1, "call_micros": 1_000_000, "retried_records": 5}
    now = {"calls": 14, "calls_failed": 2, "call_micros": 1_400_000, "retried_records": 5}
    points = delivery_points(
        "kinesis:s",
        now,
        before,
        {"ProvisionedThroughputExceededException": 30},
        {"ProvisionedThroughputExceededException": 10},
    )
    got = _by_metric(points)
    assert got[("http_request_count", "succeeded")] == 3
    assert got[("http_request_count", "failed")] == 1
    assert got[("http_request_duration", "")] == 0.1, "400 ms over 4 calls"
    assert got[("refused_records", "ProvisionedThroughputExceededException")] == 20
    assert ("retried_records", "") not in got, "nothing new: no line"
    assert all(p.tags["endpoint"] == "kinesis:s" for p in points)


def test_nothing_new_is_no_line() -> None:
    counts = {"calls": 3, "calls_failed": 0, "call_micros": 5, "retried_records": 0}
    assert delivery_points("firehose:f", counts, counts, {}, {}) == []


def test_dead_letters_are_counted_by_error_code_as_deltas() -> None:
    points = by_code(
        "kinesis:s",
        DEAD_LETTERED_RECORDS,
        {"InternalFailure": 7, "RecordTooLarge": 2},
        {"InternalFailure": 3, "RecordTooLarge": 2},
    )
    assert _by_metric(points) == {("dead_lettered_records", "InternalFailure"): 4}


def _logged(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage().split("METRIC: ", 1)[1]) for r in caplog.records if "METRIC: " in r.getMessage()]


def test_the_target_and_the_redrive_tool_write_a_point_alike(caplog: pytest.LogCaptureFixture) -> None:
    """The redrive tool writes the SDK's format without the SDK: the same point reads the same."""
    from singer_sdk import metrics

    from target_kinesis.singer.metrics import sdk_point
    from target_kinesis.tools.redrive import metric

    before = {"calls": 0, "calls_failed": 0, "call_micros": 0, "retried_records": 0}
    now = {"calls": 4, "calls_failed": 1, "call_micros": 2_000, "retried_records": 7}
    points = delivery_points("kinesis:s", now, before, {"InternalFailure": 2}, {})
    points += by_code("kinesis:s", DEAD_LETTERED_RECORDS, {"InternalFailure": 1}, {})
    assert len(points) == 6
    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
        for point in points:
            metrics.log(metrics.get_metrics_logger(), sdk_point(point))
        target_lines = _logged(caplog)
        caplog.clear()
        for point in points:
            metric(point)
        tool_lines = _logged(caplog)
    assert target_lines == tool_lines
    assert [line["metric"] for line in target_lines] == [
        "http_request_count",
        "http_request_count",
        "http_request_duration",
        "refused_records",
        "retried_records",
        "dead_lettered_records",
    ]
    assert target_lines[0] == {
        "type": "counter",
        "metric": "http_request_count",
        "value": 3,
        "tags": {"endpoint": "kinesis:s", "status": "succeeded"},
    }
