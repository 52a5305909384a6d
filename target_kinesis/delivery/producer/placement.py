"""Where records land: the shard each was predicted for against the one AWS named, the shard map
read again on a reshard, and aggregates packed again when their events now belong elsewhere.

Kinesis answers each record with the shard it was stored on. When that is not the shard the map
predicted, the stream was resharded (or scaled on demand): pacing per shard, what waits in the
batcher and what is packed but not sent follow the new map. Firehose has no shards and never
gets here (its answers name no shard, and it has no map).
"""

from __future__ import annotations

import logging

from target_kinesis.aws.batch_api import PutAnswer
from target_kinesis.delivery.aggregation import Member, Packed, repack
from target_kinesis.delivery.batching import Entry
from target_kinesis.delivery.producer.shared import Shared

logger = logging.getLogger("target-kinesis")

#: A shard map is read again at most this often (a reshard shows in many answers at once).
MAP_REFRESH_SECONDS = 2.0


class Placement:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._last_map_read = -MAP_REFRESH_SECONDS

    def queue_packed(self, packed: list[Packed]) -> None:
        """Lock held: finished packed records into the batcher, in order."""
        add = self._shared.batcher.add
        for entry in self.packed_entries(packed):
            add(entry)

    def packed_entries(self, packed: list[Packed]) -> list[Entry]:
        """Lock held: finished packed records as entries, in order, marked with the shard map
        they were packed by (packed again should it change)."""
        shared = self._shared
        version = shared.map_version()
        wire, size = shared.service.wire, shared.service.record_size
        entries = []
        for record in packed:
            shared.seq += 1
            entries.append(
                Entry(
                    wire(record.data, record.key, record.explicit_hash_key),
                    record.lane,
                    size(record.data, record.key),
                    shared.seq,
                    shard=record.shard,
                    packed=len(record.members),
                    version=version,
                )
            )
        return entries

    def repack(self, members: list[Member]) -> list[Packed]:
        """Events packed again by the shard map as it is now (it was read again)."""
        limits = self._shared.limits
        shard_map = self._shared.shard_map()
        placed = [(m, shard_map.index_of(m[1] or "") if shard_map is not None else None) for m in members]
        return repack(limits.aggregation, limits.aggregation_max_bytes, limits.aggregation_max_records, placed)

    def replaced(self, entries: list[Entry], version: int) -> list[Entry]:
        """Lock held: packed records packed by an older shard map, packed again by this one
        (their events may now belong to other shards); other entries as they are."""
        shared = self._shared
        if shared.aggregator is None or all(not e.packed or e.version == version for e in entries):
            return entries
        kept = [e for e in entries if not e.packed or e.version == version]
        stale = [m for e in entries if e.packed and e.version != version for m in shared.members(e)]
        return kept + self.packed_entries(self.repack(stale))

    def check(self, entries: list[Entry], index: int, shard_id: str) -> None:
        """AWS put a record on `shard_id`; if the map predicted another shard, read it again
        (a reshard, or on-demand scaling), at most every MAP_REFRESH_SECONDS."""
        shared = self._shared
        maps = shared.maps
        shard_map = maps.current() if maps is not None else None
        if maps is None or shard_map is None:
            return
        predicted = _shard_of(entries, index)
        if predicted < len(shard_map.ids) and shard_map.ids[predicted] == shard_id:
            return
        with shared.cond:
            now = shared.clock()
            if now - self._last_map_read < MAP_REFRESH_SECONDS or maps.current() is not shard_map:
                return
            self._last_map_read = now
        fresh = maps.reread()
        if fresh is None:
            return
        logger.info("%s: the shard map changed (%d open shards); pacing by the new map", shared.destination, len(fresh))
        with shared.cond:
            shared.flow.reshard(fresh.ids)
            if shared.aggregator is not None:  # what is packed and not sent yet: packed again by the new map
                held = shared.batcher.drain()
                members = [m for entry in held for m in shared.members(entry)]
                members += shared.aggregator.take_members()
                self.queue_packed(self.repack(members))
            else:
                shared.batcher.reshard(lambda entry: fresh.index_of(entry.key or ""))
            shared.cond.notify_all()

    def check_packed(self, entries: list[Entry], answer: PutAnswer) -> None:
        """KPL aggregates AWS stored on a shard other than the one they were packed for (a reshard
        between packing and sending): the KCL drops their events whose hash key lies outside that
        shard, so those events are packed again by the map as it is now and sent again.
        Consumers that deaggregate without that check (aws-kinesis-agg in Lambda) see them twice:
        at least once, never lost."""
        shared = self._shared
        maps = shared.maps
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
            for member in shared.members(entry)
            if landed in ids and ids[shard_map.index_of(member[1] or "")] != landed
        ]
        if not resend:
            return
        shared.stats.add(resent=len(resend))
        logger.warning(
            "%s: %d event(s) of aggregates a reshard placed on another shard are sent again (the KCL "
            "drops them there; consumers that deaggregate without that check see them twice)",
            shared.destination,
            len(resend),
        )
        with shared.cond:  # records_queued is counted under this lock, as add_all does
            shared.stats.records_queued += len(resend)
            self.queue_packed(self.repack(resend))
            shared.cond.notify_all()


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
