"""From finished events to producers: route, apply privacy, encode once, hand over.

Shared by every Singer stream's sink, because destinations are shared: two Singer
streams routed to one Kinesis stream must respect that stream's limits together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from target_kinesis.mapping import Event, dumps
from target_kinesis.producer import Producer
from target_kinesis.routing import Destination, Router
from target_kinesis.shaping import PartitionKeys, Privacy
from target_kinesis.stats import RunStats

logger = logging.getLogger("target-kinesis")

PROGRESS_SECONDS = 10.0


class EventWriter:
    def __init__(
        self,
        router: Router,
        producers: dict[Destination, Producer],
        *,
        privacy: Privacy,
        partition_keys: PartitionKeys,
        newline: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.router = router
        self.producers = producers
        self.privacy = privacy
        self.partition_keys = partition_keys
        self._newline = {d: newline(d.service) for d in producers}
        self._keyed = {d: p.service.uses_partition_key for d, p in producers.items()}
        self.stats = RunStats()
        self._clock = clock
        self._started = clock()
        self._last_progress = self._started

    def write(self, event: Event) -> None:
        """Send one event to every destination its route names (or count it as dropped)."""
        self.stats.records_read += 1
        destinations = self.router.route(event.type, event.name)
        if not destinations:
            self.stats.unmapped += 1
        elif not self.privacy.keep(event):
            self.stats.dropped_anonymous += 1
        else:
            self.privacy.apply(event)
            data = dumps(event.body)
            key: str | None = None
            for destination in destinations:
                if self._keyed[destination] and key is None:
                    key = self.partition_keys.key_for(event)
                payload = data + b"\n" if self._newline[destination] else data
                self.producers[destination].add(payload, key if self._keyed[destination] else None)
        if self.stats.records_read % 1000 == 0:
            self._maybe_progress()

    def flush(self) -> None:
        """Wait until every record handed over so far is acknowledged by AWS."""
        for producer in self.producers.values():
            producer.flush()

    def close(self) -> None:
        for producer in self.producers.values():
            producer.close()

    def _maybe_progress(self) -> None:
        now = self._clock()
        if now - self._last_progress < PROGRESS_SECONDS:
            return
        self._last_progress = now
        elapsed = max(now - self._started, 1e-9)
        parts = []
        for destination, producer in sorted(self.producers.items()):
            s = producer.stats.snapshot()
            parts.append(
                f"{destination} queued={s['records_queued']} sent={s['records_sent']} retried={s['retried_records']}"
            )
        logger.info(
            "progress: read=%d (%.0f records/s) %s",
            self.stats.records_read,
            self.stats.records_read / elapsed,
            "; ".join(parts),
        )

    def summary_lines(self) -> Iterable[str]:
        """One line per destination stream, plus one for events no rule took."""
        for destination, producer in sorted(self.producers.items()):
            s = producer.stats.snapshot()
            yield (
                f"summary {destination}: records_sent={s['records_sent']} bytes={s['bytes_sent']} "
                f"calls={s['calls']} retried_records={s['retried_records']} throttles={s['throttles']} "
                f"skipped={s['skipped']} dead_lettered={s['dead_lettered']} failed={s['failed']}"
            )
        yield (
            f"summary events: read={self.stats.records_read} unmapped={self.stats.unmapped} "
            f"dropped_anonymous={self.stats.dropped_anonymous}"
        )
