"""Unit and property tests of target_kinesis.batching.

FifoBatcher: every call within the record and byte limits, every record once, in order.
KeyedBatcher (ordering: per_key): driven the way producer.py drives it — a worker owns a
batch until every record of it is acknowledged (only the refused records are sent again),
and only then calls `complete(batch)` — with a simulated sender that refuses random
records, it must never have two records of one key in flight and must deliver each key's
records in input order.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from target_kinesis.delivery.batching import Column, Entry, FifoBatcher, KeyedBatcher

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIMULATION = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def entries(sizes: list[int], keys: list[str] | None = None) -> list[Entry]:
    keys = keys or [f"k{i}" for i in range(len(sizes))]
    return [Entry(f"r{i}".encode(), key, size, seq=i) for i, (size, key) in enumerate(zip(sizes, keys, strict=True))]


def drain_fifo(batcher: FifoBatcher, items: list[Entry]) -> list[list[Entry]]:
    """Add everything, taking full batches as the producer does, then force the rest out."""
    batches: list[list[Entry]] = []
    for item in items:
        batcher.add(item)
        while (batch := batcher.pop_ready(force=False)) is not None:
            batches.append(batch)
    while (batch := batcher.pop_ready(force=True)) is not None:
        batches.append(batch)
    return batches


# -- FifoBatcher ---------------------------------------------------------------------------------


@PROPERTY
@given(
    max_records=st.integers(1, 12),
    max_bytes=st.integers(1, 200),
    data=st.data(),
)
def test_fifo_batches_respect_limits_and_keep_every_record_once_in_order(
    max_records: int, max_bytes: int, data: st.DataObject
) -> None:
    sizes = data.draw(st.lists(st.integers(1, max_bytes), max_size=80), label="sizes")
    keys = data.draw(st.lists(st.sampled_from("abcde"), min_size=len(sizes), max_size=len(sizes)), label="keys")
    items = entries(sizes, keys)
    batcher = FifoBatcher(max_records, max_bytes)
    batches = drain_fifo(batcher, items)

    for batch in batches:
        assert 1 <= len(batch) <= max_records
        assert sum(e.size for e in batch) <= max_bytes
    flat = [e for batch in batches for e in batch]
    assert [e.seq for e in flat] == list(range(len(items)))  # every record once, in input order
    assert all(a is b for a, b in zip(flat, items, strict=True))
    assert batcher.pending == 0
    assert batcher.pop_ready(force=True) is None


@PROPERTY
@given(max_records=st.integers(1, 10), max_bytes=st.integers(1, 100), data=st.data())
def test_fifo_batches_are_as_full_as_the_limits_allow(max_records: int, max_bytes: int, data: st.DataObject) -> None:
    sizes = data.draw(st.lists(st.integers(1, max_bytes), min_size=1, max_size=60))
    batches = drain_fifo(FifoBatcher(max_records, max_bytes), entries(sizes))
    # A batch is only cut when the next record would not fit (every batch but the last).
    for batch, following in itertools.pairwise(batches):
        assert len(batch) == max_records or sum(e.size for e in batch) + following[0].size > max_bytes


def test_fifo_record_larger_than_max_bytes_travels_alone() -> None:
    # The producer never hands over such a record; if one arrives it must not join others.
    batches = drain_fifo(FifoBatcher(10, 100), entries([10, 150, 10]))
    assert [[e.size for e in b] for b in batches] == [[10], [150], [10]]


def test_fifo_pop_ready_without_force_waits_for_a_full_batch() -> None:
    batcher = FifoBatcher(max_records=3, max_bytes=1000)
    items = entries([1] * 7)
    for item in items[:2]:
        batcher.add(item)
    assert not batcher.backlog_full()
    assert batcher.pop_ready(force=False) is None
    assert batcher.pending == 2
    batcher.add(items[2])  # third record: the batch is full
    assert batcher.backlog_full()
    assert batcher.pop_ready(force=False) == items[:3]
    assert not batcher.backlog_full()
    assert batcher.pending == 0
    for item in items[3:7]:
        batcher.add(item)
    assert batcher.pop_ready(force=False) == items[3:6]
    assert batcher.pop_ready(force=False) is None
    assert batcher.pending == 1
    assert batcher.pop_ready(force=True) == items[6:7]
    assert batcher.pop_ready(force=True) is None
    assert batcher.pending == 0


def test_fifo_byte_limit_seals_a_batch() -> None:
    batcher = FifoBatcher(max_records=500, max_bytes=100)
    items = entries([60, 30, 20])
    batcher.add(items[0])
    batcher.add(items[1])
    assert not batcher.backlog_full()
    batcher.add(items[2])  # 60 + 30 + 20 > 100: the first two go together
    assert batcher.backlog_full()
    assert batcher.pop_ready(force=False) == items[:2]
    assert batcher.pop_ready(force=True) == items[2:]


# -- runs (records handed over a column at a time) ------------------------------------------------


def column_of(sizes: list[int], keys: list[str | None] | None = None) -> Column:
    wires = [f"r{i}:{'x' * (i % 3)}".encode() for i in range(len(sizes))]
    return Column.of(wires, keys or [None] * len(sizes), sizes)


@PROPERTY
@given(sizes=st.lists(st.integers(1, 50), min_size=1, max_size=40), data=st.data())
def test_a_run_cut_from_a_column_gives_back_each_record(sizes: list[int], data: st.DataObject) -> None:
    keys = data.draw(st.lists(st.sampled_from(["a", "ключ", None]), min_size=len(sizes), max_size=len(sizes)))
    column = column_of(sizes, keys)
    wires = column.body.split(b",")
    first = data.draw(st.integers(0, len(sizes) - 1))
    last = data.draw(st.integers(first + 1, len(sizes)))
    run = column.entry(first, last)
    assert (run.count, run.size, run.wire) == (last - first, sum(sizes[first:last]), b",".join(wires[first:last]))
    expected_keys = keys[first:last] if any(k is not None for k in keys) else [None] * (last - first)
    assert [(e.wire, e.key, e.size, e.count) for e in run.split()] == [
        (w, k, size, 1) for w, k, size in zip(wires[first:last], expected_keys, sizes[first:last], strict=True)
    ]
    if run.count > 1:
        cut = data.draw(st.integers(1, run.count - 1))
        head, tail = run.take(cut)
        assert [e.wire for e in head.split() + tail.split()] == [e.wire for e in run.split()]
        assert (head.count, tail.count, head.size + tail.size) == (cut, run.count - cut, run.size)


@PROPERTY
@given(max_records=st.integers(1, 12), max_bytes=st.integers(1, 200), data=st.data())
def test_fifo_batches_of_runs_are_the_batches_of_their_records(
    max_records: int, max_bytes: int, data: st.DataObject
) -> None:
    """Handing records over as runs changes nothing: the same records in the same calls
    as one by one (whose limits, order and fullness the tests above check)."""
    sizes = data.draw(st.lists(st.integers(1, max_bytes), max_size=80), label="sizes")
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(len(sizes) - 1, 1)), max_size=10), label="cuts")))
    bounds = [0, *(c for c in cuts if c < len(sizes)), len(sizes)] if sizes else [0]
    column = column_of(sizes)
    runs = [column.entry(a, b) for a, b in itertools.pairwise(bounds)]
    one_by_one = drain_fifo(FifoBatcher(max_records, max_bytes), [e for run in runs for e in run.split()])
    batcher = FifoBatcher(max_records, max_bytes)
    by_runs = drain_fifo(batcher, runs)

    assert [b",".join(e.wire for e in batch) for batch in by_runs] == [
        b",".join(e.wire for e in batch) for batch in one_by_one
    ]
    assert [sum(e.count for e in batch) for batch in by_runs] == [len(batch) for batch in one_by_one]
    assert [sum(e.size for e in batch) for batch in by_runs] == [sum(e.size for e in batch) for batch in one_by_one]
    assert batcher.pending == 0


# -- KeyedBatcher: simulated producer ------------------------------------------------------------------


class KeyedSimulation:
    """Drives a KeyedBatcher like producer.py does, with a sender that refuses at random."""

    def __init__(
        self,
        items: list[Entry],
        *,
        max_records: int,
        max_bytes: int,
        high_water: int,
        max_in_flight: int,
        fail_rate: float,
        rng: random.Random,
    ) -> None:
        self.items = items
        self.batcher = KeyedBatcher(max_records, max_bytes, high_water)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_in_flight = max_in_flight
        self.fail_rate = fail_rate
        self.rng = rng
        self.next_input = 0
        # Each in-flight batch: (the batch as handed out, the records not yet acknowledged).
        self.in_flight: list[tuple[list[Entry], list[Entry]]] = []
        self.delivered: list[Entry] = []

    def keys_in_flight(self) -> list[str | None]:
        return [e.key for batch, _ in self.in_flight for e in batch]

    def start(self, force: bool) -> bool:
        if len(self.in_flight) >= self.max_in_flight:
            return False
        batch = self.batcher.pop_ready(force=force)
        if batch is None:
            return False
        assert 1 <= len(batch) <= self.max_records
        assert len(batch) == 1 or sum(e.size for e in batch) <= self.max_bytes
        keys = [e.key for e in batch]
        assert len(set(keys)) == len(keys), f"two records of one key in one batch: {keys}"
        busy = set(self.keys_in_flight())
        assert not busy & set(keys), f"a key already in flight was handed out again: {busy & set(keys)}"
        self.in_flight.append((batch, list(batch)))
        return True

    def attempt(self) -> None:
        """One PutRecords call of one in-flight batch: some records refused, the rest stored."""
        index = self.rng.randrange(len(self.in_flight))
        batch, remaining = self.in_flight[index]
        refused = [e for e in remaining if self.rng.random() < self.fail_rate]
        refused_ids = {id(e) for e in refused}
        self.delivered.extend(e for e in remaining if id(e) not in refused_ids)
        remaining[:] = refused
        if not remaining:  # every record acknowledged: the worker completes the batch
            del self.in_flight[index]
            self.batcher.complete(batch)

    def run(self) -> None:
        for _ in range(100_000):
            inputs_left = self.next_input < len(self.items)
            if not inputs_left and not self.in_flight and self.batcher.pending == 0:
                return
            choice = self.rng.random()
            # Producer.add: add, then pump without force (it blocks while the backlog is
            # full and every slot is busy, so only add when that is not the case).
            blocked = self.batcher.backlog_full() and len(self.in_flight) >= self.max_in_flight
            if inputs_left and choice < 0.45 and not blocked:
                self.batcher.add(self.items[self.next_input])
                self.next_input += 1
                while self.start(force=False):
                    pass
                continue
            if choice < 0.7 or not self.in_flight:
                # Pump; with no input left this is Producer.flush (force=True).
                started = self.start(force=not inputs_left or self.rng.random() < 0.3)
                if started or not self.in_flight:
                    if not started and not inputs_left:
                        raise AssertionError("flush made no progress: records stuck in the batcher")
                    continue
            self.attempt()
        raise AssertionError("simulation did not finish")


@SIMULATION
@given(
    max_records=st.integers(1, 6),
    max_bytes=st.integers(5, 60),
    high_water=st.integers(1, 20),
    max_in_flight=st.integers(1, 4),
    fail_rate=st.sampled_from([0.0, 0.2, 0.5, 0.8]),
    data=st.data(),
    rng=st.randoms(use_true_random=False),
)
def test_keyed_batcher_keeps_per_key_order_through_partial_failures(
    max_records: int,
    max_bytes: int,
    high_water: int,
    max_in_flight: int,
    fail_rate: float,
    data: st.DataObject,
    rng: random.Random,
) -> None:
    n = data.draw(st.integers(0, 60), label="n")
    sizes = data.draw(st.lists(st.integers(1, max_bytes), min_size=n, max_size=n), label="sizes")
    keys = data.draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), min_size=n, max_size=n), label="keys")
    items = entries(sizes, keys)
    sim = KeyedSimulation(
        items,
        max_records=max_records,
        max_bytes=max_bytes,
        high_water=high_water,
        max_in_flight=max_in_flight,
        fail_rate=fail_rate,
        rng=rng,
    )
    sim.run()

    # Every record delivered exactly once.
    assert sorted(e.seq for e in sim.delivered) == list(range(n))
    # Each key's records in input order.
    by_key: dict[str, list[int]] = defaultdict(list)
    for e in sim.delivered:
        by_key[e.key].append(e.seq)  # type: ignore[index]
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"key {key} delivered out of order: {seqs}"
    assert sim.batcher.pending == 0
    assert sim.batcher.pop_ready(force=True) is None


# -- KeyedBatcher: behaviour ------------------------------------------------------------------------


def test_keyed_one_record_per_key_per_batch_and_next_only_after_complete() -> None:
    batcher = KeyedBatcher(max_records=10, max_bytes=1000, high_water=100)
    a1, a2, b1, a3 = entries([1, 1, 1, 1], ["a", "a", "b", "a"])
    for e in (a1, a2, b1, a3):
        batcher.add(e)
    first = batcher.pop_ready(force=True)
    assert first == [a1, b1]
    assert batcher.pending == 2
    # a is in flight: nothing of a may go, even when forced.
    assert batcher.pop_ready(force=True) is None
    batcher.complete(first)
    assert batcher.pop_ready(force=True) == [a2]
    assert batcher.pop_ready(force=True) is None


def test_keyed_complete_of_one_batch_releases_only_its_keys() -> None:
    batcher = KeyedBatcher(max_records=1, max_bytes=1000, high_water=100)
    a1, b1, a2, b2 = entries([1, 1, 1, 1], ["a", "b", "a", "b"])
    for e in (a1, b1, a2, b2):
        batcher.add(e)
    first = batcher.pop_ready(force=True)
    second = batcher.pop_ready(force=True)
    assert (first, second) == ([a1], [b1])
    assert batcher.pop_ready(force=True) is None
    batcher.complete(second)
    assert batcher.pop_ready(force=True) == [b2]
    assert batcher.pop_ready(force=True) is None
    batcher.complete(first)
    assert batcher.pop_ready(force=True) == [a2]


def test_keyed_pop_ready_without_force_waits_for_a_full_batch() -> None:
    batcher = KeyedBatcher(max_records=3, max_bytes=1000, high_water=100)
    items = entries([1, 1, 1, 1], ["a", "b", "a", "c"])
    for e in items[:3]:
        batcher.add(e)
    # Only two distinct keys ready: a call would not be full.
    assert batcher.pop_ready(force=False) is None
    batcher.add(items[3])
    assert batcher.pop_ready(force=False) == [items[0], items[1], items[3]]


def test_keyed_backlog_full_at_high_water_cuts_a_batch_without_force() -> None:
    batcher = KeyedBatcher(max_records=10, max_bytes=1000, high_water=3)
    items = entries([1, 1, 1], ["a", "a", "b"])
    batcher.add(items[0])
    batcher.add(items[1])
    assert not batcher.backlog_full()
    assert batcher.pop_ready(force=False) is None
    batcher.add(items[2])
    assert batcher.backlog_full()
    assert batcher.pop_ready(force=False) == [items[0], items[2]]
    assert batcher.pending == 1
    assert not batcher.backlog_full()


def test_keyed_byte_limit() -> None:
    batcher = KeyedBatcher(max_records=10, max_bytes=100, high_water=100)
    items = entries([60, 30, 20, 500], ["a", "b", "c", "d"])
    for e in items:
        batcher.add(e)
    assert batcher.pop_ready(force=True) == items[:2]
    assert batcher.pop_ready(force=True) == [items[2]]
    # A record above max_bytes is not stuck forever: it travels alone.
    assert batcher.pop_ready(force=True) == [items[3]]


def test_keyed_empty_batcher() -> None:
    batcher = KeyedBatcher(max_records=5, max_bytes=100, high_water=10)
    assert batcher.pop_ready(force=True) is None
    assert batcher.pending == 0
    assert not batcher.backlog_full()


@pytest.mark.parametrize("cls", [FifoBatcher, KeyedBatcher])
def test_pending_counts_records_not_yet_handed_out(cls: type) -> None:
    batcher = cls(2, 1000, 100) if cls is KeyedBatcher else cls(2, 1000)
    for e in entries([1, 1, 1]):
        batcher.add(e)
    assert batcher.pending == 3
    batch = batcher.pop_ready(force=True)
    assert batch is not None
    assert batcher.pending == 3 - len(batch)
