"""Cutting a stream of records into API calls that respect every limit (pure, no AWS).

Two batchers share one interface so the producer does not care which is in use:

* `FifoBatcher` fills each call to the record or byte limit, in input order; fastest.
* `KeyedBatcher` (``ordering: per_key``) puts at most one record per partition key in a
  call and never sends a key's next record while one is in flight. A PutRecords answer
  can fail record i and accept a later record j of the same key; holding j back until i
  is acknowledged is the only way to keep per-key order across partial failures.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple, Protocol


@dataclass(slots=True, eq=False)
class Entry:
    """One record bound for one destination stream, or a run of consecutive ones.

    A run (`count` > 1) is records `first`.. of a `Column`: one object for up to a
    thousand records, so the main process does no work per record unless AWS refuses
    one. Its `wire` is theirs joined with commas, as the request body lists them.
    """

    #: The record as it appears in the request body (`Service.wire`); `services.payload_of`
    #: gives its bytes back when a dead letter needs them.
    wire: bytes
    key: str | None
    #: Bytes as AWS counts them against its limits (a run: its records' sum).
    size: int
    seq: int = 0
    attempts: int = field(default=0)
    count: int = 1
    column: Column | None = None
    first: int = 0
    #: The Kinesis shard (its index in the destination's shard map) a single record goes to.
    shard: int = 0
    #: A packed record (`aggregation`): how many events it carries (0: not packed). Its `key`
    #: is then its ordering lane, not a partition key; its events are read back from `wire`
    #: when needed (dead letters, packing again), rarely: keeping them twice doubled memory.
    packed: int = 0
    #: Events not packed yet, (bytes, partition key) each: a stand-in entry for dead letters.
    members: list[tuple[bytes, str | None]] | None = None
    #: The shard map version a packed record was packed by (packed again under a new map).
    version: int = 0

    @property
    def events(self) -> int:
        """Events this entry carries (a run: its records; a packed record: its events)."""
        if self.packed:
            return self.packed
        return len(self.members) if self.members is not None else self.count

    def split(self) -> list[Entry]:
        """One Entry per record: a refused record is retried or dead-lettered on its own."""
        column = self.column
        if column is None:
            return [self]
        return [column.entry(i, i + 1, self.seq, self.attempts) for i in range(self.first, self.first + self.count)]

    def fitting(self, records: int, size: int) -> int:
        """How many leading records of this run fit in `records` records and `size` bytes."""
        assert self.column is not None
        sizes = self.column.sizes[self.first : self.first + min(records, self.count)]
        return bisect_right(list(accumulate(sizes)), size)

    def take(self, records: int) -> tuple[Entry, Entry]:
        """This run's first `records` records, and the rest (0 < records < count)."""
        assert self.column is not None and 0 < records < self.count
        middle = self.first + records
        column = self.column
        return (
            column.entry(self.first, middle, self.seq, self.attempts),
            column.entry(middle, self.first + self.count, self.seq, self.attempts),
        )


class Column(NamedTuple):
    """Consecutive records of one destination, in their request form, back to back.

    How mapping processes answer (one pickled object per thousand records instead of
    a thousand tuples); `entry` cuts any range of it into an `Entry`.
    """

    #: Every record's wire form, joined with commas.
    body: bytes
    #: ends[i]: where record i's wire form ends in `body`.
    ends: array
    #: Each record's partition key; None when no record has one (Firehose).
    keys: list[str | None] | None
    #: Each record's size as AWS counts it.
    sizes: array
    #: Each record's shard (its index in the shard map of `map_version`); None: all on shard 0.
    shards: bytes | array | None = None
    #: The version of the shard map the shards were predicted with (delivery/shards.py).
    map_version: int = 0

    @classmethod
    def of(
        cls,
        wires: Sequence[bytes],
        keys: Sequence[str | None],
        sizes: Iterable[int],
        shards: Sequence[int] = (),
        map_version: int = 0,
    ) -> Column:
        ends = array("q", map(operator.add, accumulate(map(len, wires)), range(len(wires))))  # + the commas
        return cls(
            b",".join(wires),
            ends,
            list(keys) if any(key is not None for key in keys) else None,
            array("q", sizes),
            _shard_column(shards),
            map_version,
        )

    @property
    def records(self) -> int:
        return len(self.ends)

    def entry(self, first: int, last: int, seq: int = 0, attempts: int = 0) -> Entry:
        """Records `first` to `last` (excluded) as one Entry."""
        ends = self.ends
        wire = self.body[ends[first - 1] + 1 if first else 0 : ends[last - 1]]
        if last - first == 1:
            shard = self.shards[first] if self.shards is not None else 0
            key = self.keys[first] if self.keys else None
            return Entry(wire, key, self.sizes[first], seq, attempts, shard=shard)
        return Entry(wire, None, sum(self.sizes[first:last]), seq, attempts, last - first, self, first)


def _shard_column(shards: Sequence[int]) -> bytes | array | None:
    """Shard indexes compactly: a byte each up to 256 shards; None when every one is shard 0."""
    if not shards or not any(shards):
        return None
    return bytes(shards) if max(shards) < 256 else array("I", shards)


class Batcher(Protocol):
    def add(self, entry: Entry) -> None: ...

    def pop_ready(self, *, force: bool) -> list[Entry] | None: ...

    def complete(self, batch: list[Entry]) -> None: ...

    def backlog_full(self) -> bool: ...

    def needs_pump(self) -> bool: ...

    @property
    def pending(self) -> int: ...


class PacingBatcher(Batcher, Protocol):
    """A batcher that knows the stream's capacity (delivery/pacing.py)."""

    def requeue(self, entries: list[Entry]) -> None:
        """Records refused for throughput, to be sent again first (in their order)."""

    def reshard(self, shard_of: Callable[[Entry], int]) -> None:
        """A new shard map: place the records held on their new shards."""

    def next_ready_in(self) -> float | None:
        """Seconds until a record held for capacity may go; None when none is held."""

    @property
    def waiting_for_capacity(self) -> int: ...

    def drain(self) -> list[Entry]:
        """Every record held and not yet in a call, taken out (the run stops)."""


class FifoBatcher:
    """Batches in input order, each as full as the limits allow."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._current: list[Entry] = []
        self._current_records = 0
        self._current_bytes = 0
        self._sealed: deque[tuple[list[Entry], int]] = deque()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Records added and not yet handed out in a batch."""
        return self._pending

    def add(self, entry: Entry) -> None:
        """Add a record, or a run: a run fills the open batch with as many of its records
        as fit, exactly as if they had been added one by one."""
        while entry.count > 1 and (
            self._current_records + entry.count > self._max_records
            or self._current_bytes + entry.size > self._max_bytes
        ):
            fitting = entry.fitting(self._max_records - self._current_records, self._max_bytes - self._current_bytes)
            if not fitting:
                if self._current:
                    self._seal()
                    continue
                fitting = 1  # cannot happen (records are at most a batch's bytes); never loop
            head, entry = entry.take(fitting)
            self._append(head)
            self._seal()
        if self._current and (
            self._current_records + entry.count > self._max_records
            or self._current_bytes + entry.size > self._max_bytes
        ):
            self._seal()
        self._append(entry)
        if self._current_records >= self._max_records:
            self._seal()

    def _append(self, entry: Entry) -> None:
        self._current.append(entry)
        self._current_records += entry.count
        self._current_bytes += entry.size
        self._pending += entry.count

    def _seal(self) -> None:
        self._sealed.append((self._current, self._current_records))
        self._current = []
        self._current_records = 0
        self._current_bytes = 0

    def pop_ready(self, *, force: bool) -> list[Entry] | None:
        """A full batch, or with `force` whatever is buffered; None when there is none."""
        if not self._sealed and force and self._current:
            self._seal()
        if not self._sealed:
            return None
        batch, records = self._sealed.popleft()
        self._pending -= records
        return batch

    def complete(self, batch: list[Entry]) -> None:
        """Nothing to release: FIFO batches do not hold keys."""

    def drain(self) -> list[Entry]:
        held = [entry for batch, _ in self._sealed for entry in batch] + self._current
        self._sealed.clear()
        self._current = []
        self._current_records = self._current_bytes = self._pending = 0
        return held

    def backlog_full(self) -> bool:
        """A full batch waits: the caller must not buffer more until it is sent."""
        return bool(self._sealed)

    def needs_pump(self) -> bool:
        """A full batch is waiting to be sent (the hot path's cheap check before pumping)."""
        return bool(self._sealed)


class KeyedBatcher:
    """At most one record per key in flight, so each key's records land in input order."""

    def __init__(self, max_records: int, max_bytes: int, high_water: int) -> None:
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._high_water = high_water
        self._queues: dict[str | None, deque[Entry]] = {}
        # Keys whose head record may be sent now, oldest first.
        self._ready: OrderedDict[str | None, None] = OrderedDict()
        self._busy: set[str | None] = set()
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    def add(self, entry: Entry) -> None:
        """Add one record (the producer splits runs: each record needs its key's turn)."""
        assert entry.count == 1, "per-key batching takes records one by one"
        queue = self._queues.get(entry.key)
        if queue is None:
            queue = self._queues[entry.key] = deque()
        queue.append(entry)
        self._pending += 1
        if entry.key not in self._busy:
            self._ready[entry.key] = None

    def backlog_full(self) -> bool:
        return self._pending >= self._high_water

    def needs_pump(self) -> bool:
        """A full batch can be cut, or the backlog is full and the caller must wait."""
        return len(self._ready) >= self._max_records or self.backlog_full()

    def pop_ready(self, *, force: bool) -> list[Entry] | None:
        """One head record per ready key, up to the limits.

        Without `force`, a batch is cut only when it would be full or too much is
        buffered; otherwise we wait for more keys to arrive and fill the call.
        """
        if not self._ready:
            return None
        if not force and len(self._ready) < self._max_records and not self.backlog_full():
            return None
        batch: list[Entry] = []
        size = 0
        while self._ready and len(batch) < self._max_records:
            key = next(iter(self._ready))
            head = self._queues[key][0]
            if batch and size + head.size > self._max_bytes:
                break
            batch.append(self._take(key))
            size += head.size
        self._pending -= len(batch)
        return batch

    def _take(self, key: str | None) -> Entry:
        """The head record of a ready key, into a batch: the key is in flight from now on."""
        del self._ready[key]
        self._busy.add(key)
        return self._queues[key].popleft()

    def drain(self) -> list[Entry]:
        held = sorted((entry for queue in self._queues.values() for entry in queue), key=lambda entry: entry.seq)
        self._queues.clear()
        self._ready.clear()
        self._pending = 0
        return held

    def complete(self, batch: list[Entry]) -> None:
        """The batch is acknowledged (or abandoned): its keys may send their next record."""
        for entry in batch:
            self._busy.discard(entry.key)
            queue = self._queues.get(entry.key)
            if queue:
                self._ready[entry.key] = None
            elif queue is not None:
                del self._queues[entry.key]
