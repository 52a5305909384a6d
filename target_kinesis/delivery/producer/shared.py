"""What the roles of one destination's producer share: the queue, the pacing, the lock.

The queue (producer/intake.py), the life of each batch (producer/sending.py), placement
(producer/placement.py) and failure accounting (producer/failures.py) act on one destination's
records together; this is the one object they all hold, so that each role names what it touches.
`cond` guards the batcher, the aggregator, `seq` and `records_queued`: a role that changes them
holds it, and notifies it when a waiting caller may go on.
"""

from __future__ import annotations

import threading
import time
import typing as t
from collections.abc import Callable

from target_kinesis.aws.batch_api import Service, partition_key_of, payload_of
from target_kinesis.config.destinations import Destination
from target_kinesis.delivery.aggregation import Aggregator, Member, members_of
from target_kinesis.delivery.batching import Entry, PacingBatcher
from target_kinesis.delivery.flow import DestinationFlow
from target_kinesis.delivery.pacing import PacedBatcher, PacedKeyedBatcher
from target_kinesis.delivery.producer.limits import BACKLOG_BATCHES, PER_KEY_BACKLOG_BATCHES, ProducerLimits
from target_kinesis.delivery.shards import ShardMap
from target_kinesis.delivery.stats import DestinationStats


class MapSource(t.Protocol):
    """Where a Kinesis destination's shard map comes from, and goes when it is read again
    (the encoder that predicts shards in this process shares it)."""

    def current(self) -> ShardMap | None: ...

    def reread(self) -> ShardMap | None:
        """ListShards again; None when the map cannot be read (pacing per stream goes on)."""


class Shared:
    def __init__(
        self,
        destination: Destination,
        service: Service,
        limits: ProducerLimits,
        *,
        flow: DestinationFlow,
        stats: DestinationStats,
        shard_maps: MapSource | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.destination = destination
        self.service = service
        self.limits = limits
        self.flow = flow
        self.stats = stats
        self.maps = shard_maps
        self.clock = clock
        self.max_record_bytes = min(limits.max_record_bytes, limits.max_batch_bytes)
        #: With `aggregation`, events are packed before they are batched; records handed over
        #: then carry their bytes as they are, not their wire form (encoding.Encoder).
        self.aggregator = (
            Aggregator(limits.aggregation, limits.aggregation_max_bytes, limits.aggregation_max_records)
            if limits.aggregation != "none"
            else None
        )
        self.batcher: PacingBatcher
        records, size = limits.max_batch_records, limits.max_batch_bytes
        if limits.per_key_order and service.uses_partition_key:
            self.batcher = PacedKeyedBatcher(records, size, records * PER_KEY_BACKLOG_BATCHES, flow, clock)
        else:
            self.batcher = PacedBatcher(records, size, flow, records * BACKLOG_BATCHES, clock)
        self.cond = threading.Condition(threading.Lock())
        #: The order records were handed over in (the batcher sends them back in line by it).
        self.seq = 0
        #: Set when the run stops (an error, or close): retries still waiting give up.
        self.abandon = threading.Event()

    def shard_map(self) -> ShardMap | None:
        return self.maps.current() if self.maps is not None else None

    def map_version(self) -> int:
        shard_map = self.shard_map()
        return shard_map.version if shard_map is not None else 0

    def members(self, entry: Entry) -> list[Member]:
        """The events an entry carries, (bytes, partition key) each."""
        if entry.members is not None:
            return entry.members
        data = payload_of(entry.wire)
        if not entry.packed:
            return [(data, entry.key)]
        key = partition_key_of(entry.wire) if self.service.uses_partition_key else None
        return members_of(self.limits.aggregation, data, key)
