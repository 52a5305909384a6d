"""The Singer SDK's own METRIC lines for what happens at the AWS edge.

Every SDK plugin logs `METRIC: {...}` lines through `singer_sdk.metrics`, and Meltano shows them;
the SDK already counts `record_count` per Singer stream (singer/sink.py feeds it from every
path). This adds, per destination stream, what an operator of a stream watches: AWS calls
(`http_request_count` by status, `http_request_duration`), records refused by error code and
records retried. They come from the producers' own counters (delivery/ never imports the
SDK), as deltas: at most once a `DEFAULT_LOG_INTERVAL` while the run goes, and at its end, so a
sum over a run's lines is the run's total. Quiet where the SDK is: the metrics logger follows
the plugin's log level (TARGET_KINESIS_LOGLEVEL / LOGLEVEL=WARNING silences them).
"""

from __future__ import annotations

import enum
import time
import typing as t
from collections.abc import Callable, Mapping

from singer_sdk import metrics

from target_kinesis.config.destinations import Destination
from target_kinesis.delivery.producer import Producer


class DeliveryMetric(str, enum.Enum):
    """Metrics the SDK has no name for (its `Metric` names the HTTP and record ones)."""

    REFUSED_RECORDS = "refused_records"
    RETRIED_RECORDS = "retried_records"
    DEAD_LETTERED_RECORDS = "dead_lettered_records"


class DeliveryMetrics:
    """METRIC lines per destination stream, from its producer's counters."""

    def __init__(
        self,
        producers: Mapping[Destination, Producer],
        *,
        interval: float = metrics.DEFAULT_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producers = producers
        self._interval = interval
        self._clock = clock
        self._last_log = clock()
        #: What was logged so far, per destination: counters, refusals by error code, then
        #: dead letters by error code.
        self._logged: dict[Destination, tuple[dict[str, int], dict[str, int], dict[str, int]]] = {}

    def maybe_log(self) -> None:
        """Log what changed, when an interval passed since the last lines."""
        if self._clock() - self._last_log >= self._interval:
            self.log()

    def log(self) -> None:
        """Log what changed since the last lines (the run's end: everything left)."""
        self._last_log = self._clock()
        logger = metrics.get_metrics_logger()
        for destination, producer in sorted(self._producers.items()):
            counts = producer.stats.snapshot()
            refused = producer.pacing().refused
            dead = producer.dead_lettered_by_code()
            before, refused_before, dead_before = self._logged.get(destination, ({}, {}, {}))
            self._logged[destination] = (counts, refused, dead)
            for point in _points(str(destination), counts, before, refused, refused_before):
                metrics.log(logger, point)
            for point in _by_code(str(destination), DeliveryMetric.DEAD_LETTERED_RECORDS, dead, dead_before):
                metrics.log(logger, point)


def _points(
    endpoint: str,
    counts: Mapping[str, int],
    before: Mapping[str, int],
    refused: Mapping[str, int],
    refused_before: Mapping[str, int],
) -> list[metrics.Point[t.Any]]:
    """The points of one destination for the counts added since `before` (pure)."""

    def added(name: str) -> int:
        return counts.get(name, 0) - before.get(name, 0)

    points: list[metrics.Point[t.Any]] = []
    calls, failed = added("calls"), added("calls_failed")
    for status, value in ((metrics.Status.SUCCEEDED, calls - failed), (metrics.Status.FAILED, failed)):
        if value:
            points.append(
                metrics.Point(
                    "counter",
                    metrics.Metric.HTTP_REQUEST_COUNT,
                    value,
                    {metrics.Tag.ENDPOINT: endpoint, metrics.Tag.STATUS: status},
                )
            )
    if calls:
        # A timer point per call would be hundreds of lines a second: the mean over the calls
        # counted in the same lines, with their number.
        mean = added("call_micros") / calls / 1e6
        points.append(
            metrics.Point(
                "timer",
                metrics.Metric.HTTP_REQUEST_DURATION,
                round(mean, 6),
                {metrics.Tag.ENDPOINT: endpoint, "calls": calls},
            )
        )
    points.extend(_by_code(endpoint, DeliveryMetric.REFUSED_RECORDS, refused, refused_before))
    retried = added("retried_records")
    if retried:
        points.append(
            metrics.Point(
                "counter",
                t.cast(metrics.Metric, DeliveryMetric.RETRIED_RECORDS),
                retried,
                {metrics.Tag.ENDPOINT: endpoint},
            )
        )
    return points


def _by_code(
    endpoint: str, metric: DeliveryMetric, counts: Mapping[str, int], before: Mapping[str, int]
) -> list[metrics.Point[t.Any]]:
    """Counter points by error code for what was added since `before` (pure)."""
    return [
        metrics.Point(
            "counter",
            t.cast(metrics.Metric, metric),
            value - before.get(code, 0),
            {metrics.Tag.ENDPOINT: endpoint, "error_code": code},
        )
        for code, value in sorted(counts.items())
        if value - before.get(code, 0)
    ]


__all__ = ["DeliveryMetric", "DeliveryMetrics"]
