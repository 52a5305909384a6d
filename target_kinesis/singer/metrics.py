"""The Singer SDK's own METRIC lines for what happens at the AWS edge.

Every SDK plugin logs `METRIC: {...}` lines through `singer_sdk.metrics`, and Meltano shows them;
the SDK already counts `record_count` per Singer stream (singer/sink.py feeds it from every
path). This adds, per destination stream, what an operator of a stream watches: the points of
`delivery.metric_points` (AWS calls, refusals and retries, dead letters), made from the
producers' own counters (delivery/ never imports the SDK) and shared with the redrive tool.
They are logged as deltas: at most once a `DEFAULT_LOG_INTERVAL` while the run goes, and at its
end, so a sum over a run's lines is the run's total. Quiet where the SDK is: the metrics logger
follows the plugin's log level (TARGET_KINESIS_LOGLEVEL / LOGLEVEL=WARNING silences them).
"""

from __future__ import annotations

import enum
import time
import typing as t
from collections.abc import Callable, Mapping

from singer_sdk import metrics

from target_kinesis.config.destinations import Destination
from target_kinesis.delivery import metric_points
from target_kinesis.delivery.producer import Producer


class DeliveryMetric(str, enum.Enum):
    """Metrics the SDK has no name for (its `Metric` names the HTTP and record ones)."""

    REFUSED_RECORDS = metric_points.REFUSED_RECORDS
    RETRIED_RECORDS = metric_points.RETRIED_RECORDS
    DEAD_LETTERED_RECORDS = metric_points.DEAD_LETTERED_RECORDS


#: The SDK's `Point` wants an enum for its metric (it logs `metric.value`): each name's.
_METRICS: dict[str, enum.Enum] = {m.value: m for m in (*metrics.Metric, *DeliveryMetric)}


class DeliveryMetrics:
    """METRIC lines per destination stream, from its producer's counters."""

    def __init__(
        self,
        producers: Mapping[Destination, Producer],
        *,
        interval: float = metrics.DEFAULT_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tally = metric_points.PointTally(producers)
        self._interval = interval
        self._clock = clock
        self._last_log = clock()

    def maybe_log(self) -> None:
        """Log what changed, when an interval passed since the last lines."""
        if self._clock() - self._last_log >= self._interval:
            self.log()

    def log(self) -> None:
        """Log what changed since the last lines (the run's end: everything left)."""
        self._last_log = self._clock()
        logger = metrics.get_metrics_logger()
        for point in self._tally.points():
            metrics.log(logger, sdk_point(point))


def sdk_point(point: metric_points.Point) -> metrics.Point[t.Any]:
    """The SDK's form of a point, which logs it in the SDK's own format."""
    return metrics.Point(point.type, t.cast(metrics.Metric, _METRICS[point.metric]), point.value, point.tags)


__all__ = ["DeliveryMetric", "DeliveryMetrics", "sdk_point"]
