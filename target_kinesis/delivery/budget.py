"""One budget of capacity: a pair of token buckets (records, bytes) whose rate adapts (pure, clock injected).

A budget is cut when AWS refuses anyway (another producer, a hot shard, a Firehose quota nobody
told us: multiplicative decrease) and grows back while calls are accepted (additive increase),
never above its ceiling (the shard's capacity times `rate_limit_percent`, or the caps
`max_records_per_second` / `max_bytes_per_second`). A budget without a ceiling starts at the
smallest capacity such a stream has and grows quickly while everything is accepted (slow start,
as TCP does); at the first refusal it settles just under the rate it was achieving.
delivery/flow.py holds the budgets of one destination together.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from target_kinesis.aws.kinesis import SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND

Clock = Callable[[], float]

#: How much unused capacity a budget saves up: a burst of at most this many seconds' worth.
#: A budget at its known ceiling saves up most of a second: AWS counts a shard's capacity per
#: second and takes a second's worth at once (so does the KPL), so 1,300 records into an idle
#: 2-shard stream go in three full calls, not twelve shrinking ones. Not the whole second:
#: a call reaches AWS a little later or sooner than it took its budget, and with no slack
#: left in AWS's own second, that jitter alone refused 6% of the aggregates sent at a shard's
#: capacity.
BURST_SECONDS = 0.8
#: A budget whose rate was cut by a refusal (the stream is shared, or its shard is hot), or is
#: being learned (no ceiling known), saves up only this much: a second saved up and sent at
#: once there is refused, or taken from the other producers. Back at its ceiling, a budget
#: saves up BURST_SECONDS again.
CAUTIOUS_BURST_SECONDS = 0.2
#: A new budget holds all but CAUTIOUS_BURST_SECONDS of its second back until the destination's
#: first call is answered: its stream may not be idle (another producer, a second pipeline
#: started at the same time), and a second's worth sent blind there is mostly refused (against
#: a shard another producer took 75% of, twice as many records were refused, and two pipelines
#: started at once refused 4.5% of what they offered, not 3%). Each accepted call doubles what
#: it holds, up to the whole second (`Budget.proven`), so a burst into an idle stream still
#: goes in a few full calls; meanwhile, for at most FIRST_ANSWER_SECONDS after each answer, it
#: saves up nothing more (else what refilled went out in calls of a few records each while
#: the last one was out).
FIRST_ANSWER_SECONDS = 0.5
#: On a refusal the rate is multiplied by the share of the call's records (for that shard) that
#: were accepted, at least DECREASE_FLOOR and at most DECREASE (when the share is unknown: DECREASE):
#: a shard that took a quarter of what it was offered has about a quarter of the rate to give...
DECREASE = 0.85
DECREASE_FLOOR = 0.3
#: ...at most once per this many seconds (one answer refusing 300 records is one signal).
DECREASE_EVERY_SECONDS = 0.5
#: While calls are accepted the rate grows by this share of its ceiling a second...
INCREASE_PER_SECOND = 0.03
#: ...or, for a budget without a ceiling (its capacity unknown), by this share of itself up to
#: what the stream accepted when it last refused, and by PROBE_PER_SECOND of that above it
#: (capacity that was found is approached quickly, and passed carefully).
GROWTH_PER_SECOND = 0.10
PROBE_PER_SECOND = 0.01
#: A budget without a ceiling is set, on a refusal, to at least this share of what the stream
#: accepted over the last LEARN_WINDOW_SECONDS: what got through is what there is.
ACCEPTED_SHARE_KEPT = 0.95
#: A rate is never cut below this share of its ceiling (or of the rate it was learned at).
MIN_SHARE = 0.02
#: A budget without a ceiling learns its first rate from what was accepted in this window
#: (at least LEARN_MIN_SECONDS long, so that a first burst is not taken for a rate).
LEARN_WINDOW_SECONDS = 2.0
LEARN_MIN_SECONDS = 1.0
#: What a stream may have saved up before we started (AWS takes a second's worth at once):
#: at the refusal that ends slow start, what got through lately is that much more than the
#: stream's rate, so the rate learned is what got through over the window plus this.
STREAM_SAVED_UP_SECONDS = 1.0
#: The least rate a learned budget starts from, when little was accepted yet: the smallest
#: capacity a stream has (one Kinesis shard; Firehose's smallest default quota is 1 MiB/s).
FLOOR_RECORDS_PER_SECOND = float(SHARD_RECORDS_PER_SECOND)
FLOOR_BYTES_PER_SECOND = float(SHARD_BYTES_PER_SECOND)
#: Slow start: a budget without a ceiling, refused nothing yet, grows by this share of itself a
#: second (from the floors to a 5 MiB/s Firehose quota in about 4 s).
SLOW_START_PER_SECOND = 0.5
#: ...up to this many times the floors, far above what one process sends.
SLOW_START_MAX = 1000


class TokenBucket:
    """Tokens refilled at `rate` a second, at most `burst_seconds` worth; `rate` None: unlimited."""

    __slots__ = ("_burst_seconds", "_capacity", "_rate", "_tokens", "_updated")

    def __init__(
        self, rate: float | None, now: float, burst_seconds: float = BURST_SECONDS, saved_seconds: float | None = None
    ) -> None:
        self._rate = rate
        self._burst_seconds = burst_seconds
        self._capacity = _capacity(rate, burst_seconds)
        self._tokens = self._capacity if saved_seconds is None else min(self._capacity, _capacity(rate, saved_seconds))
        self._updated = now

    @property
    def rate(self) -> float | None:
        return self._rate

    @property
    def capacity(self) -> float:
        """The most it holds: what may go at once (inf when unlimited)."""
        return self._capacity

    @property
    def burst_seconds(self) -> float:
        return self._burst_seconds

    def set_rate(self, rate: float | None, now: float, burst_seconds: float | None = None) -> None:
        """A new rate (and, when given, a new burst); what is saved up is kept up to the new
        capacity (a larger burst fills with time, not at once)."""
        self._refill(now)
        self._rate = rate
        if burst_seconds is not None:
            self._burst_seconds = burst_seconds
        self._capacity = _capacity(rate, self._burst_seconds)
        self._tokens = min(self._tokens, self._capacity)

    def hold(self, until: float) -> None:
        """Refill nothing before `until` (or `credit`): `has` refills only when `now` is past
        the last update, so this costs the hot path nothing."""
        self._updated = until

    def held(self, now: float) -> bool:
        """Whether a `hold` still keeps it from refilling."""
        return self._updated > now

    def credit(self, now: float, seconds: float) -> None:
        """`seconds` of its rate more is there now (its stream has shown it has room); a hold ends."""
        self._updated = min(self._updated, now)
        self._refill(now)
        if self._rate is not None:
            self._tokens = min(self._capacity, self._tokens + self._rate * seconds)

    def empty(self, now: float) -> None:
        """AWS says the stream is full right now: nothing saved up is ours any more (a hold ends)."""
        self._updated = min(self._updated, now)
        self._refill(now)
        self._tokens = min(self._tokens, 0.0)

    def _refill(self, now: float) -> None:
        if now > self._updated:  # (not before a `hold` ends)
            if self._rate is not None:
                self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now

    def has(self, amount: float, now: float, *, divisible: bool = False) -> bool:
        """Whether `amount` may be taken now (refilled to `now` first: `take` right after it
        takes from what is there now). An amount above the burst that cannot be divided (one
        huge record) may be taken when the bucket is full, and leaves it in debt: the rate
        still holds over time. A `divisible` one (a run of records) never fits: split it.

        Runs for every record not sent in a run: `_refill` is written out here."""
        rate = self._rate
        if rate is None:
            return True
        tokens = self._tokens
        if now > self._updated:  # (not before a `hold` ends)
            tokens = self._tokens = min(self._capacity, tokens + (now - self._updated) * rate)
            self._updated = now
        if divisible or amount <= self._capacity:
            return tokens + _EPSILON >= amount
        return tokens + _EPSILON >= self._capacity

    def take(self, amount: float) -> None:
        """Take `amount` (after `has` said yes at the same `now`: taking without refilling
        first would credit a full bucket's idle time twice)."""
        if self._rate is not None:
            self._tokens -= amount

    def wait(self, amount: float, now: float) -> float:
        """Seconds until `amount` may be taken (0 when it may be now)."""
        if self._rate is None:
            return 0.0
        self._refill(now)
        missing = min(amount, self._capacity) - self._tokens
        return max(0.0, missing / self._rate) if self._rate > 0 else math.inf


#: Clocks are floats: a wait computed to the token must not come back a hair short.
_EPSILON = 1e-6


def _capacity(rate: float | None, burst_seconds: float) -> float:
    return math.inf if rate is None else max(rate * burst_seconds, 1.0)


@dataclass
class Budget:
    """What one shard (or one delivery stream) may take a second: records and bytes."""

    #: The most it may ever use a second (None: no ceiling is known).
    records_ceiling: float | None
    bytes_ceiling: float | None
    clock: Clock
    #: Without any ceiling: start at the floors and grow quickly until the first refusal
    #: (else: unlimited until the first refusal).
    slow_start: bool = False
    #: Unlimited budgets learn a rate at their first refusal (see the module docstring).
    records: TokenBucket = field(init=False)
    size: TokenBucket = field(init=False)
    _base: tuple[float | None, float | None] = field(init=False)
    #: Without a ceiling: what the stream accepted a second when it last refused (records, bytes).
    _found: tuple[float, float] = field(init=False, default=(0.0, 0.0))
    _last_decrease: float = field(init=False, default=-math.inf)
    #: Seconds of its first burst given so far (see `proven`).
    _allowed: float = field(init=False, default=CAUTIOUS_BURST_SECONDS)
    _last_update: float = field(init=False)
    #: (time, records, bytes) accepted recently, for budgets without a ceiling (see `_achieved`).
    _accepted: deque[tuple[float, int, int]] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        now = self.clock()
        unknown = self.records_ceiling is None and self.bytes_ceiling is None
        self.slow_start = self.slow_start and unknown
        if self.slow_start:
            self._base = (FLOOR_RECORDS_PER_SECOND, FLOOR_BYTES_PER_SECOND)
        else:
            self._base = (self.records_ceiling, self.bytes_ceiling)
        burst = CAUTIOUS_BURST_SECONDS if self.slow_start else BURST_SECONDS
        self.records = TokenBucket(self._base[0], now, burst, CAUTIOUS_BURST_SECONDS)
        self.size = TokenBucket(self._base[1], now, burst, CAUTIOUS_BURST_SECONDS)
        if not self.slow_start:  # what it saves up meanwhile comes with the first answer
            self.records.hold(now + FIRST_ANSWER_SECONDS)
            self.size.hold(now + FIRST_ANSWER_SECONDS)
        self._last_update = now

    @property
    def limited(self) -> bool:
        return self.records._rate is not None or self.size._rate is not None

    @property
    def at_ceiling(self) -> bool:
        """Its rates are back at their ceilings: nothing for `accepted` to grow."""
        return self.records.rate == self.records_ceiling and self.size.rate == self.bytes_ceiling

    def fits(self, records: int, size: int, now: float, *, divisible: bool = False) -> bool:
        return self.records.has(records, now, divisible=divisible) and self.size.has(size, now, divisible=divisible)

    def take(self, records: int, size: int) -> None:
        self.records.take(records)
        self.size.take(size)

    def try_take(self, records: int, size: int, now: float) -> bool:
        """`fits` then `take`, in fewer calls: this runs for every record not sent in a run."""
        records_bucket, size_bucket = self.records, self.size
        if records_bucket.has(records, now) and size_bucket.has(size, now):
            if records_bucket._rate is not None:
                records_bucket._tokens -= records
            if size_bucket._rate is not None:
                size_bucket._tokens -= size
            return True
        return False

    def wait(self, records: int, size: int, now: float) -> float:
        return max(self.records.wait(records, now), self.size.wait(size, now))

    def proven(self, now: float) -> bool:
        """A call of the destination was accepted: a budget refused nothing yet gets as much of its
        saved-up second again as it was given so far (it started with CAUTIOUS_BURST_SECONDS),
        and keeps holding its refill until the next answer; True once it has the whole second (or
        was refused, or its hold ran out and it refilled meanwhile: then it is done proving, with
        nothing more: what it refilled is what the stream saved up since)."""
        held = self.records.held(now) or self.size.held(now)
        if self._last_decrease != -math.inf or self._allowed >= BURST_SECONDS or not held:
            self.records.credit(now, 0.0)
            self.size.credit(now, 0.0)
            return True
        seconds = min(self._allowed, BURST_SECONDS - self._allowed)
        self._allowed += seconds
        self.records.credit(now, seconds)
        self.size.credit(now, seconds)
        if self._allowed >= BURST_SECONDS:
            return True
        self.records.hold(now + FIRST_ANSWER_SECONDS)
        self.size.hold(now + FIRST_ANSWER_SECONDS)
        return False

    def accepted(self, records: int, size: int, now: float) -> None:
        """AWS took records: the rate grows back towards its ceiling (or what was found)."""
        if self.records_ceiling is None and self.bytes_ceiling is None:
            self._accepted.append((now, records, size))
            while self._accepted and self._accepted[0][0] < now - LEARN_WINDOW_SECONDS:
                self._accepted.popleft()
        if not self.limited:
            return
        elapsed = now - self._last_update
        self._last_update = now
        if elapsed <= 0:
            return
        for bucket, base, found in (
            (self.records, self._base[0], self._found[0]),
            (self.size, self._base[1], self._found[1]),
        ):
            rate = bucket.rate
            if rate is None or base is None:
                continue
            if self._ceiling_of(bucket) is not None:
                grown = min(base, rate + base * INCREASE_PER_SECOND * elapsed)
                if grown >= base and bucket.burst_seconds != BURST_SECONDS:
                    bucket.set_rate(grown, now, BURST_SECONDS)  # back at its ceiling
                    continue
            elif self.slow_start:  # (bounded: a slow tap must not grow it without end)
                grown = min(rate * (1 + SLOW_START_PER_SECOND) ** elapsed, base * SLOW_START_MAX)
            elif rate < found * ACCEPTED_SHARE_KEPT:  # back up quickly to just under what the stream took
                grown = min(found * ACCEPTED_SHARE_KEPT, rate * (1 + GROWTH_PER_SECOND) ** elapsed)
            else:  # then past it carefully: the stream may have more now
                grown = rate + max(found, base) * PROBE_PER_SECOND * elapsed
            if grown != rate:
                bucket.set_rate(grown, now)

    def refused(self, now: float, accepted_share: float | None = None, sent_at: float | None = None) -> None:
        """AWS refused for throughput: cut the rate, by the share of what was offered that it
        accepted when known (see DECREASE). One cut answers every call sent before it: a call
        `sent_at` an earlier time is not a new signal, and cuts are DECREASE_EVERY_SECONDS apart."""
        if sent_at is not None and sent_at < self._last_decrease:
            return
        self.records.empty(now)
        self.size.empty(now)
        if now - self._last_decrease < DECREASE_EVERY_SECONDS:
            return
        self._last_decrease = now
        self._last_update = now
        factor = DECREASE if accepted_share is None else min(DECREASE, max(DECREASE_FLOOR, accepted_share))
        if self.records_ceiling is None and self.bytes_ceiling is None:
            self._cut_to_achieved(now, factor)
            return
        for bucket, base in ((self.records, self._base[0]), (self.size, self._base[1])):
            rate = bucket.rate
            if rate is not None and base is not None:
                bucket.set_rate(max(base * MIN_SHARE, rate * factor), now, CAUTIOUS_BURST_SECONDS)

    def _achieved(self, now: float, saved_up: float = 0.0) -> tuple[float, float]:
        """Records and bytes a second the stream accepted lately (over at least LEARN_MIN_SECONDS,
        so that a first burst into a stream that had saved up capacity is not taken for a rate;
        and over `saved_up` seconds more, for a stream that may have had that much saved up)."""
        if not self._accepted:
            return 0.0, 0.0
        window = max(min(LEARN_WINDOW_SECONDS, now - self._accepted[0][0]), LEARN_MIN_SECONDS) + saved_up
        return (
            sum(entry[1] for entry in self._accepted) / window,
            sum(entry[2] for entry in self._accepted) / window,
        )

    def _cut_to_achieved(self, now: float, factor: float) -> None:
        """A budget without a ceiling: what got through lately is what the stream has for us, so
        the rate goes to just under it (or to `factor` of itself, when that is more). At the
        first refusal, when little may have got through yet, to at least `factor` of the floors
        (the smallest capacity a stream has).

        What got through overstates the stream's rate by what it had saved up while we sent
        less (AWS takes a second's worth at once). So the refusal that ends slow start, which
        answers a rate that was a probe and never one the stream took, is cut from the floors,
        not from itself, to what got through over the window plus STREAM_SAVED_UP_SECONDS; a
        later one takes what got through at most at the rate that was refused. Without these, a
        1 MiB/s stream's rate was learned at 1.5x it and passed again within seconds: with
        records of ~230 KB (`aggregation: lines`) one in seven was refused."""
        probed = self.slow_start
        if probed:
            achieved = self._achieved(now, STREAM_SAVED_UP_SECONDS)
        else:  # what got through may hold what the stream saved up while we sent less: at most
            # what we were sending at (the rate that was refused)
            records, size = self._achieved(now)
            achieved = (min(records, self.records.rate or math.inf), min(size, self.size.rate or math.inf))
        self._found = achieved
        self.slow_start = False
        if not self.limited:
            self._base = (max(achieved[0], FLOOR_RECORDS_PER_SECOND), max(achieved[1], FLOOR_BYTES_PER_SECOND))
        for bucket, got, floor in (
            (self.records, achieved[0], FLOOR_RECORDS_PER_SECOND),
            (self.size, achieved[1], FLOOR_BYTES_PER_SECOND),
        ):
            rate = floor if probed or bucket.rate is None else bucket.rate
            bucket.set_rate(
                max(rate * factor, got * ACCEPTED_SHARE_KEPT, floor * MIN_SHARE), now, CAUTIOUS_BURST_SECONDS
            )

    def _ceiling_of(self, bucket: TokenBucket) -> float | None:
        return self.records_ceiling if bucket is self.records else self.bytes_ceiling
