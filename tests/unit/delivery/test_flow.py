"""Pacing, pure and on a manual clock: shard maps, budgets, and batches that respect them.

delivery/shards.py (which shard a key lands on), delivery/flow.py (token buckets, adaptive rates,
a destination's budgets) and delivery/pacing.py (batches whose records each had budget).
"""

from __future__ import annotations

import hashlib
import math
import random
from array import array

import pytest

import target_kinesis.delivery.shards as shards_module
from target_kinesis.aws.errors import AwsCallFailed, AwsError
from target_kinesis.delivery.batching import Column, Entry
from target_kinesis.delivery.budget import (
    ACCEPTED_SHARE_KEPT,
    BURST_SECONDS,
    CAUTIOUS_BURST_SECONDS,
    DECREASE,
    DECREASE_EVERY_SECONDS,
    DECREASE_FLOOR,
    FIRST_ANSWER_SECONDS,
    FLOOR_BYTES_PER_SECOND,
    FLOOR_RECORDS_PER_SECOND,
    GROWTH_PER_SECOND,
    INCREASE_PER_SECOND,
    SLOW_START_MAX,
    SLOW_START_PER_SECOND,
    STREAM_SAVED_UP_SECONDS,
    Budget,
    TokenBucket,
)
from target_kinesis.delivery.flow import DestinationFlow
from target_kinesis.delivery.pacing import WAITING_SECONDS, PacedBatcher, PacedKeyedBatcher, per_shard
from target_kinesis.delivery.shards import ShardMap, ShardMapReader, hash_key_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def even_map(shards: int) -> ShardMap:
    step = 2**128 // shards
    return ShardMap.of([(f"shardId-{i:012d}", i * step) for i in range(shards)])


# -- shard maps --------------------------------------------------------------------------------------


def test_a_key_lands_where_kinesis_puts_it() -> None:
    shard_map = even_map(4)
    for key in ("u1", "user-42", "é-ü", "x" * 256):
        hash_key = int(hashlib.md5(key.encode()).hexdigest(), 16)
        assert shard_map.index_of(key) == hash_key * 4 // 2**128
        assert hash_key_bytes(key) == hash_key.to_bytes(16, "big")


def test_a_key_seen_again_lands_where_it_did_and_kept_keys_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(shards_module, "PLACED_KEYS", 50)
    shard_map = even_map(8)
    keys = [f"u{i}" for i in range(200)]
    for _ in range(2):  # a second time: from what the map kept (the first 50) or hashed again
        for key in keys:
            assert shard_map.index_of(key) == int(hashlib.md5(key.encode()).hexdigest(), 16) * 8 // 2**128
    assert shard_map.kept_keys == 50


def test_a_map_whose_keys_rarely_come_back_stops_keeping_them(monkeypatch) -> None:
    monkeypatch.setattr(shards_module, "REVIEW_EVERY", 100)
    unique, repeated = even_map(8), even_map(8)
    for i in range(1_000):
        key = f"m{i}"
        assert unique.index_of(key) == int(hashlib.md5(key.encode()).hexdigest(), 16) * 8 // 2**128
        repeated.index_of(f"u{i % 60}")  # 60 users, each seen again and again...
    for i in range(100):
        repeated.index_of(f"new{i}")  # ...then new ones: reviewed at 100 kept, most lookups found theirs
    assert unique.kept_keys == 0, "a map of new keys only keeps none once it has looked"
    unique.index_of("m1")
    assert unique.kept_keys == 0, "...and keeps none afterwards"
    assert repeated.kept_keys == 160
    assert all(repeated.index_of(f"u{i}") == even_index(f"u{i}", 8) for i in range(60))


def even_index(key: str, shards: int) -> int:
    return int(hashlib.md5(key.encode()).hexdigest(), 16) * shards // 2**128


def test_a_column_of_keys_lands_where_each_key_does(monkeypatch) -> None:
    monkeypatch.setattr(shards_module, "REVIEW_EVERY", 100)
    keys = [f"m{i}" for i in range(300)] + ["u1", "u2", "u1"]
    keeping, hashing = even_map(8), even_map(8)
    for _ in range(2):  # `hashing` stops keeping keys at its first review; `keeping` never sees one
        hashing.indexes_of([f"x{i}" for i in range(100)])
    assert hashing.kept_keys == 0 and keeping.kept_keys == 0
    expected = [even_index(key, 8) for key in keys]
    assert keeping.indexes_of(keys[:50]) == expected[:50]  # (kept: fewer than a review's worth)
    assert hashing.indexes_of(keys) == expected
    assert even_map(1).indexes_of(keys) == [0] * len(keys)


def test_uneven_ranges_after_a_split_in_any_order() -> None:
    half, quarter = 2**127, 2**126
    shard_map = ShardMap.of([("b", half), ("a", 0), ("c", half + quarter)])
    assert shard_map.ids == ("a", "b", "c")
    assert shard_map.index_of_hash((half - 1).to_bytes(16, "big")) == 0
    assert shard_map.index_of_hash(half.to_bytes(16, "big")) == 1
    assert shard_map.index_of_hash((2**128 - 1).to_bytes(16, "big")) == 2


def test_a_map_read_again_gets_a_new_version_and_a_failure_says_why() -> None:
    answers: list[list[tuple[str, int]] | AwsCallFailed] = [
        [("a", 0)],
        [("b", 0), ("c", 2**127)],
        AwsCallFailed(AwsError("AccessDeniedException", "not allowed: kinesis:ListShards", 400)),
        [],
    ]

    def list_open_shards() -> list[tuple[str, int]]:
        answer = answers.pop(0)
        if isinstance(answer, AwsCallFailed):
            raise answer
        return answer

    shared: dict[int, ShardMap] = {}
    reader = ShardMapReader(list_open_shards, 3, shared)
    first = reader.reread()
    assert first is not None and shared[3] is first and first.version == 1
    second = reader.reread()
    assert second is not None and reader.current() is second and second.version == 2 and second.ids == ("b", "c")
    assert reader.reread() is None and reader.current() is second, "a failed read keeps the map it had"
    assert reader.failure == "AccessDeniedException: not allowed: kinesis:ListShards"
    assert reader.reread() is None and reader.failure == "ListShards named no open shard"


# -- token buckets and budgets -----------------------------------------------------------------------


def test_a_bucket_saves_up_its_burst_only() -> None:
    bucket = TokenBucket(1000.0, now=0.0)
    full = 1000 * BURST_SECONDS
    assert bucket.capacity == full and 0.5 <= BURST_SECONDS <= 1.0
    assert bucket.has(full, 0.0, divisible=True) and not bucket.has(full + 1, 0.0, divisible=True)
    bucket.take(full)
    assert not bucket.has(1, 0.0)
    assert bucket.wait(100, 0.0) == pytest.approx(0.1)
    assert bucket.has(100, 0.1)
    assert not bucket.has(full + 1, 60.0, divisible=True), "an idle minute saves up no more than the burst"
    bucket.take(full - 50)
    assert not bucket.has(51, 60.0)
    cautious = TokenBucket(1000.0, now=0.0, burst_seconds=CAUTIOUS_BURST_SECONDS)
    assert cautious.capacity == 1000 * CAUTIOUS_BURST_SECONDS == 200


def test_a_record_larger_than_the_burst_goes_when_the_bucket_is_full_and_leaves_debt() -> None:
    bucket = TokenBucket(1000.0, now=0.0)
    assert bucket.has(5000, 0.0)
    bucket.take(5000)
    assert bucket.wait(1, 0.0) == pytest.approx((5000 - 1000 * BURST_SECONDS + 1) / 1000)


def test_a_budget_saves_up_less_once_refused_until_back_at_its_ceiling() -> None:
    # AWS takes a second's worth at once from an idle shard; a shard that refused is shared or
    # hot, where a second saved up and sent at once would be refused (or taken from others).
    clock = Clock()
    budget = Budget(1000.0, 1_000_000.0, clock)
    full = (1000 * BURST_SECONDS, 1_000_000 * BURST_SECONDS)
    assert (budget.records.capacity, budget.size.capacity) == full
    budget.refused(clock.now, accepted_share=0.5)
    assert budget.records.capacity == pytest.approx(500 * CAUTIOUS_BURST_SECONDS)
    clock.now += 5
    budget.accepted(0, 0, clock.now)
    assert not budget.at_ceiling and budget.records.burst_seconds == CAUTIOUS_BURST_SECONDS
    clock.now += 100
    budget.accepted(0, 0, clock.now)
    assert budget.at_ceiling and (budget.records.capacity, budget.size.capacity) == full
    assert Budget(None, None, clock, slow_start=True).size.burst_seconds == CAUTIOUS_BURST_SECONDS, (
        "a capacity being learned is approached with short bursts"
    )


def test_a_budget_is_cut_by_the_share_accepted_and_grows_back_to_its_ceiling() -> None:
    clock = Clock()
    budget = Budget(1000.0, 1_000_000.0, clock)
    budget.refused(clock.now, accepted_share=0.25)
    assert budget.records.rate == pytest.approx(1000 * max(DECREASE_FLOOR, 0.25))
    clock.now += DECREASE_EVERY_SECONDS / 2
    budget.refused(clock.now, accepted_share=0.25)
    assert budget.records.rate == pytest.approx(300), "one cut per DECREASE_EVERY_SECONDS"
    clock.now += 10
    budget.accepted(0, 0, clock.now)
    grown = 1000 * INCREASE_PER_SECOND * (10 + DECREASE_EVERY_SECONDS / 2)
    assert budget.records.rate == pytest.approx(300 + grown), "grows from the cut on, linearly"
    clock.now += 1000
    budget.accepted(0, 0, clock.now)
    assert budget.records.rate == 1000.0, "never above the ceiling"
    clock.now += 1
    budget.refused(clock.now)
    assert budget.records.rate == pytest.approx(1000 * DECREASE), "share unknown: the default cut"


def test_a_budget_without_a_ceiling_sends_freely_then_keeps_to_what_got_through() -> None:
    clock = Clock()
    budget = Budget(None, None, clock)
    assert not budget.limited and budget.fits(10**9, 10**12, clock.now)
    for _ in range(20):  # 2,000 records and 2 MB a second for two seconds
        budget.accepted(200, 200_000, clock.now)
        clock.now += 0.1
    budget.refused(clock.now, accepted_share=0.5)
    assert budget.limited
    # Not cut by half again: what got through is the stream's rate for us, kept at 95%.
    assert budget.records.rate == pytest.approx(2000 * ACCEPTED_SHARE_KEPT, rel=0.06)
    assert budget.size.rate == pytest.approx(2_000_000 * ACCEPTED_SHARE_KEPT, rel=0.06)
    cut = budget.records.rate
    clock.now += 1
    budget.accepted(190, 190_000, clock.now)
    assert budget.records.rate == pytest.approx(min(cut * (1 + GROWTH_PER_SECOND), 2000 * 0.95 * 1.06), rel=0.06)
    found = budget.records.rate
    clock.now += 10
    budget.accepted(10, 100, clock.now)
    assert found < budget.records.rate < found * 1.2, "past what was found, carefully: +1% of it a second"


def test_slow_start_begins_at_the_smallest_stream_and_grows_until_refused() -> None:
    clock = Clock()
    budget = Budget(None, None, clock, slow_start=True)
    assert budget.records.rate == FLOOR_RECORDS_PER_SECOND and budget.size.rate == FLOOR_BYTES_PER_SECOND
    for _ in range(20):  # two seconds, everything accepted
        clock.now += 0.1
        budget.accepted(100, 100_000, clock.now)
    grown = FLOOR_RECORDS_PER_SECOND * (1 + SLOW_START_PER_SECOND) ** 2
    assert budget.records.rate == pytest.approx(grown, rel=0.01)
    budget.refused(clock.now, accepted_share=0.5)
    assert not budget.slow_start
    settled = budget.records.rate
    assert settled < grown, "the first refusal ends slow start"
    clock.now += 1
    budget.accepted(100, 100_000, clock.now)
    assert budget.records.rate < settled * (1 + SLOW_START_PER_SECOND), "no longer growing by half a second"


def test_the_refusal_ending_slow_start_learns_the_rate_less_what_the_stream_had_saved_up() -> None:
    # A 1 MiB/s stream, idle before: it takes its saved-up second and then 1 MiB a second, so
    # 2 s of slow start got ~3 MB through, then a call was refused by a quarter.
    clock = Clock()
    budget = Budget(None, None, clock, slow_start=True)
    for _ in range(20):
        clock.now += 0.1
        budget.accepted(1, 150_000, clock.now)
    probe = budget.size.rate
    assert probe is not None and probe > 2_000_000
    budget.refused(clock.now, accepted_share=0.75)
    assert budget.size.rate == pytest.approx(
        3_000_000 / (2 + STREAM_SAVED_UP_SECONDS) * ACCEPTED_SHARE_KEPT, rel=0.06
    ), "what got through less the saved-up second, not 0.75 of the probe"
    assert budget.records.rate == pytest.approx(FLOOR_RECORDS_PER_SECOND * 0.75), (
        "records were not what the stream refused: cut from the floor, not to the 10 a second that went"
    )


def test_a_later_refusal_learns_at_most_the_rate_that_was_refused() -> None:
    # What got through in the window includes what the stream saved up while we sent less:
    # taken for its rate, it was passed again within a second of growing back.
    clock = Clock()
    budget = Budget(None, None, clock, slow_start=True)
    budget.refused(clock.now, accepted_share=0.5)
    clock.now += 1
    for _ in range(20):  # 1.2 MB a second got through: more than the 0.5 MB/s the budget allowed
        clock.now += 0.1
        budget.accepted(1, 120_000, clock.now)
    sending = budget.size.rate
    assert sending is not None and sending < 1_000_000
    budget.refused(clock.now, accepted_share=0.8)
    assert budget.size.rate == pytest.approx(sending * ACCEPTED_SHARE_KEPT)
    clock.now += 10
    budget.accepted(1, 1, clock.now)
    assert budget.size.rate < sending * 1.25, "grows back past it carefully, not quickly to 1.2 MB/s"


def test_slow_start_is_bounded_while_a_slow_tap_leaves_it_untested() -> None:
    clock = Clock()
    budget = Budget(None, None, clock, slow_start=True)
    for _ in range(100):
        clock.now += 60
        budget.accepted(1, 1, clock.now)
    assert budget.records.rate == pytest.approx(FLOOR_RECORDS_PER_SECOND * SLOW_START_MAX)
    assert math.isfinite(budget.records.wait(10, clock.now))


def test_a_ceiling_turns_slow_start_off() -> None:
    clock = Clock()
    assert not Budget(500.0, None, clock, slow_start=True).slow_start


def test_a_first_refusal_before_anything_got_through_starts_from_a_small_stream() -> None:
    clock = Clock()
    budget = Budget(None, None, clock)
    budget.refused(clock.now, accepted_share=None)
    assert budget.records.rate == pytest.approx(FLOOR_RECORDS_PER_SECOND * DECREASE)
    assert budget.size.rate == pytest.approx(FLOOR_BYTES_PER_SECOND * DECREASE)


def test_refusals_of_calls_sent_before_a_cut_do_not_cut_again() -> None:
    clock = Clock()
    budget = Budget(1000.0, 1_000_000.0, clock)
    sent = clock.now
    clock.now += 0.05
    budget.refused(clock.now, accepted_share=0.5, sent_at=sent)
    assert budget.records.rate == pytest.approx(500)
    clock.now += DECREASE_EVERY_SECONDS * 2
    budget.refused(clock.now, accepted_share=0.5, sent_at=sent)
    assert budget.records.rate == pytest.approx(500), "that call was answered by the cut already"
    budget.refused(clock.now, accepted_share=0.5, sent_at=clock.now - 0.01)
    assert budget.records.rate == pytest.approx(250), "a call sent after the cut is a new signal"


def test_destination_budgets_per_shard_and_for_the_stream() -> None:
    clock = Clock()
    flow = DestinationFlow(
        ["s0", "s1"],
        shard_records_per_second=1000,
        shard_bytes_per_second=1_000_000,
        records_per_second=300,
        bytes_per_second=None,
        clock=clock,
    )
    prove(flow)
    burst = int(300 * BURST_SECONDS)
    assert flow.burst(0) == (burst, 1_000_000 * BURST_SECONDS), "the stream cap binds first"
    assert flow.fits_all([(0, burst, 100)], burst, 100, clock.now)
    assert not flow.fits_all([(0, 100, 50), (1, burst - 99, 50)], burst + 1, 100, clock.now), (
        "a run above the burst is split"
    )
    assert flow.try_take(0, burst, 100, clock.now)
    assert not flow.try_take(1, 1, 1, clock.now), "the stream's budget is spent, whichever shard"
    assert flow.shards[1].records.has(1000 * BURST_SECONDS, clock.now), "...and the shard's is left whole"
    flow.refused("ProvisionedThroughputExceededException", 5, {1: (10, 5)}, None)
    assert flow.shards[1].records.rate == pytest.approx(1000 * 0.5), "cut by the share it accepted"
    assert flow.shards[0].records.rate == 1000, "only the shard that refused slows down"
    assert flow.stats.refused == {"ProvisionedThroughputExceededException": 5}
    flow.reshard(["s1", "s2"])
    assert flow.shards[0].records.rate == pytest.approx(500), "an open shard keeps its budget"
    assert flow.shards[1].records.rate == 1000
    assert flow.capacity() == (300, 1_500_000), "shard 1's bytes were cut with its records"


def test_try_take_is_fits_then_take() -> None:
    """Budget.try_take (one call for the hot path) answers and leaves the buckets as
    fits-then-take does, through refills, debts, cuts and unlimited buckets."""
    randomness = random.Random(7)
    for ceilings in ((1000.0, 1_000_000.0), (1000.0, None), (None, 5_000.0)):
        clock = Clock()
        written_out, reference = Budget(*ceilings, clock), Budget(*ceilings, clock)
        for step in range(3_000):
            clock.now += randomness.choice((0.0, 0.0001, 0.001, 0.05, 0.3))
            records, size = randomness.choice((1, 1, 5, 300)), randomness.choice((10, 500, 60_000, 2_000_000))
            if step % 500 == 499:
                written_out.refused(clock.now, 0.5)
                reference.refused(clock.now, 0.5)
            expected = reference.fits(records, size, clock.now)
            if expected:
                reference.take(records, size)
            assert written_out.try_take(records, size, clock.now) == expected
            for mine, theirs in ((written_out.records, reference.records), (written_out.size, reference.size)):
                assert mine.rate == theirs.rate
                # (how long until the bucket is full again: what it holds, read through its API)
                assert mine.wait(mine.capacity, clock.now) == pytest.approx(theirs.wait(theirs.capacity, clock.now))


def test_a_budget_idle_for_long_gives_its_burst_once() -> None:
    clock = Clock()
    flow = shard_flow(clock, shards=1)  # 1,000 records a second
    full = int(1000 * BURST_SECONDS)
    clock.now += 5  # idle, full
    assert flow.fits_all([(0, full, 10_000)], full, 10_000, clock.now)
    flow.take_all([(0, full, 10_000)], full, 10_000)
    clock.now += 0.002  # 2 records' worth since
    assert flow.try_take(0, 2, 20, clock.now)
    assert not flow.try_take(0, 1, 10, clock.now), "the idle seconds were credited once, not again"


def test_a_new_destination_doubles_what_it_sends_at_once_with_each_accepted_call() -> None:
    # Its stream may be shared (a second pipeline started at the same time): a second's worth
    # sent blind would be mostly refused. Each accepted call doubles what it may send at once.
    clock = Clock()
    flow = DestinationFlow(
        ["s0", "s1"],
        shard_records_per_second=1000,
        shard_bytes_per_second=10**6,
        records_per_second=None,
        bytes_per_second=None,
        clock=clock,
    )
    first = int(1000 * CAUTIOUS_BURST_SECONDS)
    assert flow.try_take(0, first, 100, clock.now) and not flow.try_take(0, 1, 1, clock.now)
    flow.refused("ProvisionedThroughputExceededException", 5, {1: (10, 5)}, None)
    flow.accepted(first, 100)
    assert flow.try_take(0, first, 100, clock.now) and not flow.try_take(0, 1, 1, clock.now), "doubled"
    assert not flow.try_take(1, 1, 1, clock.now), "shard 1 refused: nothing more for it"
    clock.now += 0.1
    assert not flow.try_take(0, 1, 1, clock.now), "no refill while its next answer is awaited"
    flow.accepted(first, 100)
    rest = int(1000 * BURST_SECONDS) - 2 * first
    assert flow.try_take(0, rest, 100, clock.now) and not flow.try_take(0, 1, 1, clock.now), "then the rest"
    flow.accepted(first, 100)
    assert not flow.try_take(0, 1, 1, clock.now), "its whole burst was given: nothing more but its refill"
    clock.now += 0.1
    assert flow.try_take(0, 100, 1, clock.now), "which runs again"
    flow.reshard(["s0", "s2"])
    assert not flow.try_take(1, first + 1, 1, clock.now) and flow.try_take(1, first, 1, clock.now)
    flow.accepted(1, 1)
    assert flow.try_take(1, first, 1, clock.now), "a new shard is proven by the acceptances after it"


def test_a_new_budget_saves_up_nothing_more_while_its_first_answer_is_awaited() -> None:
    # Else what refills meanwhile goes in calls of a few records each while the first one is out.
    clock = Clock()
    budget = Budget(1000.0, 1_000_000.0, clock)
    assert budget.try_take(int(1000 * CAUTIOUS_BURST_SECONDS), 10, clock.now)
    clock.now += FIRST_ANSWER_SECONDS / 2
    assert not budget.fits(1, 1, clock.now)
    clock.now += FIRST_ANSWER_SECONDS  # no answer came: it refills again, from the hold's end
    assert budget.fits(int(1000 * FIRST_ANSWER_SECONDS / 2), 1, clock.now)
    assert not budget.fits(int(1000 * FIRST_ANSWER_SECONDS / 2) + 2, 1, clock.now)


def test_a_cut_shard_grows_back_through_the_destination_while_calls_are_accepted() -> None:
    clock = Clock()
    flow = shard_flow(clock, shards=3)
    flow.refused("ProvisionedThroughputExceededException", 5, {2: (10, 5)}, None)
    flow.refused("ProvisionedThroughputExceededException", 5, {0: (10, 5)}, None)
    assert flow.shards[2].records.rate == pytest.approx(500)
    flow.reshard(["s0", "s2", "s3"])  # s2 is now index 1, still cut; s0 still cut
    for _ in range(40):  # (recovering at INCREASE_PER_SECOND of the ceiling a second)
        clock.now += 1
        flow.accepted(100, 1_000)
    assert [budget.records.rate for budget in flow.shards] == [1000, 1000, 1000]
    assert all(budget.at_ceiling for budget in flow.shards)


# -- paced batches -----------------------------------------------------------------------------------


def prove(flow: DestinationFlow) -> None:
    """Calls answered until every budget holds its whole first burst (it doubles with each)."""
    for _ in range(3):
        flow.accepted(0, 0)


def shard_flow(clock: Clock, shards: int = 2, rate: float = 1000) -> DestinationFlow:
    flow = DestinationFlow(
        [f"s{i}" for i in range(shards)],
        shard_records_per_second=rate,
        shard_bytes_per_second=10**9,
        records_per_second=None,
        bytes_per_second=None,
        clock=clock,
    )
    prove(flow)
    return flow


def record(n: int, shard: int, seq: int | None = None) -> Entry:
    return Entry(f"r{n}".encode(), f"k{n}", 10, seq if seq is not None else n, shard=shard)


def run_of(shards: list[int]) -> Entry:
    column = Column.of(
        [f"r{i}".encode() for i in range(len(shards))],
        [f"k{i}" for i in range(len(shards))],
        [10] * len(shards),
        shards,
        1,
    )
    return column.entry(0, len(shards), seq=len(shards))


def test_per_shard_counts_of_a_run() -> None:
    assert sorted(per_shard(run_of([0, 1, 1, 0, 1]))) == [(0, 2, 20), (1, 3, 30)]
    assert per_shard(record(1, 3)) == [(3, 1, 10)]


def test_a_run_that_fits_goes_whole() -> None:
    clock = Clock()
    batcher = PacedBatcher(500, 10**6, shard_flow(clock), high_water=2000, clock=clock)
    run = run_of([0, 1] * 50)
    batcher.add(run)
    assert batcher.pop_ready(force=True) == [run], "one run, not 100 records"


def test_a_full_shard_waits_while_the_other_goes() -> None:
    clock = Clock()
    batcher = PacedBatcher(
        500, 10**6, shard_flow(clock, rate=20 / BURST_SECONDS), high_water=2000, clock=clock
    )  # 20-record burst
    batcher.add(run_of([0] * 30 + [1] * 10))
    first = batcher.pop_ready(force=False)
    assert first is not None
    assert sum(e.count for e in first) == 30, "20 of shard 0 (its burst) and all 10 of shard 1"
    assert batcher.waiting_for_capacity == 10
    assert batcher.pop_ready(force=True) is None, "nothing has budget yet"
    assert batcher.next_ready_in() == pytest.approx(10 / (20 / BURST_SECONDS))
    clock.now += 10 / (20 / BURST_SECONDS)
    second = batcher.pop_ready(force=False)
    assert second is not None and [e.wire for e in second] == [f"r{i}".encode() for i in range(20, 30)]


def test_a_full_shard_holds_waiting_records_up_to_its_bound_then_the_caller_waits() -> None:
    clock = Clock()
    batcher = PacedBatcher(
        500, 10**6, shard_flow(clock, rate=10 / BURST_SECONDS), high_water=2000, clock=clock
    )  # burst of 10
    bound = int(10 / BURST_SECONDS * WAITING_SECONDS)
    for n in range(10 + bound - 1):
        batcher.add(record(n, 0))
    for n in range(2):  # the other shard's records still go (its burst)
        batcher.add(record(1000 + n, 1, seq=1000 + n))
    assert batcher.waiting_for_capacity == bound - 1 and not batcher.backlog_full()
    batcher.add(record(99, 0))
    assert batcher.backlog_full(), "ten seconds of shard 0's rate wait: reading waits too"
    while batcher.pop_ready(force=True):
        pass
    clock.now += 1
    assert batcher.pop_ready(force=True) is not None
    assert not batcher.backlog_full(), "released records make room again"


def test_records_refused_for_throughput_go_first_again() -> None:
    clock = Clock()
    batcher = PacedBatcher(
        500, 10**6, shard_flow(clock, rate=3 / BURST_SECONDS), high_water=2000, clock=clock
    )  # burst of 3
    for n in range(5):
        batcher.add(record(n, 0))
    sent = batcher.pop_ready(force=True)
    assert sent is not None and [e.wire for e in sent] == [b"r0", b"r1", b"r2"]
    assert batcher.waiting_for_capacity == 2
    batcher.requeue([sent[1]])
    assert batcher.pop_ready(force=True) is None, "the shard's budget is spent"
    clock.now += 1
    again = batcher.pop_ready(force=True)
    assert again is not None and [e.wire for e in again] == [b"r1", b"r3", b"r4"]


def test_drain_and_reshard_keep_input_order() -> None:
    clock = Clock()
    batcher = PacedBatcher(500, 10**6, shard_flow(clock, rate=1), high_water=2000, clock=clock)  # one record each
    for n in range(6):
        batcher.add(record(n, n % 2))
    batcher.reshard(lambda entry: 0)
    held = batcher.drain()
    assert [e.wire for e in held] == [f"r{n}".encode() for n in range(6)]
    assert all(e.shard == 0 for e in held[2:])
    assert batcher.pending == 0


def test_per_key_batches_skip_keys_whose_shard_is_full() -> None:
    clock = Clock()
    batcher = PacedKeyedBatcher(500, 10**6, 2000, shard_flow(clock, rate=1), clock)  # burst of one record
    batcher.add(Entry(b"a1", "a", 10, 1, shard=0))
    batcher.add(Entry(b"a2", "a", 10, 2, shard=0))
    batcher.add(Entry(b"b1", "b", 10, 3, shard=0))
    batcher.add(Entry(b"c1", "c", 10, 4, shard=1))
    batch = batcher.pop_ready(force=True)
    assert batch is not None and [e.wire for e in batch] == [b"a1", b"c1"], "b waits for shard 0's budget"
    batcher.requeue([batch[0]])  # a1 refused: first again for its key
    batcher.complete(batch)
    clock.now += 10
    again = batcher.pop_ready(force=True)
    assert again is not None and [e.wire for e in again] == [b"b1"], "one record's budget: b was ready first"
    batcher.complete(again)
    clock.now += 1
    third = batcher.pop_ready(force=True)
    assert third is not None and [e.wire for e in third] == [b"a1"], "a1 before a2: a key's order holds"
    batcher.complete(third)
    clock.now += 1
    fourth = batcher.pop_ready(force=True)
    assert fourth is not None and [e.wire for e in fourth] == [b"a2"]


def test_shards_column_is_compact() -> None:
    assert Column.of([b"a"], ["k"], [1], [3]).shards == bytes([3])
    assert Column.of([b"a"], ["k"], [1], [300]).shards == array("I", [300])
    assert Column.of([b"a", b"b"], ["k", "l"], [1, 1], [0, 0]).shards is None
