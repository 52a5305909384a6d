"""Cutting a stream of records into API calls that respect every limit (pure, no AWS).

Two batchers share one interface so the producer does not care which is in use:

* `FifoBatcher` fills each call to the record or byte limit, in input order; fastest.
* `KeyedBatcher` (``ordering: per_key``) puts at most one record per partition key in a
  call and never sends a key's next record while one is in flight. A PutRecords answer
  can fail record i and accept a later record j of the same key; holding j back until i
  is acknowledged is the only way to keep per-key order across partial failures.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True, eq=False)
class Entry:
    """One record bound for one destination stream."""

    #: The record as it appears in the request body (`Service.wire`); `services.payload_of`
    #: gives its bytes back when a dead letter needs them.
    wire: bytes
    key: str | None
    size: int
    seq: int = 0
    attempts: int = field(default=0)


class Batcher(Protocol):
    def add(self, entry: Entry) -> None: ...

    def pop_ready(self, *, force: bool) -> list[Entry] | None: ...

    def complete(self, batch: list[Entry]) -> None: ...

    def backlog_full(self) -> bool: ...

    def needs_pump(self) -> bool: ...

    @property
    def pending(self) -> int: ...


class FifoBatcher:
    """Batches in input order, each as full as the limits allow."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._current: list[Entry] = []
        self._current_bytes = 0
        self._sealed: deque[list[Entry]] = deque()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Records added and not yet handed out in a batch."""
        return self._pending

    def add(self, entry: Entry) -> None:
        if self._current and (
            len(self._current) >= self._max_records or self._current_bytes + entry.size > self._max_bytes
        ):
            self._seal()
        self._current.append(entry)
        self._current_bytes += entry.size
        self._pending += 1
        if len(self._current) >= self._max_records:
            self._seal()

    def _seal(self) -> None:
        self._sealed.append(self._current)
        self._current = []
        self._current_bytes = 0

    def pop_ready(self, *, force: bool) -> list[Entry] | None:
        """A full batch, or with `force` whatever is buffered; None when there is none."""
        if not self._sealed and force and self._current:
            self._seal()
        if not self._sealed:
            return None
        batch = self._sealed.popleft()
        self._pending -= len(batch)
        return batch

    def complete(self, batch: list[Entry]) -> None:
        """Nothing to release: FIFO batches do not hold keys."""

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
            del self._ready[key]
            self._queues[key].popleft()
            self._busy.add(key)
            batch.append(head)
            size += head.size
        self._pending -= len(batch)
        return batch

    def complete(self, batch: list[Entry]) -> None:
        """The batch is acknowledged (or abandoned): its keys may send their next record."""
        for entry in batch:
            self._busy.discard(entry.key)
            queue = self._queues.get(entry.key)
            if queue:
                self._ready[entry.key] = None
            elif queue is not None:
                del self._queues[entry.key]
