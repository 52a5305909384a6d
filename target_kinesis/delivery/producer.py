"""One producer per destination stream: paced batches, concurrent calls, partial-failure retries.

The delivery promise lives here. A batch is owned by one worker from its first call to
its last answer: records AWS acknowledged are counted and never sent again, only the
refused ones are sent again, and the batch is done only when every record is acknowledged,
back in line for capacity, or declared undeliverable. `flush()` returns only when everything
added so far is acknowledged, which is what lets the target emit STATE.

Records are sent at the stream's capacity (delivery/flow.py, delivery/pacing.py): a record
takes its shard's budget before it is batched. A record refused for throughput anyway goes
back in line on its shard, which slows down; it never uses up max_retries. Only a destination
that accepted nothing for `stall_timeout_seconds` while records waited fails the run for
throughput. Other faults are retried with backoff, at most max_retries times.

Memory is bounded: at most `max_concurrent_requests` batches are in flight, one more is
buffered, and a bounded backlog waits for capacity; `add_all()` blocks beyond that.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from target_kinesis.aws.batch_api import JsonCaller, PutAnswer, Service, partition_key_of, payload_of
from target_kinesis.aws.errors import error_code
from target_kinesis.aws.services import SERVICES
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.aggregation import Aggregator, Member, Packed, members_of, repack
from target_kinesis.delivery.batching import Column, Entry, PacingBatcher
from target_kinesis.delivery.dead_letters import DeadLetters
from target_kinesis.delivery.encoding import Encoded
from target_kinesis.delivery.flow import DestinationFlow
from target_kinesis.delivery.pacing import PacedBatcher, PacedKeyedBatcher
from target_kinesis.delivery.retry import Action, backoff_delays, classify, stall_hint
from target_kinesis.delivery.shards import ShardMap
from target_kinesis.delivery.stats import DestinationStats
from target_kinesis.errors import DeliveryError, InputError

logger = logging.getLogger("target-kinesis")


_STATIC_EXPIRED = "static credentials expired: supply fresh ones or use role_arn"
#: Records buffered beyond the calls in flight (behind keys in flight with ordering per_key, or
#: waiting for capacity), in batches' worth, before add_all blocks.
PER_KEY_BACKLOG_BATCHES = 4
BACKLOG_BATCHES = 4
#: Bytes of a call of KPL aggregates unless max_batch_bytes is set: about 20 aggregates, 2,000
#: small events, four times a call of 500 plain records. Calls of 5 MiB only hold more in memory
#: while in flight (wire form, request body, HTTP buffers): measured on the null endpoint, peak
#: memory 173 MiB with 5 MiB calls against 127 MiB without aggregation.
PACKED_CALL_BYTES = 1024 * 1024
#: A shard map is read again at most this often (a reshard shows in many answers at once).
MAP_REFRESH_SECONDS = 2.0
#: At most one line per destination this often about retries and calls waiting for an answer.
STALL_LOG_SECONDS = 10.0


class OversizedRecordError(InputError):
    """A record above max_record_bytes with on_oversized_record=fail.

    `position`: the record's place among those handed over in the call that refused it,
    so that the caller can name its input line.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position

    def at(self, position: int) -> OversizedRecordError:
        """The same refusal, placed among a larger hand-over."""
        return OversizedRecordError(str(self), position)


@dataclass(frozen=True)
class ProducerLimits:
    """How one destination's producer may send: call sizes, concurrency, retries, and what
    to do with a record above the record limit."""

    max_batch_records: int
    max_batch_bytes: int
    max_record_bytes: int
    max_concurrent_requests: int
    max_retries: int
    retry_base_delay: float
    retry_max_delay: float
    on_oversized_record: str
    per_key_order: bool
    #: Throttling fails the run only when the destination accepted nothing for this long.
    stall_timeout_seconds: float = 300.0
    #: none, kpl or lines (delivery/aggregation.py), and a packed record's bytes and events at most.
    aggregation: str = "none"
    aggregation_max_bytes: int = 0
    aggregation_max_records: int | None = None

    @classmethod
    def for_destination(cls, settings: Settings, destination: Destination, stream_max: int | None) -> ProducerLimits:
        """`stream_max`: the stream's own record limit, when the preflight describe read it."""
        max_record, max_batch = settings.size_limits(destination, stream_max)
        service = SERVICES[destination.service]
        # A packed record is a record: its data and partition key (at most 256 characters of up
        # to 4 bytes) within the record limit.
        packed_max = min(
            settings.aggregation_max_bytes or service.aggregation_max_bytes,
            max_record - 4 * service.limits.max_partition_key_chars,
        )
        aggregation = settings.aggregation_for(destination)
        if aggregation == "kpl" and settings.max_batch_bytes is None:
            max_batch = max(min(max_batch, PACKED_CALL_BYTES), max_record)
        return cls(
            max_batch_records=settings.max_batch_records,
            max_batch_bytes=max_batch,
            max_record_bytes=max_record,
            max_concurrent_requests=settings.max_concurrent_requests,
            max_retries=settings.max_retries,
            retry_base_delay=settings.retry_base_delay,
            retry_max_delay=settings.retry_max_delay,
            on_oversized_record=settings.on_oversized_record,
            per_key_order=settings.ordering == "per_key",
            stall_timeout_seconds=settings.stall_timeout_seconds,
            aggregation=aggregation,
            aggregation_max_bytes=packed_max,
            aggregation_max_records=settings.aggregation_max_records or service.aggregation_max_records,
        )


@dataclass(frozen=True)
class Pacing:
    """A snapshot of one destination's pacing."""

    shards: int
    #: What the destination may take a second now (None: no limit known yet).
    records_per_second: float | None
    bytes_per_second: float | None
    refused: dict[str, int]
    #: Seconds the caller waited for capacity.
    waited: float
    #: Seconds from the producer's start to the last record AWS accepted.
    elapsed: float


class MapSource(t.Protocol):
    """Where a Kinesis destination's shard map comes from, and goes when it is read again
    (the encoder that predicts shards in this process shares it)."""

    def current(self) -> ShardMap | None: ...

    def reread(self) -> ShardMap | None:
        """ListShards again; None when the map cannot be read (pacing per stream goes on)."""


class Producer:
    def __init__(
        self,
        destination: Destination,
        service: Service,
        aws: JsonCaller,
        limits: ProducerLimits,
        *,
        flow: DestinationFlow,
        dead_letters: DeadLetters,
        refresh_credentials: Callable[[], bool],
        shard_maps: MapSource | None = None,
        stats: DestinationStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.destination = destination
        self.service = service
        self.aws = aws
        self.stats = stats or DestinationStats()
        self.flow = flow
        self.max_record_bytes = min(limits.max_record_bytes, limits.max_batch_bytes)
        self._max_in_flight = limits.max_concurrent_requests
        self._max_retries = limits.max_retries
        self._retry_base_delay = limits.retry_base_delay
        self._retry_max_delay = limits.retry_max_delay
        self._on_oversized = limits.on_oversized_record
        self._stall_timeout = limits.stall_timeout_seconds
        self._dead_letters = dead_letters
        self._refresh_credentials = refresh_credentials
        self._maps = shard_maps
        self._clock = clock
        #: With `aggregation`, events are packed before they are batched; records handed over
        #: then carry their bytes as they are, not their wire form (encoding.Encoder).
        self._limits = limits
        self._aggregator = (
            Aggregator(limits.aggregation, limits.aggregation_max_bytes, limits.aggregation_max_records)
            if limits.aggregation != "none"
            else None
        )
        self._batcher: PacingBatcher
        records, size = limits.max_batch_records, limits.max_batch_bytes
        if limits.per_key_order and service.uses_partition_key:
            self._batcher = PacedKeyedBatcher(records, size, records * PER_KEY_BACKLOG_BATCHES, flow, clock)
        else:
            self._batcher = PacedBatcher(records, size, flow, records * BACKLOG_BATCHES, clock)
        self._cond = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._error: DeliveryError | None = None
        self._abandon = threading.Event()
        self._seq = 0
        self._started = clock()
        #: When AWS last accepted a record of this destination (stall_timeout_seconds).
        self._last_accept = self._started
        self._last_map_read = -MAP_REFRESH_SECONDS
        # What a stalled destination is doing, for the lines that make a stall visible.
        self._watch = threading.Lock()
        self._calls_started: dict[int, float] = {}
        self._last_retry: str | None = None
        self._last_stall_log = 0.0
        self._executor = ThreadPoolExecutor(
            max_workers=limits.max_concurrent_requests, thread_name_prefix=f"put-{destination.stream}"
        )

    # -- main thread -----------------------------------------------------------------

    def add_all(self, records: Iterable[Encoded]) -> None:
        """Queue encoded records in order (their destination index is not looked at); blocks
        while the stream is as busy as the limits allow.

        One lock for the lot: records arrive from mapping processes a thousand at a time.
        """
        if self._aggregator is not None:
            self._add_packed(records)
            return
        max_size = self.max_record_bytes
        batcher = self._batcher
        first_seq = self._seq
        with self._cond:
            self._raise_if_failed()
            try:
                for position, (_, key, size, wire, shard) in enumerate(records):
                    if size > max_size:
                        self._oversized(wire, key, size, position)
                        continue
                    self._seq += 1
                    batcher.add(Entry(wire, key, size, self._seq, shard=shard))
                    if batcher.needs_pump():  # most records only join the open batch
                        self._pump(force=False)
            finally:
                self.stats.records_queued += self._seq - first_seq

    def _add_packed(self, records: Iterable[Encoded]) -> None:
        """Queue events of a destination that packs them (`aggregation`): each joins the open
        record of its shard; records that fill up are batched."""
        aggregator = self._aggregator
        assert aggregator is not None
        max_size = self.max_record_bytes
        batcher = self._batcher
        shard_map = self._maps.current() if self._maps is not None else None
        mapped = shard_map is not None
        packed: list[Packed] = []
        with self._cond:
            self._raise_if_failed()
            for position, (_, key, size, data, shard) in enumerate(records):
                if size > max_size:
                    self._oversized(data, key, size, position, packed=True)
                    continue
                self.stats.records_queued += 1
                aggregator.add(data, key, shard if mapped else None, packed)
                if packed:
                    self._queue_packed(packed)
                    packed.clear()
                    if batcher.needs_pump():
                        self._pump(force=False)

    def _queue_packed(self, packed: list[Packed]) -> None:
        """Lock held: finished packed records into the batcher, in order."""
        for entry in self._packed_entries(packed):
            self._batcher.add(entry)

    def _packed_entries(self, packed: list[Packed]) -> list[Entry]:
        """Lock held: finished packed records as entries, in order, marked with the shard map
        they were packed by (packed again should it change)."""
        version = self._map_version()
        wire, size = self.service.wire, self.service.record_size
        entries = []
        for record in packed:
            self._seq += 1
            entries.append(
                Entry(
                    wire(record.data, record.key, record.explicit_hash_key),
                    record.lane,
                    size(record.data, record.key),
                    self._seq,
                    shard=record.shard,
                    packed=len(record.members),
                    version=version,
                )
            )
        return entries

    def _members(self, entry: Entry) -> list[Member]:
        """The events an entry carries, (bytes, partition key) each."""
        if entry.members is not None:
            return entry.members
        data = payload_of(entry.wire)
        if not entry.packed:
            return [(data, entry.key)]
        key = partition_key_of(entry.wire) if self.service.uses_partition_key else None
        return members_of(self._limits.aggregation, data, key)

    def _repack(self, members: list[Member]) -> list[Packed]:
        """Events packed again by the shard map as it is now (it was read again)."""
        limits = self._limits
        shard_map = self._maps.current() if self._maps is not None else None
        placed = [(m, shard_map.index_of(m[1] or "") if shard_map is not None else None) for m in members]
        return repack(limits.aggregation, limits.aggregation_max_bytes, limits.aggregation_max_records, placed)

    def add_run(self, run: Entry) -> None:
        """Queue a run of records (from a mapping process's answer, see `batching.Column`).

        Records are handled one by one only when they must be: per-key ordering gives
        each record its own turn, and an oversized one is refused alone, as by `add_all`.
        """
        column = run.column
        if column is not None and self._aggregator is not None:
            self._add_packed(self._column_records(column, run.first, run.count))
            return
        if (
            column is None
            or isinstance(self._batcher, PacedKeyedBatcher)
            or _largest(run) > self.max_record_bytes
            or column.map_version != self._map_version()
        ):
            shard_map = self._maps.current() if self._maps is not None else None
            fresh = column is not None and column.map_version == self._map_version()
            self.add_all(
                [
                    (
                        0,
                        e.key,
                        e.size,
                        e.wire,
                        e.shard if fresh or shard_map is None else shard_map.index_of(e.key or ""),
                    )
                    for e in run.split()
                ]
            )
            return
        batcher = self._batcher
        with self._cond:
            self._raise_if_failed()
            self._seq += run.count
            run.seq = self._seq
            self.stats.records_queued += run.count
            batcher.add(run)
            if batcher.needs_pump():
                self._pump(force=False)

    def _column_records(self, column: Column, first: int, count: int) -> Iterator[Encoded]:
        """Records `first`.. of a column as `add_all` takes them, without an Entry each (the
        events of a destination that packs them are handled one by one in this process)."""
        body, ends, keys, sizes, shards = column.body, column.ends, column.keys, column.sizes, column.shards
        shard_map = self._maps.current() if self._maps is not None else None
        stale = shard_map is not None and column.map_version != shard_map.version
        start = ends[first - 1] + 1 if first else 0
        for i in range(first, first + count):
            end = ends[i]
            key = keys[i] if keys else None
            if stale and shard_map is not None:
                shard = shard_map.index_of(key or "")
            else:
                shard = shards[i] if shards is not None else 0
            yield (0, key, sizes[i], body[start:end], shard)
            start = end + 1

    def refuses(self, run: Entry) -> bool:
        """Whether adding `run` would stop at an oversized record (on_oversized_record=fail)."""
        return self._on_oversized == "fail" and _largest(run) > self.max_record_bytes

    def flush(self) -> None:
        """Send everything buffered and wait until AWS acknowledged all of it.

        Raises DeliveryError as soon as any record is known to be undeliverable.
        """
        with self._cond:
            if self._aggregator is not None:
                packed: list[Packed] = []
                self._aggregator.flush(packed)
                self._queue_packed(packed)
            while True:
                self._pump(force=True)
                if self._in_flight == 0 and self._batcher.pending == 0:
                    break
                self._wait()
            self._raise_if_failed()

    def close(self, *, wait: bool = True) -> None:
        """Stop: abandon retries still waiting; let calls on the wire finish, unless `wait` is
        False (stopping at once: a call that never answers must not hold the exit)."""
        self._abandon.set()
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def pacing(self) -> Pacing:
        """What pacing did and allows now (for the progress line and the summary)."""
        with self._cond:
            records, size = self.flow.capacity()
            return Pacing(
                shards=len(self.flow.shard_ids),
                records_per_second=records,
                bytes_per_second=size,
                refused=dict(self.flow.stats.refused),
                waited=self.flow.stats.waited,
                elapsed=self._last_accept - self._started,
            )

    @property
    def waiting(self) -> int:
        """Records queued and not yet in a call: what memory holds beyond the calls in flight."""
        with self._cond:
            return self._batcher.pending

    def unacknowledged(self) -> int:
        """Records handed over and not (yet) acknowledged, failed or dropped."""
        s = self.stats.snapshot()
        return s["records_queued"] - s["records_sent"] - s["failed"]

    def _log_stall(self) -> None:
        """While flush waits: one line per STALL_LOG_SECONDS on calls unanswered and retries,
        so that an endpoint that stopped answering is visible while it stalls."""
        now = time.monotonic()
        with self._watch:
            if now - self._last_stall_log < STALL_LOG_SECONDS or not self._calls_started:
                return
            oldest = now - min(self._calls_started.values())
            calls = len(self._calls_started)
            last_retry = self._last_retry
            if oldest < STALL_LOG_SECONDS and last_retry is None:
                return
            self._last_stall_log = now
        logger.warning(
            "%s: waiting for %d call(s), the oldest unanswered for %.0f s; %d record(s) retried so far%s",
            self.destination,
            calls,
            oldest,
            self.stats.snapshot()["retried_records"],
            f" (last: {last_retry})" if last_retry else "",
        )

    def _retrying(self, records: int, code: str, message: str, attempt: int, *, throttle: bool) -> None:
        """Count a retry, and log it at most once per STALL_LOG_SECONDS per destination."""
        self.stats.add(retried_records=records, throttles=int(throttle))
        detail = f"{code}: {message}" if message else code
        now = time.monotonic()
        with self._watch:
            self._last_retry = detail
            if now - self._last_stall_log < STALL_LOG_SECONDS:
                return
            self._last_stall_log = now
        logger.warning(
            "%s: retrying %d record(s), attempt %d of %d: %s",
            self.destination,
            records,
            attempt + 1,
            self._max_retries + 1,
            detail,
        )

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _pump(self, *, force: bool) -> None:
        """Hand ready batches to workers while slots are free (lock held).

        When the backlog is full (a whole batch waits, or per_key: too many records
        wait behind keys already in flight), wait for a call to finish: that is the
        backpressure that keeps memory flat whatever the input size.
        """
        while True:
            self._raise_if_failed()
            if self._in_flight < self._max_in_flight:
                batch = self._batcher.pop_ready(force=force)
                if batch is not None:
                    self._in_flight += 1
                    self._executor.submit(self._run, batch)
                    continue
            full = self._batcher.backlog_full()
            if full or (force and self._in_flight >= self._max_in_flight and self._in_flight > 0):
                if self._in_flight == 0 and self._batcher.next_ready_in() is None:
                    return  # nothing in flight and nothing held for capacity: nothing to wait for
                self._wait()
                continue
            return

    def _wait(self) -> None:
        """Wait (lock held) for a call to finish or, when records wait for capacity, until the
        first of them may go; that time is counted as time spent waiting for capacity."""
        timeout = 1.0
        ready_in = self._batcher.next_ready_in()
        # With every call slot taken, only a call's end can let more go: that wakes us.
        for_capacity = (
            ready_in is not None and self._in_flight < self._max_in_flight and self._batcher.waiting_for_capacity > 0
        )
        if for_capacity and ready_in is not None:
            timeout = min(timeout, max(ready_in, 0.001))
        started = self._clock()
        self._cond.wait(timeout=timeout)
        if for_capacity:
            self.flow.stats.waited += self._clock() - started
        self._check_stall()
        self._log_stall()

    def _check_stall(self) -> None:
        """Lock held: throttling fails the run only after stall_timeout_seconds with nothing
        accepted while records wait for capacity; then they are undeliverable."""
        if self._error is not None or not self._batcher.waiting_for_capacity:
            return
        idle = self._clock() - self._last_accept
        if idle < self._stall_timeout:
            return
        refused = ", ".join(f"{code} {n}" for code, n in sorted(self.flow.stats.refused.items())) or "none yet"
        shards = len(self.flow.shard_ids)
        where = f"{shards} shard(s)" if shards else "its quota"
        held = self._batcher.drain()
        if self._aggregator is not None and self._aggregator.pending:  # events not packed yet fail alike
            held.append(Entry(b"", None, 0, members=self._aggregator.take_members()))
        self._cond.release()
        try:
            self._fail(
                held,
                "ThroughputStalled",
                f"nothing accepted for {idle:.0f} s (stall_timeout_seconds) at {where}; refused: {refused}",
                stall_hint(self.flow.stats.refused),
            )
        finally:
            self._cond.acquire()

    def _oversized(self, wire: bytes, key: str | None, size: int, position: int, *, packed: bool = False) -> None:
        """`packed`: `wire` holds the record's bytes as they are (a destination that packs)."""
        where = f"{self.destination.service} stream '{self.destination.stream}'"
        if self._on_oversized == "fail":
            raisable = (
                self.service.raise_record_limit if self.max_record_bytes < self.service.limits.max_record_bytes else ""
            )
            raise OversizedRecordError(
                f"record of {size} bytes for {where} is above max_record_bytes ({self.max_record_bytes}); "
                "set on_oversized_record to skip or dead_letter to continue past it"
                + (f", or: {raisable}" if raisable else ""),
                position,
            )
        if self._on_oversized == "dead_letter":
            self._dead_letters.write(
                reason="oversized",
                service=self.destination.service,
                stream=self.destination.stream,
                data=wire if packed else payload_of(wire),
                partition_key=key,
                error_code="RecordTooLarge",
                error_message=f"{size} bytes > max_record_bytes {self.max_record_bytes}",
            )
            self.stats.add(dead_lettered=1)
        else:
            self.stats.add(skipped=1)
        logger.warning(
            "Oversized record (%d bytes > %d) for %s %s (on_oversized_record=%s)",
            size,
            self.max_record_bytes,
            where,
            "written to dead letters" if self._on_oversized == "dead_letter" else "skipped",
            self._on_oversized,
        )

    # -- worker threads --------------------------------------------------------------

    def _run(self, batch: list[Entry]) -> None:
        try:
            self._deliver(batch)
        except Exception as exc:  # a bug of ours must still stop the run, not hang it
            self._fail(batch, type(exc).__name__, str(exc), "unexpected error in target-kinesis")
        finally:
            with self._cond:
                self._in_flight -= 1
                self._batcher.complete(batch)
                self._cond.notify_all()

    def _deliver(self, batch: list[Entry]) -> None:
        """Send until every record is acknowledged; retry only what AWS refused."""
        remaining = batch
        delays = backoff_delays(self._retry_base_delay, self._retry_max_delay)
        attempt = 0
        while True:
            if self._abandon.is_set():
                self._abandoned(remaining)
                return
            attempt += 1
            records = 0
            for entry in remaining:
                entry.attempts = attempt
                records += entry.count
            token = id(remaining)
            sent_at = self._clock()
            with self._watch:
                self._calls_started[token] = time.monotonic()
            try:
                answer = self.service.put(self.aws, self.destination.stream, [e.wire for e in remaining], records)
            except Exception as exc:
                with self._watch:
                    self._calls_started.pop(token, None)
                error = error_code(exc)
                code, message, status = error.code, error.message, error.status
                self.stats.add(calls=1, calls_failed=1, call_micros=int((self._clock() - sent_at) * 1e6))
                rule = classify(code, status, message)
                if self._for_capacity(code, rule.throttle):
                    self._back_in_line(remaining, code, offered=None, sent_at=sent_at)
                    return
                if rule.action is Action.REFRESH and not self._renewed(remaining, code, message, attempt):
                    return
                if rule.action is Action.FATAL or attempt > self._max_retries:
                    self._fail(remaining, code, message, rule.hint or "retries exhausted", attempt)
                    return
                self._retrying(records, code, message, attempt, throttle=rule.throttle)
                if self._abandon.wait(next(delays)):
                    self._abandoned(remaining)
                    return
                continue

            with self._watch:
                self._calls_started.pop(token, None)
            self.stats.add(calls=1, call_micros=int((self._clock() - sent_at) * 1e6))
            results = answer.errors
            if answer.first_placed is not None:
                self._check_placement(remaining, *answer.first_placed)
                if self._aggregator is not None:
                    self._check_packed_placement(remaining, answer)
            if not any(results):  # the usual answer: everything acknowledged
                self._accepted(remaining)
                return
            if records != len(remaining):  # runs: each record's own fate from here on
                remaining = [single for entry in remaining for single in entry.split()]
            refused = [(entry, error) for entry, error in zip(remaining, results, strict=True) if error is not None]
            if len(refused) < len(remaining):
                refused_ids = {id(entry) for entry, _ in refused}
                self._accepted([entry for entry in remaining if id(entry) not in refused_ids])
            rules = [(entry, error, classify(error.code, None, error.message)) for entry, error in refused]
            capacity = [(e, err) for e, err, r in rules if self._for_capacity(err.code, r.throttle)]
            if capacity:
                self._back_in_line([e for e, _ in capacity], capacity[0][1].code, offered=remaining, sent_at=sent_at)
                rules = [(e, err, r) for e, err, r in rules if not self._for_capacity(err.code, r.throttle)]
                refused = [(e, err) for e, err, _ in rules]
                if not refused:
                    return
            fatal = next(((e, r) for _, e, r in rules if r.action is Action.FATAL), None)
            if fatal is not None or attempt > self._max_retries:
                refusal, rule = fatal or (rules[0][1], rules[0][2])
                self._fail(
                    [entry for entry, _ in refused],
                    refusal.code,
                    refusal.message,
                    rule.hint or "retries exhausted",
                    attempt,
                )
                return
            expired = next((e for _, e, r in rules if r.action is Action.REFRESH), None)
            if expired is not None and not self._renewed(
                [entry for entry, _ in refused], expired.code, expired.message, attempt
            ):
                return
            first = refused[0][1]
            throttled = any(r.throttle for _, _, r in rules)
            self._retrying(len(refused), first.code, first.message, attempt, throttle=throttled)
            remaining = [entry for entry, _ in refused]
            if self._abandon.wait(next(delays)):
                self._abandoned(remaining)
                return

    def _renewed(self, entries: list[Entry], code: str, message: str, attempt: int) -> bool:
        """After ExpiredToken: refresh the credentials; False, the records failed, when they
        cannot be (static keys, or STS refusing to renew the role's session)."""
        try:
            if self._refresh_credentials():
                return True
        except Exception as exc:  # STS's refusal (aws.errors.RoleRefused), as any AWS error
            error = error_code(exc)
            self._fail(entries, error.code, error.message, classify(error.code, error.status).hint, attempt)
            return False
        self._fail(entries, code, message, _STATIC_EXPIRED, attempt)
        return False

    def _for_capacity(self, code: str, throttle: bool) -> bool:
        """A refusal for throughput (sent again when there is room) rather than a fault."""
        return throttle or code in self.service.capacity_codes

    def _accepted(self, entries: list[Entry]) -> None:
        """AWS acknowledged these: count events, AWS records and what AWS bills for them."""
        records = events = size = units = 0
        unit = self.service.billing_unit_bytes
        for entry in entries:
            records += entry.count
            events += entry.events
            size += entry.size
            if entry.count == 1:
                units += -(-entry.size // unit)
            else:
                column = entry.column
                assert column is not None
                units += sum(-(-s // unit) for s in column.sizes[entry.first : entry.first + entry.count])
        self.stats.add(records_sent=events, aws_records=records, bytes_sent=size, billed_units=units)
        with self._cond:
            self._last_accept = self._clock()
            self.flow.accepted(records, size)

    def _back_in_line(self, entries: list[Entry], code: str, *, offered: list[Entry] | None, sent_at: float) -> None:
        """Records refused for throughput: back in line, first on their shard. `offered`: every
        record of the call (single records), when only some were refused: each shard refused
        slows down by the share it accepted; a whole call refused slows the whole stream down."""
        singles = [single for entry in entries for single in entry.split()]
        for single in singles:
            single.attempts = 0  # a refusal for throughput is not an attempt that counts
        by_shard: dict[int, tuple[int, int]] | None = None
        share: float | None = None  # a whole call refused says nothing of how far over it was
        if offered is not None:
            counts: dict[int, list[int]] = {}
            for record in offered:
                counts.setdefault(record.shard, [0, 0])[0] += 1
            for single in singles:
                counts.setdefault(single.shard, [0, 0])[1] += 1
            share = 1 - len(singles) / max(len(offered), 1)
            per_record = code in self.service.capacity_codes and self._maps is not None
            by_shard = {shard: (n, r) for shard, (n, r) in counts.items()} if per_record else None
        with self._cond:
            self.flow.refused(code, len(singles), by_shard, share, sent_at)
            shard_map = self._maps.current() if self._maps is not None else None
            if shard_map is not None:  # placed by the map as it is now (it may have been read again)
                singles = self._replaced(singles, shard_map.version)
                for single in singles:
                    if not single.packed:
                        single.shard = shard_map.index_of(single.key or "")
            self._batcher.requeue(singles)
            self.stats.add(throttles=1)
            self._cond.notify_all()

    def _replaced(self, entries: list[Entry], version: int) -> list[Entry]:
        """Lock held: packed records packed by an older shard map, packed again by this one
        (their events may now belong to other shards); other entries as they are."""
        if self._aggregator is None or all(not e.packed or e.version == version for e in entries):
            return entries
        kept = [e for e in entries if not e.packed or e.version == version]
        stale = [m for e in entries if e.packed and e.version != version for m in self._members(e)]
        return kept + self._packed_entries(self._repack(stale))

    def _map_version(self) -> int:
        shard_map = self._maps.current() if self._maps is not None else None
        return shard_map.version if shard_map is not None else 0

    def _check_placement(self, entries: list[Entry], index: int, shard_id: str) -> None:
        """AWS put a record on `shard_id`; if the map predicted another shard, read it again
        (a reshard, or on-demand scaling), at most every MAP_REFRESH_SECONDS."""
        maps = self._maps
        shard_map = maps.current() if maps is not None else None
        if maps is None or shard_map is None:
            return
        predicted = _shard_of(entries, index)
        if predicted < len(shard_map.ids) and shard_map.ids[predicted] == shard_id:
            return
        with self._cond:
            now = self._clock()
            if now - self._last_map_read < MAP_REFRESH_SECONDS or maps.current() is not shard_map:
                return
            self._last_map_read = now
        fresh = maps.reread()
        if fresh is None:
            return
        logger.info("%s: the shard map changed (%d open shards); pacing by the new map", self.destination, len(fresh))
        with self._cond:
            self.flow.reshard(fresh.ids)
            if self._aggregator is not None:  # what is packed and not sent yet: packed again by the new map
                held = self._batcher.drain()
                members = [m for entry in held for m in self._members(entry)]
                members += self._aggregator.take_members()
                self._queue_packed(self._repack(members))
            else:
                self._batcher.reshard(lambda entry: fresh.index_of(entry.key or ""))
            self._cond.notify_all()

    def _check_packed_placement(self, entries: list[Entry], answer: PutAnswer) -> None:
        """KPL aggregates AWS stored on a shard other than the one they were packed for (a reshard
        between packing and sending): the KCL drops their events whose hash key lies outside that
        shard, so those events are packed again by the map as it is now and sent again.
        Consumers that deaggregate without that check (aws-kinesis-agg in Lambda) see them twice:
        at least once, never lost."""
        maps = self._maps
        shard_map = maps.current() if maps is not None else None
        if maps is None or shard_map is None:
            return
        stray: list[tuple[Entry, str]] = []
        for index, entry in enumerate(entries):
            if entry.packed < 2 or answer.errors[index] is not None:
                continue
            landed = answer.placed(index)
            if landed is None or (entry.version == shard_map.version and shard_map.ids[entry.shard] == landed):
                continue
            stray.append((entry, landed))
        if not stray:
            return
        if any(landed not in shard_map.ids for _, landed in stray):
            shard_map = maps.reread() or shard_map  # a shard the map does not know: it is stale
        ids = shard_map.ids
        resend = [
            member
            for entry, landed in stray
            for member in self._members(entry)
            if landed in ids and ids[shard_map.index_of(member[1] or "")] != landed
        ]
        if not resend:
            return
        self.stats.add(resent=len(resend))
        logger.warning(
            "%s: %d event(s) of aggregates a reshard placed on another shard are sent again (the KCL "
            "drops them there; consumers that deaggregate without that check see them twice)",
            self.destination,
            len(resend),
        )
        with self._cond:  # records_queued is counted under this lock, as add_all does
            self.stats.records_queued += len(resend)
            self._queue_packed(self._repack(resend))
            self._cond.notify_all()

    def _abandoned(self, entries: list[Entry]) -> None:
        """Records this batch still held when the run stopped on another batch's error.

        They were not acknowledged: count them and dead-letter them like any other
        undelivered record, so the summary and the dead-letter file tell the whole story.
        (A plain close() after a clean flush leaves nothing behind to abandon.)
        """
        if entries and self._error is not None:
            self._record_failure(entries, "Abandoned", "not sent: the run stopped on an error in another batch")

    def _record_failure(self, entries: list[Entry], code: str, message: str, attempts: int = 0) -> None:
        entries = [single for entry in entries for single in entry.split()]
        events = 0
        for entry in entries:
            # A packed record's events are dead-lettered one by one, as they were read.
            members = self._members(entry)
            for data, key in members:
                self._dead_letters.write(
                    reason="undeliverable",
                    service=self.destination.service,
                    stream=self.destination.stream,
                    data=data,
                    partition_key=key,
                    error_code=code,
                    error_message=message,
                    attempts=entry.attempts or attempts,
                )
            events += len(members)
        self.stats.add(failed=events, dead_lettered=events if self._dead_letters.enabled else 0)
        error = self._error
        if error is not None:  # the run's error line counts every record not delivered, as the summary does
            error.records = self.stats.snapshot()["failed"]

    def _fail(self, entries: list[Entry], code: str, message: str, hint: str, attempts: int = 0) -> None:
        """Declare records undeliverable: dead-letter them, count them, stop the run."""
        self._record_failure(entries, code, message, attempts)
        hint = hint.replace("{action}", f"{self.destination.service}:{self.service.api_name}")
        detail = f"{code}: {message}" if message else code
        error = DeliveryError(
            f"{self.destination.service} stream '{self.destination.stream}'",
            self.stats.snapshot()["failed"],
            f"after {attempts or 1} attempt(s): {detail} ({hint})",
        )
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()
        self._abandon.set()


def _shard_of(entries: list[Entry], index: int) -> int:
    """The predicted shard of the `index`th record of a batch (runs count their records)."""
    for entry in entries:
        if index < entry.count:
            column = entry.column
            if column is None or entry.count == 1:
                return entry.shard
            return column.shards[entry.first + index] if column.shards is not None else 0
        index -= entry.count
    return 0


def _largest(run: Entry) -> int:
    """The size of a run's largest record."""
    column = run.column
    return run.size if column is None else max(column.sizes[run.first : run.first + run.count])
