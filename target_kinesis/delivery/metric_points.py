"""What a run's METRIC lines count at the AWS edge, per destination stream, as plain points.

Two programs log these lines: the target, through the Singer SDK's metrics logger
(singer/metrics.py), and the redrive tool, which never loads the SDK but writes the same
format. The points are made here once, from the producers' own counters, so both say the
same thing by the same names: AWS calls (`http_request_count` by status,
`http_request_duration`), records refused by error code, records retried, and records
dead-lettered by error code. Each call of `PointTally.points` gives what changed since its
last call, so a sum over a run's lines is the run's total.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from target_kinesis.config.destinations import Destination
from target_kinesis.delivery.producer import Producer

#: The SDK's names (`singer_sdk.metrics.Metric`) for the HTTP metrics.
HTTP_REQUEST_COUNT = "http_request_count"
HTTP_REQUEST_DURATION = "http_request_duration"
#: Names the SDK has none for.
REFUSED_RECORDS = "refused_records"
RETRIED_RECORDS = "retried_records"
DEAD_LETTERED_RECORDS = "dead_lettered_records"


class Point(t.NamedTuple):
    """One measurement, as the SDK's `metrics.Point` holds it."""

    type: str
    metric: str
    value: int | float
    tags: dict[str, t.Any]


class PointTally:
    """The points of each destination's producer, as deltas since the last `points()`."""

    def __init__(self, producers: Mapping[Destination, Producer]) -> None:
        self._producers = producers
        #: What was counted so far, per destination: counters, refusals by error code, then
        #: dead letters by error code.
        self._counted: dict[Destination, tuple[dict[str, int], dict[str, int], dict[str, int]]] = {}

    def points(self) -> list[Point]:
        """What changed since the last call (the first: everything so far), destination by destination."""
        points: list[Point] = []
        for destination, producer in sorted(self._producers.items()):
            counts = producer.stats.snapshot()
            refused = producer.pacing().refused
            dead = producer.dead_lettered_by_code()
            before, refused_before, dead_before = self._counted.get(destination, ({}, {}, {}))
            self._counted[destination] = (counts, refused, dead)
            endpoint = str(destination)
            points += delivery_points(endpoint, counts, before, refused, refused_before)
            points += by_code(endpoint, DEAD_LETTERED_RECORDS, dead, dead_before)
        return points


def delivery_points(
    endpoint: str,
    counts: Mapping[str, int],
    before: Mapping[str, int],
    refused: Mapping[str, int],
    refused_before: Mapping[str, int],
) -> list[Point]:
    """The calls, refusals and retries of one destination added since `before` (pure)."""

    def added(name: str) -> int:
        return counts.get(name, 0) - before.get(name, 0)

    points: list[Point] = []
    calls, failed = added("calls"), added("calls_failed")
    for status, value in (("succeeded", calls - failed), ("failed", failed)):
        if value:
            points.append(Point("counter", HTTP_REQUEST_COUNT, value, {"endpoint": endpoint, "status": status}))
    if calls:
        # A timer point per call would be hundreds of lines a second: the mean over the calls
        # counted in the same lines, with their number.
        mean = added("call_micros") / calls / 1e6
        points.append(Point("timer", HTTP_REQUEST_DURATION, round(mean, 6), {"endpoint": endpoint, "calls": calls}))
    points += by_code(endpoint, REFUSED_RECORDS, refused, refused_before)
    retried = added("retried_records")
    if retried:
        points.append(Point("counter", RETRIED_RECORDS, retried, {"endpoint": endpoint}))
    return points


def by_code(endpoint: str, metric: str, counts: Mapping[str, int], before: Mapping[str, int]) -> list[Point]:
    """Counter points by error code for what was added since `before` (pure)."""
    return [
        Point("counter", metric, value - before.get(code, 0), {"endpoint": endpoint, "error_code": code})
        for code, value in sorted(counts.items())
        if value - before.get(code, 0)
    ]


__all__ = [
    "DEAD_LETTERED_RECORDS",
    "HTTP_REQUEST_COUNT",
    "HTTP_REQUEST_DURATION",
    "REFUSED_RECORDS",
    "RETRIED_RECORDS",
    "Point",
    "PointTally",
    "by_code",
    "delivery_points",
]
