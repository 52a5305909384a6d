"""METRIC points per destination (singer/metrics.py): deltas, so a run's lines sum to its totals."""

from __future__ import annotations

from target_kinesis.singer.metrics import _points


def _by_metric(points) -> dict[tuple[str, str], int | float]:
    def tag(point) -> str:
        value = point.tags.get("status") or point.tags.get("error_code") or ""
        return str(getattr(value, "value", value))  # the SDK's Status is an enum; JSON shows its value

    return {(p.metric.value, tag(p)): p.value for p in points}


def test_points_are_what_changed_since_the_last_lines() -> None:
    before = {"calls": 10, "calls_failed": 1, "call_micros": 1_000_000, "retried_records": 5}
    now = {"calls": 14, "calls_failed": 2, "call_micros": 1_400_000, "retried_records": 5}
    points = _points(
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
    assert _points("firehose:f", counts, counts, {}, {}) == []


def test_dead_letters_are_counted_by_error_code_as_deltas() -> None:
    from target_kinesis.singer.metrics import DeliveryMetric, _by_code

    points = _by_code(
        "kinesis:s",
        DeliveryMetric.DEAD_LETTERED_RECORDS,
        {"InternalFailure": 7, "RecordTooLarge": 2},
        {"InternalFailure": 3, "RecordTooLarge": 2},
    )
    assert _by_metric(points) == {("dead_lettered_records", "InternalFailure"): 4}
