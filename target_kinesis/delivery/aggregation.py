"""Packing many events into one AWS record (pure, no AWS): `aggregation: kpl` and `lines`.

A Kinesis shard takes 1,000 records a second and bills 25 KB PUT payload units; Firehose bills
every record rounded up to 5 KB. Packed, small events stop paying per record: about 110
order events share one 51 KB KPL aggregate, or one Firehose record of newline-joined lines.

The one rule that keeps KPL aggregates safe: only events bound for the same shard share an
aggregate (the KCL drops user records whose hash key lies outside the shard it reads), and
the aggregate's ExplicitHashKey (its first event's hash key) puts it on that shard. Without
a shard map, only events of one partition key share an aggregate: safe, if less packed.

Every finished record keeps its events (`Packed.members`): dead letters hold the events,
not the packed bytes, and a record refused after a reshard is packed again by the new map.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from target_kinesis.aws import kpl
from target_kinesis.delivery.shards import hash_key_bytes

#: One event in a packed record: its bytes, and (Kinesis) its partition key.
Member = tuple[bytes, "str | None"]


@dataclass(slots=True)
class Packed:
    """A finished record: what goes on the wire, and the events it carries."""

    data: bytes
    #: The record's partition key (Kinesis: its first event's) and the hash key that places it.
    key: str | None
    explicit_hash_key: str | None
    members: list[Member]
    #: The shard (index in the map it was packed by) it goes to; 0 without a map.
    shard: int
    #: What per-key ordering serializes on: records of one lane are sent one at a time.
    lane: str


@dataclass(slots=True)
class _KplOpen:
    members: list[Member] = field(default_factory=list)
    keys: dict[str, int] = field(default_factory=dict)
    size: int = kpl.FRAMING_BYTES

    def cost(self, data: bytes, key: str) -> int:
        """Bytes `data` adds (with its key, when the table lacks it): `kpl.record_entry_size`
        and `kpl.key_entry_size`, written out for the common sizes (this runs once per event)."""
        index = self.keys.get(key)
        size = len(data)
        if index is None:
            index = len(self.keys)
            extra = kpl.key_entry_size(key)
        else:
            extra = 0
        # Key index and data fields (tags of 1 byte, varints), then the record's tag and length.
        inner = (
            3
            + (1 if index < 0x80 else kpl.varint_size(index))
            + (1 if size < 0x80 else 2 if size < 0x4000 else kpl.varint_size(size))
            + size
        )
        return extra + 2 + (0 if inner < 0x80 else 1 if inner < 0x4000 else kpl.varint_size(inner) - 1) + inner

    def add(self, data: bytes, key: str, cost: int) -> None:
        keys = self.keys
        if key not in keys:
            keys[key] = len(keys)
        self.members.append((data, key))
        self.size += cost

    def finish(self) -> tuple[bytes, str, str | None]:
        members = self.members
        first_key = members[0][1]
        assert first_key is not None
        if len(members) == 1:  # one event: an ordinary record reads the same to every consumer
            return members[0][0], first_key, None
        keys = self.keys
        data = kpl.pack(list(keys), [(keys[key], payload) for payload, key in members if key is not None])
        return data, first_key, str(int.from_bytes(hash_key_bytes(first_key), "big"))


@dataclass(slots=True)
class _LinesOpen:
    members: list[Member] = field(default_factory=list)
    size: int = 0

    @staticmethod
    def cost(data: bytes, key: str | None) -> int:
        return len(data)

    def add(self, data: bytes, key: str | None, cost: int) -> None:
        self.members.append((data, key))
        self.size += cost

    def finish(self) -> tuple[bytes, str | None, str | None]:
        return b"".join(data for data, _ in self.members), None, None


class Aggregator:
    """The open packed records of one destination, one per lane; full ones come out.

    `form`: kpl or lines. `max_bytes`: an aggregate's data at most; `max_records`: its
    events at most (None: as many as fit).
    """

    def __init__(self, form: str, max_bytes: int, max_records: int | None) -> None:
        if form not in ("kpl", "lines"):
            raise ValueError(f"no aggregation called {form}")
        self.form = form
        self.max_bytes = max_bytes
        self.max_records = max_records
        self._open: dict[int | str | None, _KplOpen | _LinesOpen] = {}
        #: Events held in open records.
        self.pending = 0

    def add(self, data: bytes, key: str | None, shard: int | None, out: list[Packed]) -> None:
        """Add one event bound for `shard` (None: no shard map; events then share a record only
        with events of their own partition key). Records that fill up are appended to `out`,
        as is an event too large for any aggregate, after the open record of its lane (so that
        per-key order holds)."""
        if self.form == "lines":
            if not data.endswith(b"\n"):
                data += b"\n"  # lines are what the consumers split on
            lane: int | str | None = None
        else:
            lane = shard if shard is not None else key
        record = self._open.get(lane)
        if record is None:
            record = self._open[lane] = _KplOpen() if self.form == "kpl" else _LinesOpen()
        cost = record.cost(data, key)  # type: ignore[arg-type]
        full_count = self.max_records is not None and len(record.members) >= self.max_records
        if record.members and (record.size + cost > self.max_bytes or full_count):
            out.append(self._finish(lane, shard))
            record = self._open[lane] = _KplOpen() if self.form == "kpl" else _LinesOpen()
            cost = record.cost(data, key)  # type: ignore[arg-type]
        if record.size + cost > self.max_bytes:  # too large to share a record: it goes alone
            del self._open[lane]
            out.append(self._packed(data, key, None, [(data, key)], lane, shard))
            return
        record.add(data, key, cost)  # type: ignore[arg-type]
        self.pending += 1

    def flush(self, out: list[Packed]) -> None:
        """Every open record, finished (a flush before STATE, or the end of the run)."""
        for lane in list(self._open):
            record = self._open[lane]
            if record.members:
                out.append(self._finish(lane, lane if isinstance(lane, int) else None))
        self._open.clear()

    def take_members(self) -> list[Member]:
        """The events of every open record, taken out (to be packed again by a new shard map)."""
        members = [member for record in self._open.values() for member in record.members]
        self._open.clear()
        self.pending = 0
        return members

    def _finish(self, lane: int | str | None, shard: int | None) -> Packed:
        record = self._open.pop(lane)
        self.pending -= len(record.members)
        data, key, explicit_hash_key = record.finish()
        return self._packed(data, key, explicit_hash_key, record.members, lane, shard)

    @staticmethod
    def _packed(
        data: bytes,
        key: str | None,
        explicit_hash_key: str | None,
        members: list[Member],
        lane: int | str | None,
        shard: int | None,
    ) -> Packed:
        return Packed(data, key, explicit_hash_key, members, shard or 0, f"\x00lane {lane}")


def members_of(form: str, data: bytes, key: str | None) -> list[Member]:
    """The events of a packed record, from its data and partition key: a KPL aggregate's user
    records, or the lines of a `lines` record (JSON events hold no raw newline); a record that
    went alone (one event) is that event."""
    if form == "lines":
        return [(line + b"\n", None) for line in data.split(b"\n")[:-1]] or [(data, None)]
    try:
        return [(user_data, user_key) for user_key, _, user_data in kpl.unpack(data)]
    except kpl.NotAggregated:
        return [(data, key)]


def repack(
    form: str, max_bytes: int, max_records: int | None, members: Iterable[tuple[Member, int | None]]
) -> list[Packed]:
    """Events packed anew, each (member, shard) by its shard under a new map, in order."""
    aggregator = Aggregator(form, max_bytes, max_records)
    out: list[Packed] = []
    for (data, key), shard in members:
        aggregator.add(data, key, shard, out)
    aggregator.flush(out)
    return out


__all__ = ["Aggregator", "Member", "Packed", "members_of", "repack"]
