"""Which Kinesis shard a record goes to: the MD5 of its partition key against the shards' ranges.

Kinesis places a record on the open shard whose hash-key range holds the MD5 of its partition
key, read as a 128-bit big-endian number (or its ExplicitHashKey). Knowing the map lets the
producer pace each shard on its own: one hot shard waits while the others go. The map is read
with ListShards at start-up and again when AWS places a record where the map did not predict
(resharding, on-demand scaling).

Comparisons are made on the 16-byte digests themselves: big-endian bytes order exactly as the
numbers do, and bisecting a list of bytes runs in C.
"""

from __future__ import annotations

import hashlib
import importlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from target_kinesis.aws.errors import AwsCallFailed

HASH_BYTES = 16
#: Partition keys whose shard a map keeps (about 10 MB at most).
PLACED_KEYS = 100_000
#: Every this many keys kept, the map looks at how often a key came back: keeping a key costs
#: about as much as hashing it once more, so a map whose keys are mostly new (messageId, or
#: userId on a stream of first-time visitors) stops keeping them (see `_Placements`). A map
#: with fewer distinct keys than this keeps them all.
REVIEW_EVERY = 10_000
#: ...when fewer than this share of lookups found their key kept.
MIN_REPEAT_SHARE = 0.4
#: A map that stands for "no map": every record on one pseudo-shard, paced per destination.
NO_MAP_VERSION = 0


def _md5_of_this_python() -> Callable[[bytes], Any]:
    """CPython's own MD5 where it has one: no OpenSSL provider lookup per hash object (amid the
    target's other work hashlib.md5 cost ~5 µs a key, this ~3); else (a FIPS build) OpenSSL's."""
    try:
        return importlib.import_module("_md5").md5
    except ImportError:  # pragma: no cover - depends on how Python was built
        return hashlib.md5


#: (Bound once: `index_of` runs for every record.)
_md5 = _md5_of_this_python()


def hash_key_bytes(partition_key: str) -> bytes:
    """The 128-bit hash key Kinesis derives from a partition key, as 16 big-endian bytes."""
    return _md5(partition_key.encode("utf-8")).digest()  # Kinesis's placement, not security


class _Placements:
    """The shard of each partition key a map has seen, kept while keys come back often enough
    to pay for keeping them (hashing costs ~1 µs a key; keeping one about as much again)."""

    __slots__ = ("keep", "lookups", "shards")

    def __init__(self) -> None:
        self.shards: dict[str, int] = {}
        self.lookups = 0
        self.keep = True

    def add(self, partition_key: str, shard: int) -> None:
        shards = self.shards
        shards[partition_key] = shard
        kept = len(shards)
        if kept % REVIEW_EVERY == 0 and self.lookups - kept < MIN_REPEAT_SHARE * self.lookups:
            self.keep = False  # mostly new keys so far: hash each one, keep none
            shards.clear()
        elif kept >= PLACED_KEYS:
            self.keep = False


@dataclass(frozen=True)
class ShardMap:
    """The open shards of a stream, ordered by their starting hash key."""

    #: Shard ids, in order of their ranges.
    ids: tuple[str, ...]
    #: Starting hash keys (16 big-endian bytes), in the same order.
    starts: tuple[bytes, ...]
    #: Increases with each reading of the map, so work done under an older one can be told apart.
    version: int = 1
    _starts: list[bytes] = field(init=False, repr=False, compare=False)
    #: Shard of each partition key seen (see `index_of`).
    _placed: _Placements = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", list(self.starts))
        object.__setattr__(self, "_placed", _Placements())

    @classmethod
    def of(cls, shards: Sequence[tuple[str, int]], version: int = 1) -> ShardMap:
        """From (shard id, starting hash key) pairs of the open shards, in any order."""
        ordered = sorted(shards, key=lambda shard: shard[1])
        return cls(
            tuple(shard_id for shard_id, _ in ordered),
            tuple(start.to_bytes(HASH_BYTES, "big") for _, start in ordered),
            version,
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kept_keys(self) -> int:
        """How many partition keys' shards the map holds (see `index_of`)."""
        return len(self._placed.shards)

    def index_of_hash(self, hash_key: bytes) -> int:
        """The shard (its index in `ids`) whose range holds a 16-byte hash key."""
        return bisect_right(self._starts, hash_key) - 1

    def indexes_of(self, partition_keys: Sequence[str | None]) -> list[int]:
        """`index_of` for many keys (a column of a mapping process's answer). Hashed in one
        tight loop, MD5 stays in the CPU's caches: ~1 µs a key, against ~3 µs for each key
        hashed amid the rest of its record's encoding."""
        if len(self._starts) == 1:
            return [0] * len(partition_keys)
        placed = self._placed
        if placed.keep:
            return [self.index_of(key or "") for key in partition_keys]
        placed.lookups += len(partition_keys)
        starts, md5 = self._starts, _md5
        return [bisect_right(starts, md5((key or "").encode("utf-8")).digest()) - 1 for key in partition_keys]

    def index_of(self, partition_key: str) -> int:
        """The shard a record with this partition key lands on.

        Runs for every record the main process encodes itself (no mapping processes; records
        predicted again after a reshard): keys such as userId come back again and again, so
        each key's shard is kept (up to PLACED_KEYS keys, and only while keys do come back:
        see `_Placements`). Mapping processes predict a column at a time (`indexes_of`).
        """
        if len(self._starts) == 1:
            return 0
        placed = self._placed
        placed.lookups += 1
        shard = placed.shards.get(partition_key)
        if shard is None:
            shard = bisect_right(self._starts, _md5(partition_key.encode("utf-8")).digest()) - 1
            if placed.keep:
                placed.add(partition_key, shard)
        return shard


class ShardMapReader:
    """One Kinesis destination's shard map: read at start-up and again when AWS places records
    where the map did not predict. Kept in `shared`, the dict (destination index -> map) the
    encoder of this process predicts shards with, so both see the same map.

    `list_open_shards` is the AWS call (aws.kinesis.list_shards, bound to a client and stream).
    """

    def __init__(
        self, list_open_shards: Callable[[], list[tuple[str, int]]], index: int, shared: dict[int, ShardMap]
    ) -> None:
        self._list = list_open_shards
        self._index = index
        self._shared = shared
        #: Why the map could not be read, when it could not.
        self.failure = ""

    def current(self) -> ShardMap | None:
        return self._shared.get(self._index)

    def reread(self) -> ShardMap | None:
        """Read the map again; None (and `failure` says why) when it cannot be read."""
        try:
            shards = self._list()
        except AwsCallFailed as exc:
            self.failure = f"{exc.error.code}: {exc.error.message}"
            return None
        if not shards:
            self.failure = "ListShards named no open shard"
            return None
        old = self.current()
        fresh = ShardMap.of(shards, version=(old.version + 1) if old is not None else 1)
        self._shared[self._index] = fresh
        return fresh
