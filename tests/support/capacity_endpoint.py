"""A local Kinesis / Firehose endpoint that enforces AWS's write throughput limits.

What it is for: end-to-end tests and benchmarks of a producer's flow control. Local AWS
emulators (moto, kinesalite) accept every write however fast it comes, so a producer that
paces itself per shard cannot be measured against them. This server refuses writes exactly
the way AWS documents, so a test can count records offered, refused and accepted, and
compare what a producer achieved with the capacity it had.

It speaks the AWS JSON 1.1 protocol over HTTP/1.1 on 127.0.0.1 (keep-alive, one thread per
connection), ignores SigV4 signatures, and works with plain boto3 clients given its ``url``
as ``endpoint_url``. It runs in-process (``with CapacityEndpoint() as endpoint: ...``) or as
a separate process (``python tests/support/capacity_endpoint.py --kinesis NAME:SHARDS``,
see ``main``). Only the standard library is imported.

Where each limit comes from (the module constants below hold each one, in one place):

* Amazon Kinesis Data Streams quotas and limits (Developer Guide, "Quotas and limits"):
  each shard supports writes of up to 1,000 records per second and up to 1 MiB of data per
  second, partition keys included -> ``SHARD_RECORDS_PER_SECOND``, ``SHARD_BYTES_PER_SECOND``.
  Exceeding them gives ``ProvisionedThroughputExceededException`` for the record, with a
  message naming the shard, the stream and the account.
* Kinesis API Reference, PutRecords: up to 500 records a request, each record (data blob
  plus partition key) up to 1 MiB, the whole request up to 5 MiB including partition keys;
  partition keys are 1 to 256 Unicode characters; ExplicitHashKey matches
  ``0|([1-9]\\d{0,38})`` and lies in [0, 2^128 - 1]; placement is by the MD5 hash of the
  partition key. (Since late 2025 AWS lets a stream raise its maximum record size up to
  10 MiB, ``MaxRecordSizeInKiB``, and the current API reference gives 10 MiB per request; the
  default stream keeps the 1 MiB record limit, and this stand-in keeps the classic 5 MiB
  request limit, see ``PUT_RECORDS_MAX_CALL_BYTES``.)
* Amazon Data Firehose quotas, Direct PUT: each Firehose stream takes a combined
  5 MiB/s, 500,000 records/s and 2,000 requests/s for PutRecord and PutRecordBatch in
  us-east-1, us-west-2 and eu-west-1 -> ``FIREHOSE_*_PER_SECOND``. PutRecordBatch takes up to
  500 records or 4 MiB a call, each record up to 1,000 KiB. Firehose API Reference,
  PutRecordBatch: a record beyond the quota gets ``ServiceUnavailableException`` with
  ``ErrorMessage`` "Slow down." in ``RequestResponses``; a request beyond it fails whole with
  ``ServiceUnavailableException``.

How the per-second limits are enforced: token buckets refilled continuously at the
documented rate, holding at most one second's worth, full when created (see ``TokenBucket``).
A refused record is never stored. Time comes from ``time.monotonic()`` unless a clock is
injected (``ManualClock``), which makes the bucket arithmetic exact in unit tests.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import hashlib
import http.server
import json
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

Clock = Callable[[], float]
JsonObject = dict[str, Any]

KIB = 1024
MIB = 1024 * KIB

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
AMZ_JSON = "application/x-amz-json-1.1"
KINESIS_TARGET_PREFIX = "Kinesis_20131202."
FIREHOSE_TARGET_PREFIX = "Firehose_20150804."

# Token buckets hold one second's worth of capacity: a full second's quota may arrive at once.
BURST_SECONDS = 1.0
# Slack for float rounding in refills (rate * elapsed): far below one record or one byte.
TOKEN_EPSILON = 1e-6

# Kinesis Data Streams, per open shard (Developer Guide, "Quotas and limits").
SHARD_RECORDS_PER_SECOND = 1_000
SHARD_BYTES_PER_SECOND = 1 * MIB  # data blob + partition key (UTF-8 bytes)
# Kinesis PutRecords / PutRecord (API Reference).
PUT_RECORDS_MAX_RECORDS = 500
KINESIS_MAX_RECORD_BYTES = 1 * MIB  # data blob + partition key; the data blob alone is checked first
PUT_RECORDS_MAX_CALL_BYTES = 5 * MIB  # data blobs + partition keys of the whole request
PARTITION_KEY_MAX_CHARS = 256
HASH_KEY_SPACE = 2**128  # hash keys are 0 .. 2^128 - 1
EXPLICIT_HASH_KEY_PATTERN = re.compile(r"0|[1-9]\d{0,38}")
# Kinesis reads (API Reference: ListShards, GetRecords).
LIST_SHARDS_DEFAULT_MAX_RESULTS = 1_000
LIST_SHARDS_MAX_RESULTS = 10_000
GET_RECORDS_MAX_LIMIT = 10_000
# Sequence numbers look like AWS's: 56 decimal digits, increasing within a stream.
SEQUENCE_NUMBER_BASE = 49 * 10**54

# Amazon Data Firehose, Direct PUT, per Firehose stream (us-east-1 defaults).
FIREHOSE_BYTES_PER_SECOND = 5 * MIB
FIREHOSE_RECORDS_PER_SECOND = 500_000
FIREHOSE_CALLS_PER_SECOND = 2_000
PUT_RECORD_BATCH_MAX_RECORDS = 500
PUT_RECORD_BATCH_MAX_CALL_BYTES = 4 * MIB
FIREHOSE_MAX_RECORD_BYTES = 1_000 * KIB

THROUGHPUT_EXCEEDED = "ProvisionedThroughputExceededException"
SLOW_DOWN = "ServiceUnavailableException"
SLOW_DOWN_MESSAGE = "Slow down."
VALIDATION = "ValidationException"
INVALID_ARGUMENT = "InvalidArgumentException"
NOT_FOUND = "ResourceNotFoundException"
IN_USE = "ResourceInUseException"


def throughput_message(shard_id: str, stream_name: str) -> str:
    """The ErrorMessage AWS gives a record refused by a full shard."""
    return f"Rate exceeded for shard {shard_id} in stream {stream_name} under account {ACCOUNT_ID}."


def partition_key_hash(partition_key: str) -> int:
    """Where Kinesis places a record without ExplicitHashKey: MD5 of the key, as a 128-bit integer."""
    return int(hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).hexdigest(), 16)


def even_hash_ranges(shard_count: int) -> list[tuple[int, int]]:
    """Split 0 .. 2^128-1 into ``shard_count`` ranges as CreateStream does: shard i starts at
    i * (2^128 // N); the last one ends at 2^128 - 1."""
    if shard_count < 1:
        raise ValueError("a stream needs at least one shard")
    step = HASH_KEY_SPACE // shard_count
    starts = [index * step for index in range(shard_count)]
    ends = [start - 1 for start in starts[1:]] + [HASH_KEY_SPACE - 1]
    return list(zip(starts, ends, strict=True))


def format_sequence_number(counter: int) -> str:
    return str(SEQUENCE_NUMBER_BASE + counter)


class ApiError(Exception):
    """An AWS error answer: HTTP 400 (unless told) with ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def constraint_error(location: str, constraint: str) -> ApiError:
    """A ValidationException worded like AWS's request validation."""
    return ApiError(
        VALIDATION, f"1 validation error detected: Value at '{location}' failed to satisfy constraint: {constraint}"
    )


class ManualClock:
    """A clock for tests: stands still until ``advance`` is called. Thread-safe."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += seconds


class TokenBucket:
    """Refilled continuously at ``rate`` tokens a second, holding at most one second's worth;
    full when created.

    ``share_taken`` models another producer writing to the same shard (or Firehose stream): it
    takes that share of every refill and of the burst, so this client sees a bucket of
    ``(1 - share) * capacity`` refilled at ``(1 - share) * rate``.
    """

    def __init__(self, rate: float, now: float, share_taken: float = 0.0) -> None:
        self.rate = float(rate)
        self.capacity = self.rate * BURST_SECONDS
        self._share = share_taken
        self._tokens = self.effective_capacity
        self._updated = now

    @property
    def effective_rate(self) -> float:
        return self.rate * (1.0 - self._share)

    @property
    def effective_capacity(self) -> float:
        return self.capacity * (1.0 - self._share)

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.effective_capacity, self._tokens + elapsed * self.effective_rate)
            self._updated = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def fits(self, amount: float, now: float) -> bool:
        return amount <= self.available(now) + TOKEN_EPSILON

    def take(self, amount: float) -> None:
        """Remove tokens; call after ``fits`` said yes at the same time."""
        self._tokens = max(0.0, self._tokens - amount)

    def set_share_taken(self, share: float, now: float) -> None:
        self._refill(now)
        self._share = share
        self._tokens = min(self._tokens, self.effective_capacity)


class StoredRecord(NamedTuple):
    """A record as stored. For a Firehose stream: shard_id is "", sequence_number the RecordId,
    partition_key "" and explicit_hash_key None."""

    shard_id: str
    sequence_number: str
    partition_key: str
    explicit_hash_key: str | None
    data: bytes


@dataclass(frozen=True)
class KinesisEntry:
    """One validated record of a PutRecords / PutRecord request."""

    data: bytes
    partition_key: str
    explicit_hash_key: str | None
    hash_key: int
    size: int  # what counts against the limits: data + UTF-8 partition key


@dataclass
class PutStats:
    """What a stream was offered and what it did with it. ``offered == accepted + sum(refused)``;
    records of calls rejected by validation are not offered (they were never judged)."""

    calls: int = 0
    offered: int = 0
    accepted: int = 0
    accepted_bytes: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    failed_calls: dict[str, int] = field(default_factory=dict)
    first_accept: float | None = None
    last_accept: float | None = None

    def accept(self, now: float, size: int) -> None:
        self.accepted += 1
        self.accepted_bytes += size
        if self.first_accept is None:
            self.first_accept = now
        self.last_accept = now

    def refuse(self, code: str, count: int = 1) -> None:
        self.refused[code] = self.refused.get(code, 0) + count

    def fail_call(self, code: str) -> None:
        self.failed_calls[code] = self.failed_calls.get(code, 0) + 1

    def as_dict(self) -> JsonObject:
        return {
            "calls": self.calls,
            "offered": self.offered,
            "accepted": self.accepted,
            "accepted_bytes": self.accepted_bytes,
            "refused": dict(self.refused),
            "failed_calls": dict(self.failed_calls),
            "first_accept": self.first_accept,
            "last_accept": self.last_accept,
        }


class Shard:
    """One Kinesis shard: its hash-key range, its two write buckets and its records."""

    def __init__(
        self,
        shard_id: str,
        hash_range: tuple[int, int],
        starting_sequence: str,
        now: float,
        share_taken: float,
        parent_id: str | None = None,
        adjacent_parent_id: str | None = None,
    ) -> None:
        self.shard_id = shard_id
        self.start, self.end = hash_range
        self.starting_sequence = starting_sequence
        self.ending_sequence: str | None = None
        self.parent_id = parent_id
        self.adjacent_parent_id = adjacent_parent_id
        self.record_bucket = TokenBucket(SHARD_RECORDS_PER_SECOND, now, share_taken)
        self.byte_bucket = TokenBucket(SHARD_BYTES_PER_SECOND, now, share_taken)
        self.records: list[StoredRecord] = []
        self.arrivals: list[float] = []  # wall-clock arrival time of each record
        self.accepted_bytes = 0

    @property
    def is_open(self) -> bool:
        return self.ending_sequence is None

    def admit(self, size: int, now: float) -> bool:
        """Take one record and ``size`` bytes if both buckets have them; else take nothing."""
        if self.record_bucket.fits(1, now) and self.byte_bucket.fits(size, now):
            self.record_bucket.take(1)
            self.byte_bucket.take(size)
            return True
        return False

    def set_share_taken(self, share: float, now: float) -> None:
        self.record_bucket.set_share_taken(share, now)
        self.byte_bucket.set_share_taken(share, now)

    def describe(self) -> JsonObject:
        """The shard as ListShards shows it."""
        description: JsonObject = {
            "ShardId": self.shard_id,
            "HashKeyRange": {"StartingHashKey": str(self.start), "EndingHashKey": str(self.end)},
            "SequenceNumberRange": {"StartingSequenceNumber": self.starting_sequence},
        }
        if self.ending_sequence is not None:
            description["SequenceNumberRange"]["EndingSequenceNumber"] = self.ending_sequence
        if self.parent_id is not None:
            description["ParentShardId"] = self.parent_id
        if self.adjacent_parent_id is not None:
            description["AdjacentParentShardId"] = self.adjacent_parent_id
        return description


class StreamBase:
    """What Kinesis and Firehose streams share: a lock guarding everything, and the counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats = PutStats()

    def reject_call(self, code: str) -> None:
        """A call refused by validation before any record was judged."""
        with self.lock:
            self.stats.calls += 1
            self.stats.fail_call(code)

    def note_failed_call(self, code: str) -> None:
        """A call already counted, whose records were refused, answered with an error (HTTP 400)."""
        with self.lock:
            self.stats.fail_call(code)


class KinesisStream(StreamBase):
    """A provisioned Kinesis data stream: its shards (open and closed) and its counters.

    Every method takes ``lock``; the open shards always cover the whole hash-key space.
    """

    def __init__(self, name: str, shard_count: int, clock: Clock) -> None:
        super().__init__()
        self.name = name
        self.arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{name}"
        self.created = time.time()
        self._clock = clock
        self._share = 0.0
        self._sequence = 0
        self.shards: list[Shard] = []  # every shard, in shard-id order
        self._open: list[Shard] = []  # open shards by starting hash key
        self._open_starts: list[int] = []
        now = clock()
        self._open_shards([(hash_range, None, None) for hash_range in even_hash_ranges(shard_count)], now)

    # -- shard map -----------------------------------------------------------------------

    def _next_sequence(self) -> str:
        self._sequence += 1
        return format_sequence_number(self._sequence)

    def _open_shards(self, children: Sequence[tuple[tuple[int, int], str | None, str | None]], now: float) -> list[str]:
        starting = format_sequence_number(self._sequence)
        opened = []
        for hash_range, parent_id, adjacent_id in children:
            shard_id = f"shardId-{len(self.shards):012d}"
            shard = Shard(shard_id, hash_range, starting, now, self._share, parent_id, adjacent_id)
            self.shards.append(shard)
            self._open.append(shard)
            opened.append(shard_id)
        self._open.sort(key=lambda shard: shard.start)
        self._open_starts = [shard.start for shard in self._open]
        return opened

    def _close(self, shards: Sequence[Shard]) -> None:
        ending = self._next_sequence()  # above every sequence number the closed shards hold
        for shard in shards:
            shard.ending_sequence = ending
            self._open.remove(shard)

    def shard_for(self, hash_key: int) -> Shard:
        return self._open[bisect.bisect_right(self._open_starts, hash_key) - 1]

    def shard(self, shard_id: str) -> Shard:
        for shard in self.shards:
            if shard.shard_id == shard_id:
                return shard
        raise ApiError(NOT_FOUND, f"Shard {shard_id} in stream {self.name} under account {ACCOUNT_ID} does not exist")

    def open_shard_count(self) -> int:
        with self.lock:
            return len(self._open)

    def describe_shards(self) -> list[JsonObject]:
        with self.lock:
            return [shard.describe() for shard in self.shards]

    def reshard(self, shard_count: int) -> list[str]:
        """Close every open shard; open ``shard_count`` children splitting the key space evenly.

        A child's ParentShardId is the old shard holding its starting hash key; when it overlaps
        exactly two old shards (a merge), the other one is its AdjacentParentShardId.
        """
        ranges = even_hash_ranges(shard_count)
        with self.lock:
            now = self._clock()
            parents = list(self._open)
            children = []
            for start, end in ranges:
                overlapping = [shard.shard_id for shard in parents if shard.start <= end and shard.end >= start]
                adjacent = overlapping[1] if len(overlapping) == 2 else None
                children.append(((start, end), overlapping[0], adjacent))
            self._close(parents)
            return self._open_shards(children, now)

    def split_shard(self, shard_id: str, new_starting_hash_key: int | None = None) -> tuple[str, str]:
        """SplitShard: by default at the midpoint of the parent's range."""
        with self.lock:
            now = self._clock()
            parent = self.shard(shard_id)
            if not parent.is_open:
                raise ApiError(IN_USE, f"Shard {shard_id} in stream {self.name} is closed")
            split_at = (
                parent.start + (parent.end - parent.start + 1) // 2
                if new_starting_hash_key is None
                else new_starting_hash_key
            )
            if not parent.start < split_at <= parent.end:
                raise ApiError(INVALID_ARGUMENT, f"NewStartingHashKey {split_at} is not inside {shard_id}")
            self._close([parent])
            low, high = self._open_shards(
                [((parent.start, split_at - 1), shard_id, None), ((split_at, parent.end), shard_id, None)], now
            )
            return low, high

    def set_share_taken(self, share: float) -> None:
        with self.lock:
            now = self._clock()
            self._share = share
            for shard in self._open:
                shard.set_share_taken(share, now)

    # -- writes --------------------------------------------------------------------------

    def put(self, entries: Sequence[KinesisEntry]) -> list[JsonObject]:
        """Judge each record against its shard's buckets: one result per record, in order."""
        results: list[JsonObject] = []
        with self.lock:
            now = self._clock()
            self.stats.calls += 1
            self.stats.offered += len(entries)
            for entry in entries:
                shard = self.shard_for(entry.hash_key)
                if not shard.admit(entry.size, now):
                    self.stats.refuse(THROUGHPUT_EXCEEDED)
                    message = throughput_message(shard.shard_id, self.name)
                    results.append({"ErrorCode": THROUGHPUT_EXCEEDED, "ErrorMessage": message})
                    continue
                sequence = self._next_sequence()
                shard.records.append(
                    StoredRecord(shard.shard_id, sequence, entry.partition_key, entry.explicit_hash_key, entry.data)
                )
                shard.arrivals.append(time.time())
                shard.accepted_bytes += entry.size
                self.stats.accept(now, entry.size)
                results.append({"SequenceNumber": sequence, "ShardId": shard.shard_id})
        return results

    # -- reads ---------------------------------------------------------------------------

    def read(self, shard_id: str, position: int, limit: int) -> tuple[list[JsonObject], int, bool, list[JsonObject]]:
        """Records from ``position`` on; the next position; whether the shard is closed and read
        to its end; and then its children (GetRecords ChildShards)."""
        with self.lock:
            shard = self.shard(shard_id)
            end = min(len(shard.records), position + limit)
            records = [
                {
                    "SequenceNumber": record.sequence_number,
                    "ApproximateArrivalTimestamp": arrival,
                    "Data": base64.b64encode(record.data).decode("ascii"),
                    "PartitionKey": record.partition_key,
                }
                for record, arrival in zip(shard.records[position:end], shard.arrivals[position:end], strict=True)
            ]
            finished = not shard.is_open and end >= len(shard.records)
            children = []
            if finished:
                for child in self.shards:
                    parents = [p for p in (child.parent_id, child.adjacent_parent_id) if p is not None]
                    if shard_id in parents:
                        children.append(
                            {
                                "ShardId": child.shard_id,
                                "ParentShards": parents,
                                "HashKeyRange": child.describe()["HashKeyRange"],
                            }
                        )
            return records, end, finished, children

    def iterator_position(self, shard_id: str, iterator_type: str, sequence_number: str | None) -> int:
        with self.lock:
            shard = self.shard(shard_id)
            if iterator_type == "TRIM_HORIZON":
                return 0
            if iterator_type == "LATEST":
                return len(shard.records)
            if iterator_type in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
                if sequence_number is None or not sequence_number.isdigit():
                    raise ApiError(INVALID_ARGUMENT, f"StartingSequenceNumber is required for {iterator_type}")
                wanted = int(sequence_number)
                numbers = [int(record.sequence_number) for record in shard.records]
                if iterator_type == "AT_SEQUENCE_NUMBER":
                    return bisect.bisect_left(numbers, wanted)
                return bisect.bisect_right(numbers, wanted)
            raise ApiError(INVALID_ARGUMENT, f"ShardIteratorType {iterator_type} is not supported by this stand-in")

    # -- test API ------------------------------------------------------------------------

    def stored(self) -> list[StoredRecord]:
        with self.lock:
            return [record for shard in self.shards for record in shard.records]

    def stats_dict(self) -> JsonObject:
        with self.lock:
            open_count = len(self._open)
            return {
                "stream": self.name,
                "kind": "kinesis",
                **self.stats.as_dict(),
                "shards": {
                    shard.shard_id: {
                        "accepted": len(shard.records),
                        "bytes": shard.accepted_bytes,
                        "open": shard.is_open,
                        "first_accept": shard.arrivals[0] if shard.arrivals else None,
                        "last_accept": shard.arrivals[-1] if shard.arrivals else None,
                    }
                    for shard in self.shards
                },
                "other_producer_share": self._share,
                "capacity": {
                    "records_per_second": open_count * SHARD_RECORDS_PER_SECOND * (1.0 - self._share),
                    "bytes_per_second": open_count * SHARD_BYTES_PER_SECOND * (1.0 - self._share),
                },
            }


class DeliveryStream(StreamBase):
    """A Direct PUT Firehose stream: three buckets (records, bytes, calls) and its records."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        bytes_per_second: float = FIREHOSE_BYTES_PER_SECOND,
        records_per_second: float = FIREHOSE_RECORDS_PER_SECOND,
        calls_per_second: float = FIREHOSE_CALLS_PER_SECOND,
    ) -> None:
        super().__init__()
        self.name = name
        self.arn = f"arn:aws:firehose:{REGION}:{ACCOUNT_ID}:deliverystream/{name}"
        self.created = time.time()
        self._clock = clock
        self._share = 0.0
        now = clock()
        self.record_bucket = TokenBucket(records_per_second, now)
        self.byte_bucket = TokenBucket(bytes_per_second, now)
        self.call_bucket = TokenBucket(calls_per_second, now)
        self.records: list[StoredRecord] = []

    def put(self, blobs: Sequence[bytes]) -> list[JsonObject]:
        """Judge a call, then each record: one RequestResponses entry per record, in order.

        Raises ServiceUnavailableException when the calls-per-second bucket is empty.
        """
        results: list[JsonObject] = []
        with self.lock:
            now = self._clock()
            self.stats.calls += 1
            self.stats.offered += len(blobs)
            if not self.call_bucket.fits(1, now):
                self.stats.fail_call(SLOW_DOWN)
                self.stats.refuse(SLOW_DOWN, len(blobs))  # offered and not accepted
                raise ApiError(SLOW_DOWN, SLOW_DOWN_MESSAGE)
            self.call_bucket.take(1)
            for blob in blobs:
                if self.record_bucket.fits(1, now) and self.byte_bucket.fits(len(blob), now):
                    self.record_bucket.take(1)
                    self.byte_bucket.take(len(blob))
                    record_id = f"{uuid.uuid4().hex}{len(self.records):016x}"
                    self.records.append(StoredRecord("", record_id, "", None, blob))
                    self.stats.accept(now, len(blob))
                    results.append({"RecordId": record_id})
                else:
                    self.stats.refuse(SLOW_DOWN)
                    results.append({"ErrorCode": SLOW_DOWN, "ErrorMessage": SLOW_DOWN_MESSAGE})
        return results

    def set_share_taken(self, share: float) -> None:
        """Another producer takes ``share`` of the records and bytes (not the calls) per second."""
        with self.lock:
            now = self._clock()
            self._share = share
            self.record_bucket.set_share_taken(share, now)
            self.byte_bucket.set_share_taken(share, now)

    def stored(self) -> list[StoredRecord]:
        with self.lock:
            return list(self.records)

    def stats_dict(self) -> JsonObject:
        with self.lock:
            return {
                "stream": self.name,
                "kind": "firehose",
                **self.stats.as_dict(),
                "other_producer_share": self._share,
                "capacity": {
                    "records_per_second": self.record_bucket.effective_rate,
                    "bytes_per_second": self.byte_bucket.effective_rate,
                    "calls_per_second": self.call_bucket.effective_rate,
                },
            }


# -- request parsing ---------------------------------------------------------------------


def _decode_blob(value: Any, location: str) -> bytes:
    if not isinstance(value, str):
        raise constraint_error(location, "Member must not be null")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError("SerializationException", f"{location} is not valid base64") from error


def _record_list(value: Any, location: str, max_records: int, code: str) -> list[Any]:
    if not isinstance(value, list):
        raise constraint_error(location, "Member must not be null")
    if not value:
        raise ApiError(
            code,
            f"1 validation error detected: Value at '{location}' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        )
    if len(value) > max_records:
        raise ApiError(
            code,
            f"1 validation error detected: Value at '{location}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {max_records}",
        )
    return value


def parse_kinesis_entry(raw: Any, location: str) -> KinesisEntry:
    """One PutRecords entry (or a PutRecord body), validated as AWS does.

    Request constraints give ValidationException (data blob over 1 MiB, partition key of 0 or
    more than 256 characters, ExplicitHashKey not matching its pattern); the service's own checks
    give InvalidArgumentException (hash key above 2^128 - 1, data + key over 1 MiB).
    """
    if not isinstance(raw, dict):
        raise constraint_error(location, "Member must not be null")
    data = _decode_blob(raw.get("Data"), f"{location}data")
    key = raw.get("PartitionKey")
    if not isinstance(key, str):
        raise constraint_error(f"{location}partitionKey", "Member must not be null")
    if len(data) > KINESIS_MAX_RECORD_BYTES:
        raise constraint_error(
            f"{location}data", f"Member must have length less than or equal to {KINESIS_MAX_RECORD_BYTES}"
        )
    if not key:
        raise constraint_error(f"{location}partitionKey", "Member must have length greater than or equal to 1")
    if len(key) > PARTITION_KEY_MAX_CHARS:
        raise constraint_error(
            f"{location}partitionKey", f"Member must have length less than or equal to {PARTITION_KEY_MAX_CHARS}"
        )
    explicit = raw.get("ExplicitHashKey")
    if explicit is not None:
        if not isinstance(explicit, str) or not EXPLICIT_HASH_KEY_PATTERN.fullmatch(explicit):
            raise constraint_error(
                f"{location}explicitHashKey", "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})"
            )
        hash_key = int(explicit)
        if hash_key >= HASH_KEY_SPACE:
            raise ApiError(
                INVALID_ARGUMENT,
                f"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
                f"Specified value was {explicit}",
            )
    else:
        hash_key = partition_key_hash(key)
    size = len(data) + len(key.encode("utf-8"))
    if size > KINESIS_MAX_RECORD_BYTES:
        raise ApiError(
            INVALID_ARGUMENT,
            f"Record size including partition key is {size} bytes, above the limit of {KINESIS_MAX_RECORD_BYTES}",
        )
    return KinesisEntry(data, key, explicit, hash_key, size)


def parse_put_records(body: JsonObject) -> list[KinesisEntry]:
    raw_records = _record_list(body.get("Records"), "records", PUT_RECORDS_MAX_RECORDS, VALIDATION)
    entries = [parse_kinesis_entry(raw, f"records.{index}.member.") for index, raw in enumerate(raw_records, 1)]
    if sum(entry.size for entry in entries) > PUT_RECORDS_MAX_CALL_BYTES:
        raise ApiError(INVALID_ARGUMENT, "Records size exceeds 5 MB limit")
    return entries


def _parse_firehose_blob(raw: Any, location: str) -> bytes:
    if not isinstance(raw, dict):
        raise constraint_error(location, "Member must not be null")
    blob = _decode_blob(raw.get("Data"), f"{location}data")
    if len(blob) > FIREHOSE_MAX_RECORD_BYTES:
        raise ApiError(
            INVALID_ARGUMENT,
            f"1 validation error detected: Value at '{location}data' failed to satisfy constraint: "
            f"Member must have length less than or equal to {FIREHOSE_MAX_RECORD_BYTES}",
        )
    return blob


def parse_put_record_batch(body: JsonObject) -> list[bytes]:
    raw_records = _record_list(body.get("Records"), "records", PUT_RECORD_BATCH_MAX_RECORDS, INVALID_ARGUMENT)
    blobs = [_parse_firehose_blob(raw, f"records.{index}.member.") for index, raw in enumerate(raw_records, 1)]
    if sum(len(blob) for blob in blobs) > PUT_RECORD_BATCH_MAX_CALL_BYTES:
        raise ApiError(INVALID_ARGUMENT, "Records size exceeds 4 MiB limit")
    return blobs


def _encode_token(payload: JsonObject) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode("ascii")


def _decode_token(token: Any, what: str) -> JsonObject:
    try:
        payload = json.loads(base64.urlsafe_b64decode(str(token).encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise ApiError(INVALID_ARGUMENT, f"Invalid {what}") from error
    if not isinstance(payload, dict):
        raise ApiError(INVALID_ARGUMENT, f"Invalid {what}")
    return payload


def _int_parameter(body: JsonObject, name: str, default: int, maximum: int, code: str) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise constraint_error(name, "Member must have value greater than or equal to 1")
    if value > maximum:
        raise ApiError(code, f"{name} must be less than or equal to {maximum}, was {value}")
    return value


# -- the service: streams and operations ---------------------------------------------------


class CapacityBackend:
    """The streams and the AWS operations on them, independent of HTTP."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._kinesis: dict[str, KinesisStream] = {}
        self._firehose: dict[str, DeliveryStream] = {}
        self._operations: dict[str, Callable[[JsonObject], JsonObject]] = {
            KINESIS_TARGET_PREFIX + "CreateStream": self._create_stream,
            KINESIS_TARGET_PREFIX + "DescribeStreamSummary": self._describe_stream_summary,
            KINESIS_TARGET_PREFIX + "ListStreams": self._list_streams,
            KINESIS_TARGET_PREFIX + "ListShards": self._list_shards,
            KINESIS_TARGET_PREFIX + "PutRecords": self._put_records,
            KINESIS_TARGET_PREFIX + "PutRecord": self._put_record,
            KINESIS_TARGET_PREFIX + "GetShardIterator": self._get_shard_iterator,
            KINESIS_TARGET_PREFIX + "GetRecords": self._get_records,
            FIREHOSE_TARGET_PREFIX + "CreateDeliveryStream": self._create_delivery_stream,
            FIREHOSE_TARGET_PREFIX + "DescribeDeliveryStream": self._describe_delivery_stream,
            FIREHOSE_TARGET_PREFIX + "PutRecordBatch": self._put_record_batch,
            FIREHOSE_TARGET_PREFIX + "PutRecord": self._firehose_put_record,
        }
        #: Operations answered with AccessDeniedException, as for a role without that permission.
        self.denied: set[str] = set()

    def handle(self, target: str, body: JsonObject) -> JsonObject:
        operation = self._operations.get(target)
        if operation is None:
            raise ApiError("UnknownOperationException", f"Unknown operation {target!r}")
        name = target.rsplit(".", 1)[-1]
        if name in self.denied:
            raise ApiError(
                "AccessDeniedException",
                f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/writer is not authorized to perform: {name}",
            )
        return operation(body)

    # -- registry (also the Python test API) --------------------------------------------------

    def create_stream(self, name: str, shards: int) -> KinesisStream:
        with self._lock:
            if name in self._kinesis:
                raise ApiError(IN_USE, f"Stream {name} under account {ACCOUNT_ID} already exists.")
            stream = self._kinesis[name] = KinesisStream(name, shards, self.clock)
            return stream

    def create_delivery_stream(
        self, name: str, bytes_per_second: float, records_per_second: float, calls_per_second: float
    ) -> DeliveryStream:
        with self._lock:
            if name in self._firehose:
                raise ApiError(IN_USE, f"Firehose {name} under account {ACCOUNT_ID} already exists.")
            stream = DeliveryStream(name, self.clock, bytes_per_second, records_per_second, calls_per_second)
            self._firehose[name] = stream
            return stream

    def kinesis_stream(self, name: str) -> KinesisStream:
        with self._lock:
            stream = self._kinesis.get(name)
        if stream is None:
            raise ApiError(NOT_FOUND, f"Stream {name} under account {ACCOUNT_ID} not found.")
        return stream

    def delivery_stream(self, name: str) -> DeliveryStream:
        with self._lock:
            stream = self._firehose.get(name)
        if stream is None:
            raise ApiError(NOT_FOUND, f"Firehose {name} under account {ACCOUNT_ID} not found.")
        return stream

    def any_stream(self, name: str) -> KinesisStream | DeliveryStream:
        """A Kinesis or Firehose stream by name (for stats, records, other_producer)."""
        with self._lock:
            kinesis, firehose = self._kinesis.get(name), self._firehose.get(name)
        if kinesis is not None and firehose is not None:
            raise ValueError(f"{name!r} names both a Kinesis stream and a Firehose stream")
        stream = kinesis or firehose
        if stream is None:
            raise KeyError(name)
        return stream

    def _stream_from(self, body: JsonObject) -> KinesisStream:
        name = body.get("StreamName")
        arn = body.get("StreamARN")
        if name is None and isinstance(arn, str) and "stream/" in arn:
            name = arn.rsplit("stream/", 1)[1]
        if not isinstance(name, str):
            raise ApiError(INVALID_ARGUMENT, "StreamName or StreamARN must be given")
        return self.kinesis_stream(name)

    # -- Kinesis ---------------------------------------------------------------------------

    def _create_stream(self, body: JsonObject) -> JsonObject:
        name = body.get("StreamName")
        shards = body.get("ShardCount")
        if not isinstance(name, str) or not name:
            raise constraint_error("streamName", "Member must not be null")
        if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
            raise ApiError(INVALID_ARGUMENT, "ShardCount must be a positive integer (only PROVISIONED is modelled)")
        self.create_stream(name, shards)
        return {}

    def _describe_stream_summary(self, body: JsonObject) -> JsonObject:
        stream = self._stream_from(body)
        open_shards = stream.open_shard_count()
        return {
            "StreamDescriptionSummary": {
                "StreamName": stream.name,
                "StreamARN": stream.arn,
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": stream.created,
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE",
                "OpenShardCount": open_shards,
                "ShardCount": open_shards,  # not in the API model (botocore drops it); for raw readers
                "ConsumerCount": 0,
            }
        }

    def _list_streams(self, body: JsonObject) -> JsonObject:
        with self._lock:
            streams = sorted(self._kinesis.values(), key=lambda stream: stream.name)
        return {
            "StreamNames": [stream.name for stream in streams],
            "HasMoreStreams": False,
            "StreamSummaries": [
                {
                    "StreamName": stream.name,
                    "StreamARN": stream.arn,
                    "StreamStatus": "ACTIVE",
                    "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                    "StreamCreationTimestamp": stream.created,
                }
                for stream in streams
            ],
        }

    def _list_shards(self, body: JsonObject) -> JsonObject:
        max_results = _int_parameter(
            body, "MaxResults", LIST_SHARDS_DEFAULT_MAX_RESULTS, LIST_SHARDS_MAX_RESULTS, VALIDATION
        )
        token = body.get("NextToken")
        if token is not None:
            for name in ("StreamName", "StreamARN", "ExclusiveStartShardId", "StreamCreationTimestamp"):
                if name in body:
                    raise ApiError(INVALID_ARGUMENT, f"NextToken and {name} cannot be provided together.")
            state = _decode_token(token, "NextToken")
            stream = self.kinesis_stream(str(state.get("stream")))
            offset = state.get("offset")
            if not isinstance(offset, int) or offset < 0:
                raise ApiError(INVALID_ARGUMENT, "Invalid NextToken")
        else:
            stream = self._stream_from(body)
            shard_filter = body.get("ShardFilter")
            if body.get("ExclusiveStartShardId") is not None:
                shard_filter = {"Type": "AFTER_SHARD_ID", "ShardId": body["ExclusiveStartShardId"]}
            state = {"stream": stream.name, "filter": shard_filter}
            offset = 0
        shards = self._filter_shards(stream.describe_shards(), state.get("filter"))
        answer: JsonObject = {"Shards": shards[offset : offset + max_results]}
        if offset + max_results < len(shards):
            answer["NextToken"] = _encode_token({**state, "offset": offset + max_results})
        return answer

    @staticmethod
    def _filter_shards(shards: list[JsonObject], shard_filter: Any) -> list[JsonObject]:
        """ShardFilter: nothing expires here, so the TRIM_HORIZON types list every shard."""
        if shard_filter is None:
            return shards
        kind = shard_filter.get("Type") if isinstance(shard_filter, dict) else None
        if kind in ("AT_TRIM_HORIZON", "FROM_TRIM_HORIZON"):
            return shards
        if kind == "AT_LATEST":
            return [shard for shard in shards if "EndingSequenceNumber" not in shard["SequenceNumberRange"]]
        if kind == "AFTER_SHARD_ID":
            after = str(shard_filter.get("ShardId"))
            return [shard for shard in shards if shard["ShardId"] > after]
        raise ApiError(INVALID_ARGUMENT, f"ShardFilter type {kind!r} is not supported by this stand-in")

    def _put_records(self, body: JsonObject) -> JsonObject:
        stream = self._stream_from(body)
        try:
            entries = parse_put_records(body)
        except ApiError as error:
            stream.reject_call(error.code)
            raise
        results = stream.put(entries)
        failed = sum(1 for result in results if "ErrorCode" in result)
        return {"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"}

    def _put_record(self, body: JsonObject) -> JsonObject:
        stream = self._stream_from(body)
        try:
            entry = parse_kinesis_entry(body, "")
        except ApiError as error:
            stream.reject_call(error.code)
            raise
        (result,) = stream.put([entry])
        if "ErrorCode" in result:
            stream.note_failed_call(result["ErrorCode"])
            raise ApiError(result["ErrorCode"], result["ErrorMessage"])
        return {**result, "EncryptionType": "NONE"}

    def _get_shard_iterator(self, body: JsonObject) -> JsonObject:
        stream = self._stream_from(body)
        shard_id = str(body.get("ShardId"))
        iterator_type = str(body.get("ShardIteratorType"))
        position = stream.iterator_position(shard_id, iterator_type, body.get("StartingSequenceNumber"))
        return {"ShardIterator": _encode_token({"stream": stream.name, "shard": shard_id, "position": position})}

    def _get_records(self, body: JsonObject) -> JsonObject:
        limit = _int_parameter(body, "Limit", GET_RECORDS_MAX_LIMIT, GET_RECORDS_MAX_LIMIT, INVALID_ARGUMENT)
        iterator = _decode_token(body.get("ShardIterator"), "ShardIterator")
        stream = self.kinesis_stream(str(iterator.get("stream")))
        position = iterator.get("position")
        if not isinstance(position, int) or position < 0:
            raise ApiError(INVALID_ARGUMENT, "Invalid ShardIterator")
        records, next_position, finished, children = stream.read(str(iterator.get("shard")), position, limit)
        answer: JsonObject = {"Records": records, "MillisBehindLatest": 0}
        if finished:
            answer["NextShardIterator"] = None
            answer["ChildShards"] = children
        else:
            answer["NextShardIterator"] = _encode_token({**iterator, "position": next_position})
        return answer

    # -- Firehose --------------------------------------------------------------------------

    def _delivery_stream_from(self, body: JsonObject) -> DeliveryStream:
        name = body.get("DeliveryStreamName")
        if not isinstance(name, str):
            raise constraint_error("deliveryStreamName", "Member must not be null")
        return self.delivery_stream(name)

    def _create_delivery_stream(self, body: JsonObject) -> JsonObject:
        name = body.get("DeliveryStreamName")
        if not isinstance(name, str) or not name:
            raise constraint_error("deliveryStreamName", "Member must not be null")
        if body.get("DeliveryStreamType", "DirectPut") != "DirectPut":
            raise ApiError(INVALID_ARGUMENT, "Only DirectPut Firehose streams are modelled")
        stream = self.create_delivery_stream(
            name, FIREHOSE_BYTES_PER_SECOND, FIREHOSE_RECORDS_PER_SECOND, FIREHOSE_CALLS_PER_SECOND
        )
        return {"DeliveryStreamARN": stream.arn}

    def _describe_delivery_stream(self, body: JsonObject) -> JsonObject:
        stream = self._delivery_stream_from(body)
        return {
            "DeliveryStreamDescription": {
                "DeliveryStreamName": stream.name,
                "DeliveryStreamARN": stream.arn,
                "DeliveryStreamStatus": "ACTIVE",
                "DeliveryStreamType": "DirectPut",
                "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
                "VersionId": "1",
                "CreateTimestamp": stream.created,
                "Destinations": [],
                "HasMoreDestinations": False,
            }
        }

    def _put_record_batch(self, body: JsonObject) -> JsonObject:
        stream = self._delivery_stream_from(body)
        try:
            blobs = parse_put_record_batch(body)
        except ApiError as error:
            stream.reject_call(error.code)
            raise
        results = stream.put(blobs)
        failed = sum(1 for result in results if "ErrorCode" in result)
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": results}

    def _firehose_put_record(self, body: JsonObject) -> JsonObject:
        stream = self._delivery_stream_from(body)
        try:
            blob = _parse_firehose_blob(body.get("Record"), "record.")
        except ApiError as error:
            stream.reject_call(error.code)
            raise
        (result,) = stream.put([blob])
        if "ErrorCode" in result:
            stream.note_failed_call(result["ErrorCode"])
            raise ApiError(result["ErrorCode"], result["ErrorMessage"])
        return {"RecordId": result["RecordId"], "Encrypted": False}


# -- HTTP ---------------------------------------------------------------------------------


class CapacityHandler(http.server.BaseHTTPRequestHandler):
    """AWS JSON 1.1 over HTTP/1.1: POST / with X-Amz-Target; plus GET /__health and /__stats."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: CapacityServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks read stdout

    def _send(self, status: int, payload: JsonObject, *, close: bool = False) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", AMZ_JSON)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, error: ApiError, *, close: bool = False) -> None:
        self._send(error.status, {"__type": error.code, "message": error.message}, close=close)

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Without Content-Length the end of the body is unknown: answer, then drop the connection.
            self._send_error(ApiError("SerializationException", "Content-Length is required", 411), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self._send_error(ApiError("SerializationException", "bad Content-Length"), close=True)
            return
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as error:
            self._send_error(ApiError("SerializationException", f"the body is not JSON: {error}"))
            return
        if not isinstance(body, dict):
            self._send_error(ApiError("SerializationException", "the body is not a JSON object"))
            return
        try:
            answer = self.server.backend.handle(self.headers.get("X-Amz-Target", ""), body)
        except ApiError as error:
            self._send_error(error)
            return
        except Exception as error:  # an AWS service answers 500 InternalFailure, and keeps serving
            self._send_error(ApiError("InternalFailure", f"{type(error).__name__}: {error}", 500))
            return
        self._send(200, answer)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/__health":
            self._send(200, {"status": "ok"})
            return
        if url.path == "/__stats":
            name = parse_qs(url.query).get("stream", [""])[0]
            try:
                self._send(200, self.server.backend.any_stream(name).stats_dict())
            except (KeyError, ValueError) as error:
                self._send(404, {"__type": NOT_FOUND, "message": f"no single stream named {name!r}: {error}"})
            return
        self._send(404, {"__type": "UnknownOperationException", "message": f"GET {url.path}"})


SHUTDOWN_POLL_SECONDS = 0.02  # how often serve_forever looks for stop(); the default 0.5 s slows every test


class CapacityServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    request_queue_size = 128

    def __init__(self, port: int, backend: CapacityBackend) -> None:
        self.backend = backend
        super().__init__((HOST, port), CapacityHandler)


class CapacityEndpoint:
    """The server plus a Python API for tests. See the module docstring."""

    def __init__(self, port: int = 0, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.backend = CapacityBackend(clock)
        self._server = CapacityServer(port, self.backend)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name="capacity-endpoint", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> CapacityEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> CapacityEndpoint:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def create_stream(self, name: str, shards: int = 1) -> None:
        self.backend.create_stream(name, shards)

    def create_delivery_stream(
        self,
        name: str,
        bytes_per_second: float = FIREHOSE_BYTES_PER_SECOND,
        records_per_second: float = FIREHOSE_RECORDS_PER_SECOND,
        calls_per_second: float = FIREHOSE_CALLS_PER_SECOND,
    ) -> None:
        self.backend.create_delivery_stream(name, bytes_per_second, records_per_second, calls_per_second)

    def deny(self, operation: str) -> None:
        """Answer an operation (e.g. "ListShards") with AccessDeniedException from now on."""
        self.backend.denied.add(operation)

    def reshard(self, name: str, shards: int) -> list[str]:
        """Close every open shard and open ``shards`` children over the whole key space; returns their ids."""
        return self.backend.kinesis_stream(name).reshard(shards)

    def split_shard(self, name: str, shard_id: str, new_starting_hash_key: int | None = None) -> tuple[str, str]:
        """SplitShard (at the midpoint unless told); returns the two children's ids, low half first."""
        return self.backend.kinesis_stream(name).split_shard(shard_id, new_starting_hash_key)

    def other_producer(self, name: str, share: float) -> None:
        """From now on another producer takes ``share`` (0..1) of the stream's write capacity."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be between 0 and 1, not {share}")
        self.backend.any_stream(name).set_share_taken(share)

    def stats(self, name: str) -> JsonObject:
        return self.backend.any_stream(name).stats_dict()

    def records(self, name: str) -> list[StoredRecord]:
        """Every stored record: per shard in shard-id order, each shard in sequence order."""
        return self.backend.any_stream(name).stored()


# -- command line --------------------------------------------------------------------------


def _name_and_value(text: str, convert: Callable[[str], Any]) -> tuple[str, Any]:
    name, separator, value = text.rpartition(":")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {text!r}")
    try:
        return name, convert(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"bad value in {text!r}: {error}") from error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Kinesis/Firehose endpoint enforcing AWS's write throughput.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument(
        "--kinesis", action="append", default=[], metavar="NAME:SHARDS", type=lambda s: _name_and_value(s, int)
    )
    parser.add_argument(
        "--firehose", action="append", default=[], metavar="NAME:BYTES_PER_S", type=lambda s: _name_and_value(s, int)
    )
    parser.add_argument(
        "--other-producer", action="append", default=[], metavar="NAME:SHARE", type=lambda s: _name_and_value(s, float)
    )
    options = parser.parse_args(argv)

    endpoint = CapacityEndpoint(port=options.port)
    for name, shards in options.kinesis:
        endpoint.create_stream(name, shards)
    for name, bytes_per_second in options.firehose:
        endpoint.create_delivery_stream(name, bytes_per_second=bytes_per_second)
    for name, share in options.other_producer:
        endpoint.other_producer(name, share)

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    endpoint.start()
    print(endpoint.port, flush=True)
    while not stopping.wait(0.2):
        pass
    endpoint.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
