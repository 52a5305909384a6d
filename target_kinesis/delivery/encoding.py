"""From a finished event to the exact bytes each destination receives (pure, no AWS).

Routing, the privacy switches, the partition key, the trailing newline, the record's
size as the service counts it and its part of the request body: everything that can be
done before a record meets its producer. It is one step so that it runs wherever the
event was built: in the main process, or in a mapping process (`parallel/`) that
hands the main process finished records and nothing left to compute.
"""

from __future__ import annotations

import uuid
from array import array
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter

import orjson

from target_kinesis.aws.services import SERVICES
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.batching import Column
from target_kinesis.delivery.partition_keys import PartitionKeys, clamp_key
from target_kinesis.delivery.privacy import Privacy
from target_kinesis.delivery.routing import Router
from target_kinesis.delivery.shards import NO_MAP_VERSION, ShardMap
from target_kinesis.delivery.stats import RunStats
from target_kinesis.events.event import Event
from target_kinesis.events.serialize import dumps

#: One record for one destination, ready for `Producer.add_all`: (index into
#: `Encoder.destinations`, partition key, size as the service counts it, wire form (for a
#: destination that packs events, `aggregation`: the bytes themselves), the Kinesis shard it
#: lands on: its index in the destination's shard map, else 0: `encode` leaves 0, and
#: `columns_of` predicts the shards of a whole column at once).
#: A plain tuple: records cross a process boundary by the thousand, and tuples pickle
#: several times faster than any class.
Encoded = tuple[int, "str | None", int, bytes, int]
#: One destination of an event's plan: (index, the service's `record_size` and `wire`, trailing
#: newline, partition key, packed).
_Step = tuple[int, Callable[[bytes, "str | None"], int], Callable[[bytes, "str | None"], bytes], bool, bool, bool]


class Encoder:
    def __init__(
        self,
        router: Router,
        destinations: Sequence[Destination],
        *,
        privacy: Privacy,
        partition_keys: PartitionKeys,
        newline: Callable[[str], bool],
        packed: Callable[[Destination], bool] = lambda destination: False,
    ) -> None:
        self.router = router
        self.destinations = tuple(destinations)
        self.privacy = privacy
        self.partition_keys = partition_keys
        index = {d: i for i, d in enumerate(self.destinations)}
        # Per destination, what encoding needs: looked up by index, not by Destination
        # (a dataclass whose hash is Python code, three lookups a record).
        self._targets = {
            d: (index[d], SERVICES[d.service], newline(d.service), SERVICES[d.service].uses_partition_key, packed(d))
            for d in self.destinations
        }
        self._plans: dict[tuple[str, str | None], tuple[_Step, ...]] = {}
        self.stats = RunStats()

    def _plan(self, event: Event) -> tuple[_Step, ...]:
        """Where an event of this type and name goes; cached like the router's answer."""
        key = (event.type, event.name)
        plan = self._plans.get(key)
        if plan is None:
            plan = tuple(
                (index, service.record_size, service.wire, newline, keyed, packed)
                for index, service, newline, keyed, packed in (
                    self._targets[d] for d in self.router.route(event.type, event.name)
                )
            )
            if len(self._plans) < 10_000:  # bounded: event names come from data
                self._plans[key] = plan
        return plan

    def encode(self, event: Event, out: list[Encoded]) -> bool:
        """Append the records `event` becomes (none when unmapped or dropped as anonymous);
        False when no rule routes it anywhere (unmapped), for the caller's tally per stream.

        Once per record and destination: `_plan` and `Privacy.keep` are called only off their
        usual path, and each destination's size and wire functions are bound in its plan."""
        stats = self.stats
        stats.records_read += 1
        if event.timestamp_replaced:
            stats.timestamp_fallbacks += 1
        if event.id_not_text:
            stats.ids_not_text += 1
        plan = self._plans.get((event.type, event.name))
        if plan is None:
            plan = self._plan(event)
        if not plan:
            stats.unmapped += 1
            return False
        privacy = self.privacy
        if not privacy.send_anonymous_users and not privacy.keep(event):
            stats.dropped_anonymous += 1
            return True
        if privacy.active:
            privacy.apply(event, stats)
        data = dumps(event.body)
        key: str | None = None
        for index, record_size, wire, newline, keyed, packed in plan:
            payload = data + b"\n" if newline else data
            record_key = None
            if keyed:
                if key is None:
                    key = self.partition_keys.found_key(event)
                    if key is None:
                        stats.key_fallbacks += 1
                        key = clamp_key(event.message_id)
                record_key = key
            out.append(
                (
                    index,
                    record_key,
                    record_size(payload, record_key),
                    payload if packed else wire(payload, record_key),
                    0,
                )
            )
        return True

    def encode_stored(self, destination: Destination, data: bytes, key: str | None, out: list[Encoded]) -> None:
        """Append the record of an event encoded before (a dead letter's bytes, sent again):
        no routing and no privacy (they were applied when it was first encoded), the bytes
        unchanged; only what the destination adds: the trailing newline, the partition key
        (`key`, else the event's messageId, as `encode` falls back), size and wire form."""
        index, service, newline, keyed, packed = self._targets[destination]
        self.stats.records_read += 1
        payload = data + b"\n" if newline and not data.endswith(b"\n") else data
        record_key = None
        if keyed:
            record_key = clamp_key(key) if key else stored_message_id(data)
            if not key:
                self.stats.key_fallbacks += 1
        size = service.record_size(payload, record_key)
        out.append((index, record_key, size, payload if packed else service.wire(payload, record_key), 0))


def stored_message_id(data: bytes) -> str:
    """A stored event's messageId as its partition key (a fresh id when it has none)."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    message_id = body.get("messageId") if isinstance(body, dict) else None
    return clamp_key(message_id) if isinstance(message_id, str) and message_id else uuid.uuid4().hex


def columns_of(
    records: list[Encoded], shard_maps: Mapping[int, ShardMap]
) -> tuple[dict[int, Column], bytes | array | None]:
    """Encoded records as columns, one per destination (see `batching.Column`), and each
    record's destination index when there are several (else None).

    Each record's shard is predicted here, a column at a time (`ShardMap.indexes_of`): hashing
    each key as its record is encoded costs several times more (see delivery/shards.py).
    """
    if not records:
        return {}, None
    indexes = list(map(itemgetter(0), records))
    if indexes.count(indexes[0]) == len(indexes):
        return {indexes[0]: _column(records, shard_maps.get(indexes[0]))}, None
    destinations = bytes(indexes) if max(indexes) < 256 else array("I", indexes)
    columns = {i: _column([r for r in records if r[0] == i], shard_maps.get(i)) for i in sorted(set(indexes))}
    return columns, destinations


def _column(records: list[Encoded], shard_map: ShardMap | None) -> Column:
    _, keys, sizes, wires, _ = zip(*records, strict=True)  # one pass over the records for all three
    return Column.of(
        wires,
        keys,
        sizes,
        shard_map.indexes_of(keys) if shard_map is not None else (),
        shard_map.version if shard_map is not None else NO_MAP_VERSION,
    )


def encoder_for(settings: Settings) -> Encoder:
    """The encoder of a run: one definition, so that every process encodes alike.

    Destination indexes follow `Router.destinations`, the order the target creates its
    producers in; a mapping process and the main process agree on them this way.
    """
    router = Router(settings.rules)
    return Encoder(
        router,
        router.destinations,
        privacy=Privacy(settings.exclude_fields, settings.hash_fields, settings.send_anonymous_users),
        partition_keys=PartitionKeys(settings.partition_key),
        newline=settings.newline,
        packed=lambda destination: settings.aggregation_for(destination) != "none",
    )


__all__ = ["Encoded", "Encoder", "columns_of", "encoder_for", "stored_message_id"]
