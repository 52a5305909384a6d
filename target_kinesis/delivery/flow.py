"""Writing at the stream's capacity: budgets per shard and per delivery stream (pure, clock injected).

A Kinesis shard takes 1,000 records and 1 MiB a second; a record sent beyond that is refused
and has to be sent again, and on a shard shared with other producers each refusal is capacity
they lose too. So a record takes its shard's budget before it is sent, and waits while the
budget is spent; other shards' records go meanwhile.

Each budget is a pair of token buckets (records and bytes) whose rate adapts: it is cut when
AWS refuses anyway (another producer, a hot shard, a Firehose quota nobody told us:
multiplicative decrease) and grows back while calls are accepted (additive increase), never
above its ceiling (the shard's capacity times `rate_limit_percent`, or the caps
`max_records_per_second` / `max_bytes_per_second`). A budget without a ceiling (a Firehose
stream without caps, a Kinesis stream whose map could not be read) starts at the smallest
capacity such a stream has (one shard; Firehose's smallest default quota, 1 MiB/s) and grows
quickly while everything is accepted (slow start, as TCP does); at the first refusal it
settles just under the rate it was achieving. Sending freely until then refused about one
record in eight in the first seconds against a 1 MiB/s delivery stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from target_kinesis.aws.kinesis import SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.budget import Budget, Clock
from target_kinesis.delivery.shards import ShardMap


@dataclass
class FlowStats:
    """What pacing did, for the summary and the progress line (thread-safe through its owner)."""

    refused: dict[str, int] = field(default_factory=dict)
    #: Seconds the producer's caller spent waiting for capacity (a full backlog of paced records).
    waited: float = 0.0

    def refusal(self, code: str, records: int) -> None:
        self.refused[code] = self.refused.get(code, 0) + records


class DestinationFlow:
    """The budgets of one destination: one per shard (Kinesis with a shard map), one for the
    whole stream (always: its caps, and what adapts to refusals that name no shard)."""

    def __init__(
        self,
        shard_ids: Sequence[str],
        *,
        shard_records_per_second: float | None,
        shard_bytes_per_second: float | None,
        records_per_second: float | None,
        bytes_per_second: float | None,
        clock: Clock,
        slow_start: bool = False,
    ) -> None:
        self.clock = clock
        self.shard_ids = tuple(shard_ids)
        self._shard_rates = (shard_records_per_second, shard_bytes_per_second)
        self.shards = [Budget(*self._shard_rates, clock) for _ in self.shard_ids]
        #: Shards whose rate was cut and has not grown back to its ceiling yet: the only ones
        #: `accepted` has work for (on a 256-shard stream, touching every budget after every
        #: call cost more than the rest of pacing).
        self._recovering: set[int] = set()
        self.stream = Budget(records_per_second, bytes_per_second, clock, slow_start and not self.shard_ids)
        #: Budgets still holding part of their first burst back (see `Budget.proven`).
        self._unproven: list[Budget] = [self.stream, *self.shards]
        self.stats = FlowStats()

    def reshard(self, shard_ids: Sequence[str]) -> None:
        """A new map: shards still open keep their budgets, new ones start fresh."""
        old = dict(zip(self.shard_ids, self.shards, strict=True))
        self.shard_ids = tuple(shard_ids)
        self.shards = [old.get(shard_id) or Budget(*self._shard_rates, self.clock) for shard_id in self.shard_ids]
        kept = {id(budget) for budget in old.values()}
        self._unproven.extend(budget for budget in self.shards if id(budget) not in kept)
        self._recovering = {index for index, budget in enumerate(self.shards) if not budget.at_ceiling}

    @property
    def paced(self) -> bool:
        """Whether any budget limits sending now (else records need no accounting at all)."""
        return bool(self.shards) or self.stream.limited

    def capacity(self) -> tuple[float | None, float | None]:
        """(records/s, bytes/s) this destination may use at most now; None when unknown."""
        if self.shards:
            records = sum(b.records.rate or 0.0 for b in self.shards)
            size = sum(b.size.rate or 0.0 for b in self.shards)
            stream_records, stream_bytes = self.stream.records.rate, self.stream.size.rate
            return (
                min(records, stream_records) if stream_records is not None else records,
                min(size, stream_bytes) if stream_bytes is not None else size,
            )
        return self.stream.records.rate, self.stream.size.rate

    def try_take(self, shard: int, records: int, size: int, now: float) -> bool:
        """Take budget for records bound for `shard` if both its budget and the stream's have
        it now (else take nothing). Runs for every record not sent in a run (no mapping
        processes; records of a run that did not fit; records held for capacity)."""
        stream = self.stream
        if not stream.limited:
            return not self.shards or self.shards[shard].try_take(records, size, now)
        if not stream.fits(records, size, now):
            return False
        if self.shards and not self.shards[shard].try_take(records, size, now):
            return False
        stream.take(records, size)
        return True

    def fits_all(self, per_shard: Iterable[tuple[int, int, int]], records: int, size: int, now: float) -> bool:
        """Whether a run may go whole: (shard, records, bytes) for each shard it touches. A run
        larger than a budget's burst never does (its records go one by one instead)."""
        if not self.stream.fits(records, size, now, divisible=True):
            return False
        shards = self.shards
        return not shards or all(shards[s].fits(n, b, now, divisible=True) for s, n, b in per_shard)

    def records_rate(self, shard: int) -> float | None:
        """Records a second `shard` may take now (its budget and the stream's); None: no limit."""
        rates = [self.stream.records.rate]
        if self.shards:
            rates.append(self.shards[shard].records.rate)
        known = [rate for rate in rates if rate is not None]
        return min(known) if known else None

    def burst(self, shard: int) -> tuple[float, float]:
        """(records, bytes) that may go to `shard` at once at most (inf: no limit)."""
        budgets = [self.stream, self.shards[shard]] if self.shards else [self.stream]
        return min(b.records.capacity for b in budgets), min(b.size.capacity for b in budgets)

    def take_all(self, per_shard: Iterable[tuple[int, int, int]], records: int, size: int) -> None:
        self.stream.take(records, size)
        shards = self.shards
        if shards:
            for s, n, b in per_shard:
                shards[s].take(n, b)

    def wait(self, shard: int, records: int, size: int, now: float) -> float:
        wait = self.stream.wait(records, size, now)
        if self.shards:
            wait = max(wait, self.shards[shard].wait(records, size, now))
        return wait

    def accepted(self, records: int, size: int) -> None:
        """AWS took records: every budget that was cut grows back (additive increase is a
        matter of time without refusals, whichever shard the records were for)."""
        now = self.clock()
        if self._unproven:
            self._unproven = [budget for budget in self._unproven if not budget.proven(now)]
        self.stream.accepted(records, size, now)
        if self._recovering:
            shards = self.shards
            for shard in list(self._recovering):
                budget = shards[shard]
                budget.accepted(0, 0, now)
                if budget.at_ceiling:
                    self._recovering.discard(shard)

    def refused(
        self,
        code: str,
        records: int,
        by_shard: Mapping[int, tuple[int, int]] | None,
        accepted_share: float | None,
        sent_at: float | None = None,
    ) -> None:
        """Records refused for throughput by a call sent at `sent_at`. `by_shard`: (offered,
        refused) of the call per shard, for refusals that name their shard (Kinesis per-record
        ones); those shards slow down, each by what it accepted. Otherwise the whole stream slows
        down (by `accepted_share` of the call)."""
        now = self.clock()
        self.stats.refusal(code, records)
        if by_shard is None or not self.shards:
            self.stream.refused(now, accepted_share, sent_at)
            return
        for shard, (offered, refused) in by_shard.items():
            if refused and shard < len(self.shards):
                self.shards[shard].refused(now, (offered - refused) / offered if offered else 0.0, sent_at)
                self._recovering.add(shard)


def flow_for(settings: Settings, shard_map: ShardMap | None) -> DestinationFlow:
    """The budgets of one destination: a shard's capacity times `rate_limit_percent` for each
    shard of its map (Kinesis), and the caps `max_records_per_second` / `max_bytes_per_second`
    for the whole stream. A stream with neither (Firehose without caps, a Kinesis stream whose map
    could not be read) starts slowly (see SLOW_START_PER_SECOND)."""
    share = settings.rate_limit_percent / 100
    return DestinationFlow(
        shard_map.ids if shard_map is not None else (),
        shard_records_per_second=SHARD_RECORDS_PER_SECOND * share,
        shard_bytes_per_second=SHARD_BYTES_PER_SECOND * share,
        records_per_second=settings.max_records_per_second,
        bytes_per_second=settings.max_bytes_per_second,
        clock=time.monotonic,
        slow_start=True,
    )
