"""From finished events to producers, with the progress lines and the run summary.

Shared by every Singer stream's sink, because destinations are shared: two Singer
streams routed to one Kinesis stream must respect that stream's limits together.
Encoding (route, privacy, partition key, bytes) is `encoding.Encoder`'s, so that a
mapping process can do it and hand over finished records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

from target_kinesis.config.destinations import Destination
from target_kinesis.delivery.batching import Entry
from target_kinesis.delivery.encoding import Encoded, Encoder, columns_of
from target_kinesis.delivery.producer import OversizedRecordError, Pacing, Producer
from target_kinesis.delivery.shards import ShardMap
from target_kinesis.delivery.stats import RunStats
from target_kinesis.events.event import Event

logger = logging.getLogger("target-kinesis")

PROGRESS_SECONDS = 10.0
#: Records this process encodes itself (no mapping processes; lines they hand back) are handed
#: to the producers this many at a time, as columns, like a mapping process's: their shards
#: predicted at once and each destination's run paced as one. One by one, predicting and
#: pacing each record cost ~15% of a one-process run on the 256-shard null endpoint.
HELD_RECORDS = 500


class EventWriter:
    """Hands encoded records to the producer of their destination; progress and summary."""

    def __init__(
        self,
        encoder: Encoder,
        producers: dict[Destination, Producer],
        *,
        shard_maps: Mapping[int, ShardMap] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.encoder = encoder
        self.producers = producers
        #: The current shard map of each Kinesis destination (by index) whose map was read;
        #: shared with the producers, which read a map again when AWS places records elsewhere.
        self.shard_maps: Mapping[int, ShardMap] = shard_maps if shard_maps is not None else {}
        #: Encoded here and not handed to a producer yet (at most HELD_RECORDS; see `write`).
        self._held: list[Encoded] = []
        self._by_index = [producers[d] for d in encoder.destinations]
        self.stats = encoder.stats
        self._clock = clock
        self._started = clock()
        self._last_progress = self._started
        self._next_progress_check = 1000
        self._warned_key = False
        self._warned_timestamp = False
        self._warned_ids = False

    def write(self, event: Event) -> bool:
        """Send one event to every destination its route names (or count it as dropped);
        False when no rule routes it anywhere (unmapped).

        Its records are held until HELD_RECORDS are, then handed over as columns; anything
        that hands records over or waits for them (`hand_over`, `flush`) hands the held ones
        over first, so input order holds. A record above its destination's size limit is
        handed over at once, after those held: refused on the spot (on_oversized_record=fail),
        it raises here, at its own input line, as before.
        """
        first = len(self._held)
        routed = self.encoder.encode(event, self._held)  # (one record per destination its route names)
        self._hold_from(first)
        if self.stats.records_read >= self._next_progress_check:
            self._maybe_progress()
        stats = self.stats
        if (
            (stats.key_fallbacks and not self._warned_key)
            or (stats.timestamp_fallbacks and not self._warned_timestamp)
            or (stats.ids_not_text and not self._warned_ids)
        ):
            self.warn_about_fallbacks()
        return routed

    def write_encoded(self, records: list[Encoded]) -> None:
        """Hand over records encoded already (`Encoder.encode_stored`: dead letters sent again),
        in order, as `write` hands over its own: held, then a run per destination; a record
        above its destination's size limit alone, after those held."""
        for record in records:
            self._held.append(record)
            self._hold_from(len(self._held) - 1)

    def _hold_from(self, first: int) -> None:
        """Keep the records held from `first` on (one event's), unless one of them is above its
        destination's size limit: then those held before them are handed over, and they follow
        one by one, so a refusal on the spot raises at its own record with nothing after it
        queued. A full hold is handed over."""
        held = self._held
        producers = self._by_index
        if any(record[2] > producers[record[0]].max_record_bytes for record in held[first:]):
            records = held[first:]
            del held[first:]
            self.hand_over_held()
            for record in records:
                producers[record[0]].add_all((record,))
        elif len(held) >= HELD_RECORDS:
            self.hand_over_held()

    def hand_over_held(self) -> None:
        """Hand the records `write` holds to their producers: a run per destination."""
        held = self._held
        if not held:
            return
        self._held = []
        columns, _ = columns_of(held, self.shard_maps)
        producers = self._by_index
        for index, column in columns.items():
            producers[index].add_run(column.entry(0, column.records))

    def hand_over(self, runs: list[tuple[int, Entry]], in_order: Callable[[], list[Encoded]]) -> None:
        """Queue a mapping process's records: a run per destination (`MappedChunk.runs`).

        A record refused on the spot (oversized, with on_oversized_record=fail) raises
        OversizedRecordError placed among the records handed over, so the caller can name
        its input line; no record after it is queued, as in one process. Runs of several
        destinations are then handed over record by record in input order (`in_order`
        gives them): handing one destination's run whole would queue its records from
        after the refused one.
        """
        self.hand_over_held()  # (lines this process mapped itself came before these)
        producers = self._by_index
        if len(runs) > 1 and any(producers[index].refuses(run) for index, run in runs):
            for position, record in enumerate(in_order()):
                try:
                    producers[record[0]].add_all((record,))
                except OversizedRecordError as exc:
                    raise exc.at(position) from None
        else:
            for index, run in runs:
                # One run (runs of several are never refused here): its places are the input's.
                producers[index].add_run(run)
        if self.stats.records_read >= self._next_progress_check:
            self._maybe_progress()

    def count_mapped(self, counts: RunStats) -> None:
        """Events a mapping process encoded (its own counts, added to this run's)."""
        self.stats.add(counts)
        self.warn_about_fallbacks()

    def warn_about_fallbacks(self) -> None:
        """Once per run and kind: values the configuration names that events lack."""
        stats = self.stats
        if stats.key_fallbacks and not self._warned_key:
            self._warned_key = True
            logger.warning(
                "partition_key '%s' is missing or empty in some events: they use their messageId as "
                "partition key (counted as key_fallbacks in the run summary)",
                self.encoder.partition_keys.setting,
            )
        if stats.timestamp_fallbacks and not self._warned_timestamp:
            self._warned_timestamp = True
            logger.warning(
                "some records hold a timestamp that is not a date-time (ISO 8601 text or Unix time): "
                "their events use time_extracted, else the current time (counted as timestamp_fallbacks "
                "in the run summary; the value itself stays in the event's properties or traits)"
            )
        if stats.ids_not_text and not self._warned_ids:
            self._warned_ids = True
            logger.warning(
                "some records hold an object or a list where a userId or anonymousId belongs (the field "
                "user_id_field / anonymous_id_field names, else userId / user_id, anonymousId / anonymous_id): "
                "ids are text or numbers, so those events were sent without it, anonymous when they had no "
                "other id (counted as ids_not_text in the run summary)"
            )

    def flush(self) -> None:
        """Wait until every record written or handed over so far is acknowledged by AWS."""
        self.hand_over_held()
        for producer in self.producers.values():
            producer.flush()

    def close(self) -> None:
        for producer in self.producers.values():
            producer.close()

    def _maybe_progress(self) -> None:
        self._next_progress_check = self.stats.records_read + 1000
        now = self._clock()
        if now - self._last_progress < PROGRESS_SECONDS:
            return
        self._last_progress = now
        elapsed = max(now - self._started, 1e-9)
        parts = []
        for destination, producer in sorted(self.producers.items()):
            s = producer.stats.snapshot()
            pacing = producer.pacing()
            parts.append(
                f"{destination} queued={s['records_queued']} sent={s['records_sent']} retried={s['retried_records']} "
                f"refused={sum(pacing.refused.values())} waited={pacing.waited:.1f}s"
            )
        logger.info(
            "progress: read=%d (%.0f records/s) %s",
            self.stats.records_read,
            self.stats.records_read / elapsed,
            "; ".join(parts),
        )

    def summary_lines(self) -> Iterable[str]:
        """One line per destination stream, plus one for events no rule took.

        Each ends with the seconds since the writer started (at the run's first record, once
        the destinations were checked) and a rate over them: per destination events
        acknowledged per second, for the events records read per second. A run shorter than
        the progress interval logs no progress line, so these are its only rates.
        """
        elapsed = max(self._clock() - self._started, 0.0)
        for destination, producer in sorted(self.producers.items()):
            s = producer.stats.snapshot()
            pacing = producer.pacing()
            yield (
                f"summary {destination}: records_sent={s['records_sent']} aws_records={s['aws_records']} "
                f"billed_units={s['billed_units']} bytes={s['bytes_sent']} "
                f"calls={s['calls']} retried_records={s['retried_records']} throttles={s['throttles']} "
                f"refused={sum(pacing.refused.values())} waited_seconds={pacing.waited:.1f} "
                f"skipped={s['skipped']} dead_lettered={s['dead_lettered']} failed={s['failed']}"
                + (f" resent_after_reshard={s['resent']}" if s["resent"] else "")
                + _timing(s["records_sent"], elapsed)
            )
            yield capacity_line(destination, s["records_sent"], pacing, s["aws_records"])
        yield (
            f"summary events: read={self.stats.records_read} unmapped={self.stats.unmapped} "
            f"dropped_anonymous={self.stats.dropped_anonymous} key_fallbacks={self.stats.key_fallbacks} "
            f"timestamp_fallbacks={self.stats.timestamp_fallbacks} ids_not_text={self.stats.ids_not_text} "
            f"non_finite_numbers={self.stats.non_finite_numbers} handed_back={self.stats.handed_back}"
            + _timing(self.stats.records_read, elapsed)
        )


def _timing(records: int, elapsed: float) -> str:
    """` elapsed_seconds=S records_per_second=R`: values without spaces or thousands separators,
    always with a decimal point (so summary parsers read them as floats); the rate is 0.0 when no
    time has passed."""
    rate = records / elapsed if elapsed > 0 else 0.0
    return f" elapsed_seconds={elapsed:.3f} records_per_second={rate:.1f}"


def capacity_line(destination: Destination, sent: int, pacing: Pacing, aws_records: int | None = None) -> str:
    """The destination's capacity against what was achieved, and what pacing cost. `aws_records`:
    records AWS stored, when events were packed into fewer of them (`aggregation`)."""
    where = f"{pacing.shards} shard(s)" if pacing.shards else "the stream"
    if pacing.records_per_second is None and pacing.bytes_per_second is None:
        limit = "no limit known (nothing refused)"
    else:
        records = f"{pacing.records_per_second:,.0f} records/s" if pacing.records_per_second is not None else None
        size = f"{pacing.bytes_per_second / (1024 * 1024):,.2f} MiB/s" if pacing.bytes_per_second is not None else None
        limit = " and ".join(part for part in (records, size) if part)
    achieved = sent / pacing.elapsed if pacing.elapsed > 0 else 0.0
    packed = ""
    if aws_records is not None and aws_records != sent:
        rate = aws_records / pacing.elapsed if pacing.elapsed > 0 else 0.0
        packed = f" (events, packed into {rate:,.0f} AWS records/s)"
    refused = ", ".join(f"{code} {n}" for code, n in sorted(pacing.refused.items())) or "none"
    return (
        f"capacity {destination}: {where}, {limit}; averaged {achieved:,.0f} records/s{packed} over "
        f"{pacing.elapsed:.1f} s; "
        f"refused for throughput: {refused}; waited {pacing.waited:.1f} s for capacity"
    )
