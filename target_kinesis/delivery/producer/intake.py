"""The producer's face: records handed over in order, batched at the stream's pace, handed to
workers, and `flush()`, which returns only when all of it is acknowledged (the promise is stated
at the top of producer/__init__.py).

Memory is bounded here: at most `max_concurrent_requests` batches are in flight, one more is
buffered, and a bounded backlog waits for capacity; `add_all()` blocks beyond that. A destination
that accepted nothing for `stall_timeout_seconds` while records waited fails the run here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from target_kinesis.aws.batch_api import JsonCaller, Service
from target_kinesis.config.destinations import Destination
from target_kinesis.delivery.aggregation import Packed
from target_kinesis.delivery.batching import Column, Entry
from target_kinesis.delivery.dead_letters import DeadLetters
from target_kinesis.delivery.encoding import Encoded
from target_kinesis.delivery.flow import DestinationFlow
from target_kinesis.delivery.pacing import PacedKeyedBatcher
from target_kinesis.delivery.producer.failures import Failures
from target_kinesis.delivery.producer.limits import ProducerLimits
from target_kinesis.delivery.producer.placement import Placement
from target_kinesis.delivery.producer.sending import BatchSender
from target_kinesis.delivery.producer.shared import MapSource, Shared
from target_kinesis.delivery.retry import stall_hint
from target_kinesis.delivery.stats import DestinationStats


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
        shared = Shared(destination, service, limits, flow=flow, stats=self.stats, shard_maps=shard_maps, clock=clock)
        self._shared = shared
        self.max_record_bytes = shared.max_record_bytes
        self._failures = Failures(shared, dead_letters)
        self._placement = Placement(shared)
        self._sender = BatchSender(shared, aws, self._failures, self._placement, refresh_credentials)
        self._max_in_flight = limits.max_concurrent_requests
        self._on_oversized = limits.on_oversized_record
        self._stall_timeout = limits.stall_timeout_seconds
        self._clock = clock
        self._aggregator = shared.aggregator
        self._batcher = shared.batcher
        self._cond = shared.cond
        self._in_flight = 0
        self._started = self._sender.last_accept
        self._executor = ThreadPoolExecutor(
            max_workers=limits.max_concurrent_requests, thread_name_prefix=f"put-{destination.stream}"
        )

    def add_all(self, records: Iterable[Encoded]) -> None:
        """Queue encoded records in order (their destination index is not looked at); blocks
        while the stream is as busy as the limits allow.

        One lock for the lot: records arrive from mapping processes a thousand at a time.
        """
        if self._aggregator is not None:
            self._add_packed(records)
            return
        max_size = self.max_record_bytes
        batcher, shared = self._batcher, self._shared
        first_seq = shared.seq
        with self._cond:
            self._failures.raise_if_failed()
            try:
                for position, (_, key, size, wire, shard) in enumerate(records):
                    if size > max_size:
                        self._failures.oversized(wire, key, size, position)
                        continue
                    shared.seq += 1
                    batcher.add(Entry(wire, key, size, shared.seq, shard=shard))
                    if batcher.needs_pump():  # most records only join the open batch
                        self._pump(force=False)
            finally:
                self.stats.records_queued += shared.seq - first_seq

    def _add_packed(self, records: Iterable[Encoded]) -> None:
        """Queue events of a destination that packs them (`aggregation`): each joins the open
        record of its shard; records that fill up are batched."""
        aggregator = self._aggregator
        assert aggregator is not None
        max_size = self.max_record_bytes
        batcher = self._batcher
        mapped = self._shared.shard_map() is not None
        packed: list[Packed] = []
        with self._cond:
            self._failures.raise_if_failed()
            for position, (_, key, size, data, shard) in enumerate(records):
                if size > max_size:
                    self._failures.oversized(data, key, size, position, packed=True)
                    continue
                self.stats.records_queued += 1
                aggregator.add(data, key, shard if mapped else None, packed)
                if packed:
                    self._placement.queue_packed(packed)
                    packed.clear()
                    if batcher.needs_pump():
                        self._pump(force=False)

    def add_run(self, run: Entry) -> None:
        """Queue a run of records (from a mapping process's answer, see `batching.Column`).

        Records are handled one by one only when they must be: per-key ordering gives
        each record its own turn, and an oversized one is refused alone, as by `add_all`.
        """
        column = run.column
        if column is not None and self._aggregator is not None:
            self._add_packed(self._column_records(column, run.first, run.count))
            return
        version = self._shared.map_version()
        if (
            column is None
            or isinstance(self._batcher, PacedKeyedBatcher)
            or _largest(run) > self.max_record_bytes
            or column.map_version != version
        ):
            shard_map = self._shared.shard_map()
            fresh = column is not None and column.map_version == version
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
        batcher, shared = self._batcher, self._shared
        with self._cond:
            self._failures.raise_if_failed()
            shared.seq += run.count
            run.seq = shared.seq
            self.stats.records_queued += run.count
            batcher.add(run)
            if batcher.needs_pump():
                self._pump(force=False)

    def _column_records(self, column: Column, first: int, count: int) -> Iterator[Encoded]:
        """Records `first`.. of a column as `add_all` takes them, without an Entry each (the
        events of a destination that packs them are handled one by one in this process)."""
        body, ends, keys, sizes, shards = column.body, column.ends, column.keys, column.sizes, column.shards
        shard_map = self._shared.shard_map()
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
                self._placement.queue_packed(packed)
            while True:
                self._pump(force=True)
                if self._in_flight == 0 and self._batcher.pending == 0:
                    break
                self._wait()
            self._failures.raise_if_failed()

    def close(self, *, wait: bool = True) -> None:
        """Stop: abandon retries still waiting; let calls on the wire finish, unless `wait` is
        False (stopping at once: a call that never answers must not hold the exit)."""
        self._shared.abandon.set()
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
                elapsed=self._sender.last_accept - self._started,
            )

    @property
    def waiting(self) -> int:
        """Records queued and not yet in a call: what memory holds beyond the calls in flight."""
        with self._cond:
            return self._batcher.pending

    def dead_lettered_by_code(self) -> dict[str, int]:
        """Events this destination wrote to the dead letters so far, by error code."""
        return self._failures.dead_lettered_by_code()

    def unacknowledged(self) -> int:
        """Records handed over and not (yet) acknowledged, failed or dropped."""
        s = self.stats.snapshot()
        return s["records_queued"] - s["records_sent"] - s["failed"]

    def _pump(self, *, force: bool) -> None:
        """Hand ready batches to workers while slots are free (lock held).

        When the backlog is full (a whole batch waits, or per_key: too many records
        wait behind keys already in flight), wait for a call to finish: that is the
        backpressure that keeps memory flat whatever the input size.
        """
        while True:
            self._failures.raise_if_failed()
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

    def _run(self, batch: list[Entry]) -> None:
        """A worker thread: one batch's whole life (producer/sending.py), then its slot back."""
        try:
            self._sender.deliver(batch)
        except Exception as exc:  # a bug of ours must still stop the run, not hang it
            self._failures.fail(batch, type(exc).__name__, str(exc), "unexpected error in target-kinesis")
        finally:
            with self._cond:
                self._in_flight -= 1
                self._batcher.complete(batch)
                self._cond.notify_all()

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
        self._sender.log_stall()

    def _check_stall(self) -> None:
        """Lock held: throttling fails the run only after stall_timeout_seconds with nothing
        accepted while records wait for capacity; then they are undeliverable."""
        if self._failures.error is not None or not self._batcher.waiting_for_capacity:
            return
        idle = self._clock() - self._sender.last_accept
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
            self._failures.fail(
                held,
                "ThroughputStalled",
                f"nothing accepted for {idle:.0f} s (stall_timeout_seconds) at {where}; refused: {refused}",
                stall_hint(self.flow.stats.refused),
            )
        finally:
            self._cond.acquire()


def _largest(run: Entry) -> int:
    """The size of a run's largest record."""
    column = run.column
    return run.size if column is None else max(column.sizes[run.first : run.first + run.count])
