"""Batches that respect the stream's capacity: a record is batched only once its shard (and its
stream) has budget for it (delivery/flow.py); records of a full shard wait, in order, while the
other shards' records go.

Runs from the mapping processes (`batching.Column`) stay whole when every shard they touch has
budget for its share: the usual case wherever the stream has room, where pacing then costs a
count per run, not work per record. A run that does not fit is taken apart, and each of its
records goes or waits on its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from target_kinesis.delivery.batching import Entry, FifoBatcher, KeyedBatcher
from target_kinesis.delivery.flow import DestinationFlow

Clock = Callable[[], float]
#: Records of a shard released together once its budget holds them all (see `_release`).
RELEASE_RECORDS = 50
#: Records for a full shard wait (so that the other shards' records read after them can go) up
#: to this many seconds of the shard's rate; beyond that the caller waits too (reading stops).
#: Bounds what a stop has to deliver to about this long, whatever `rate_limit_percent`.
WAITING_SECONDS = 10.0
#: And at most this much in all, per destination (memory).
MAX_WAITING_RECORDS = 20_000
MAX_WAITING_BYTES = 16 * 1024 * 1024


def per_shard(run: Entry) -> list[tuple[int, int, int]]:
    """(shard, records, bytes) for each shard a run (or single record) touches."""
    column = run.column
    if column is None:
        return [(run.shard, 1, run.size)]
    shards = column.shards
    if shards is None:
        return [(0, run.count, run.size)]
    counts: dict[int, list[int]] = {}
    first, last = run.first, run.first + run.count
    for shard, size in zip(shards[first:last], column.sizes[first:last], strict=True):
        tally = counts.get(shard)
        if tally is None:
            counts[shard] = [1, size]
        else:
            tally[0] += 1
            tally[1] += size
    return [(shard, n, b) for shard, (n, b) in counts.items()]


class PacedBatcher:
    """Batches in input order per shard, each record only when its shard has budget."""

    def __init__(
        self, max_records: int, max_bytes: int, flow: DestinationFlow, high_water: int, clock: Clock = time.monotonic
    ) -> None:
        self._cleared = FifoBatcher(max_records, max_bytes)
        self._flow = flow
        #: How many records may wait on a shard whose rate is not known (no budget limits it yet).
        self._high_water = high_water
        self._clock = clock
        #: Per shard: records waiting for budget, oldest first.
        self._waiting: dict[int, deque[Entry]] = {}
        self._waiting_records = 0
        self._waiting_bytes = 0
        #: Shards holding as many waiting records as they may (see WAITING_SECONDS).
        self._full: set[int] = set()
        self._next_release = 0.0

    @property
    def pending(self) -> int:
        """Records added and not yet handed out in a batch (cleared or waiting for budget)."""
        return self._cleared.pending + self._waiting_records

    @property
    def waiting_for_capacity(self) -> int:
        return self._waiting_records

    def add(self, entry: Entry) -> None:
        flow = self._flow
        if not flow.paced:
            self._cleared.add(entry)
            return
        now = self._clock()
        if entry.count == 1:  # (no mapping processes: every record, so the usual case first)
            if not self._waiting_records and flow.try_take(entry.shard, 1, entry.size, now):
                self._cleared.add(entry)
            else:
                self._admit(entry, now)
            return
        if not self._waiting_records:
            shares = per_shard(entry)
            if flow.fits_all(shares, entry.count, entry.size, now):
                flow.take_all(shares, entry.count, entry.size)
                self._cleared.add(entry)
                return
        for single in entry.split():
            self._admit(single, now)

    def _admit(self, entry: Entry, now: float) -> None:
        queue = self._waiting.get(entry.shard)
        if not queue and self._flow.try_take(entry.shard, 1, entry.size, now):
            self._cleared.add(entry)
            return
        if queue is None:
            queue = self._waiting[entry.shard] = deque()
        queue.append(entry)
        self._waiting_records += 1
        self._waiting_bytes += entry.size
        self._note_length(entry.shard, len(queue))
        self._next_release = now  # look again at the next pump

    def _note_length(self, shard: int, waiting: int) -> None:
        """Keep `_full` true to the bound of each shard's queue."""
        rate = self._flow.records_rate(shard)
        bound = self._high_water if rate is None else max(RELEASE_RECORDS, rate * WAITING_SECONDS)
        if waiting >= bound:
            self._full.add(shard)
        else:
            self._full.discard(shard)

    def requeue(self, entries: list[Entry]) -> None:
        """Records AWS refused for throughput: first in line again on their shard (in order)."""
        for entry in reversed(entries):
            queue = self._waiting.get(entry.shard)
            if queue is None:
                queue = self._waiting[entry.shard] = deque()
            queue.appendleft(entry)
            self._waiting_records += 1
            self._waiting_bytes += entry.size
        for shard in {entry.shard for entry in entries}:
            self._note_length(shard, len(self._waiting[shard]))
        self._next_release = self._clock()

    def reshard(self, shard_of: Callable[[Entry], int]) -> None:
        """A new shard map: waiting records go to the queues of their new shards, in order."""
        waiting = [entry for queue in self._waiting.values() for entry in queue]
        waiting.sort(key=lambda entry: entry.seq)
        self._waiting = {}
        for entry in waiting:
            entry.shard = shard_of(entry)
            self._waiting.setdefault(entry.shard, deque()).append(entry)
        self._full.clear()
        for shard, queue in self._waiting.items():
            self._note_length(shard, len(queue))

    def _release(self, now: float) -> None:
        """Move waiting records whose shard has budget into batches, up to RELEASE_RECORDS at a
        time (fewer when the budget's burst is smaller): a budget that fills while it waits loses
        nothing, and calls of one record each would cost a call per record."""
        flow = self._flow
        soonest = float("inf")
        for shard in list(self._waiting):
            queue = self._waiting[shard]
            most_records, most_bytes = flow.burst(shard)
            while queue:
                count, size = 0, 0
                while count < min(len(queue), RELEASE_RECORDS) and (count == 0 or count + 1 <= most_records):
                    if count and size + queue[count].size > most_bytes:
                        break
                    size += queue[count].size
                    count += 1
                if not flow.try_take(shard, count, size, now):
                    soonest = min(soonest, flow.wait(shard, count, size, now))
                    break
                for _ in range(count):
                    self._cleared.add(queue.popleft())
                self._waiting_records -= count
                self._waiting_bytes -= size
            if queue:
                self._note_length(shard, len(queue))
            else:
                del self._waiting[shard]
                self._full.discard(shard)
        self._next_release = now + soonest

    def pop_ready(self, *, force: bool) -> list[Entry] | None:
        """A full batch; or, while records wait for capacity, whatever has budget (waiting for a
        fuller call would only let the budget go unused); with `force`, whatever is cleared."""
        waited = self._waiting_records > 0
        if waited:
            self._release(self._clock())
        return self._cleared.pop_ready(force=force or waited)

    def next_ready_in(self) -> float | None:
        """Seconds until a waiting record may have budget; None when none waits."""
        if not self._waiting_records:
            return None
        return max(0.0, self._next_release - self._clock())

    def complete(self, batch: list[Entry]) -> None:
        """Nothing to release: FIFO batches do not hold keys."""

    def drain(self) -> list[Entry]:
        held = self._cleared.drain() + sorted(
            (entry for queue in self._waiting.values() for entry in queue), key=lambda entry: entry.seq
        )
        self._waiting.clear()
        self._full.clear()
        self._waiting_records = 0
        self._waiting_bytes = 0
        return held

    def backlog_full(self) -> bool:
        """A full batch waits, or a shard (or the destination) holds as many records waiting for
        capacity as it may: the caller must wait."""
        return (
            self._cleared.backlog_full()
            or bool(self._full)
            or self._waiting_records >= MAX_WAITING_RECORDS
            or self._waiting_bytes >= MAX_WAITING_BYTES
        )

    def needs_pump(self) -> bool:
        return self._cleared.needs_pump() or (self._waiting_records > 0 and self._clock() >= self._next_release)


class PacedKeyedBatcher(KeyedBatcher):
    """`ordering: per_key` with budgets: a key's head record goes only when its shard has budget;
    a record refused for throughput is its key's head again, so the key's order holds."""

    def __init__(
        self, max_records: int, max_bytes: int, high_water: int, flow: DestinationFlow, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(max_records, max_bytes, high_water)
        self._flow = flow
        self._clock = clock
        self._blocked_until = 0.0

    def pop_ready(self, *, force: bool) -> list[Entry] | None:
        if not self._flow.paced:
            return super().pop_ready(force=force)
        if not self._ready:
            return None
        if not force and len(self._ready) < self._max_records and not self.backlog_full():
            return None
        now = self._clock()
        flow = self._flow
        batch: list[Entry] = []
        size = 0
        soonest = float("inf")
        for key in list(self._ready):
            if len(batch) >= self._max_records:
                break
            head = self._queues[key][0]
            if batch and size + head.size > self._max_bytes:
                break
            if not flow.try_take(head.shard, 1, head.size, now):
                soonest = min(soonest, flow.wait(head.shard, 1, head.size, now))
                continue  # stays ready: its shard has no budget yet; other keys go
            batch.append(self._take(key))
            size += head.size
        self._pending -= len(batch)
        self._blocked_until = now + soonest if not batch else now
        return batch or None

    def requeue(self, entries: list[Entry]) -> None:
        """Refused for throughput: back at the head of their keys' queues (the keys are still in
        flight; `complete` makes them ready again, with these records first)."""
        for entry in reversed(entries):
            queue = self._queues.get(entry.key)
            if queue is None:
                queue = self._queues[entry.key] = deque()
            queue.appendleft(entry)
            self._pending += 1

    def reshard(self, shard_of: Callable[[Entry], int]) -> None:
        for queue in self._queues.values():
            for entry in queue:
                entry.shard = shard_of(entry)

    def next_ready_in(self) -> float | None:
        if not self._ready:
            return None
        return max(0.0, self._blocked_until - self._clock())

    @property
    def waiting_for_capacity(self) -> int:
        return self._pending if self._clock() < self._blocked_until else 0


__all__ = ["PacedBatcher", "PacedKeyedBatcher", "per_shard"]
