"""What Kinesis PutRecords and Firehose PutRecordBatch share: one request body, one answer shape.

The two services differ in a few facts (API and field names, limits, partition keys, where
the answer lists each record's outcome); `kinesis.py` and `firehose.py` hold those, and
everything else is written once here. Request bodies are assembled as bytes: base64 text
needs no JSON escaping, and building them without an intermediate dict per record halves
the sending threads' CPU per call. Each record's part of the body (its "wire" form) is made
once, where the record is encoded, and never again on a retry.
"""

from __future__ import annotations

from binascii import a2b_base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from pybase64 import b64encode

#: A record's bytes as the base64 text of its `Data` field, the one encoding both services'
#: batch calls take. pybase64 (SIMD) writes it in a quarter of binascii's time: 0.7 us of a
#: mapping process's CPU per record of ~600 bytes (bench/components.py).
data_text = b64encode

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class ServiceLimits:
    """Hard limits of one service's batch API, as AWS documents them."""

    max_batch_records: int
    #: Largest request the API accepts (data plus partition keys).
    max_batch_bytes: int
    #: What every stream accepts, used unless the user asks for more.
    default_batch_bytes: int
    #: A record's size when the stream does not tell us its own maximum.
    default_record_bytes: int
    #: The largest record any stream of this service can be raised to.
    max_record_bytes: int
    max_stream_name: int
    max_partition_key_chars: int


@dataclass(frozen=True)
class RecordError:
    """Why AWS refused one record of a batch (the other records may have landed)."""

    code: str
    message: str


@dataclass(frozen=True)
class PutAnswer:
    """What a batch call's answer says: each record's fate, in request order, and (Kinesis)
    where the first accepted record landed, to tell whether the shard map still holds."""

    errors: list[RecordError | None]
    #: (index of the first accepted record, the ShardId AWS put it on); None without one.
    first_placed: tuple[int, str] | None = None
    #: The answer's entries, in request order, for `placed`.
    entries: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def placed(self, index: int) -> str | None:
        """The ShardId AWS put the `index`th record on (Kinesis), when it was accepted."""
        shard = self.entries[index].get("ShardId") if index < len(self.entries) else None
        return shard if isinstance(shard, str) else None


@dataclass(frozen=True)
class StreamInfo:
    """What the describe call tells about a destination stream: for the preflight check and
    for the policy tool, so that both read a stream the same way."""

    status: str
    #: Writes are accepted (Kinesis: ACTIVE or UPDATING; Firehose: ACTIVE).
    active: bool
    #: Server-side encryption is on or being turned on.
    encrypted: bool
    #: The KMS key (id, ARN or alias) when encrypted and the answer names one.
    kms_key: str | None
    arn: str | None
    #: The stream's own record limit (Kinesis streams raised with UpdateMaxRecordSize).
    max_record_bytes: int | None


class JsonCaller(Protocol):
    """What a service needs to send one signed JSON request (`clients.AwsClients`)."""

    def json_call(self, service: str, target: str, body: bytes) -> dict[str, Any]: ...


class Service(Protocol):
    """The per-service layer used by the shared producer."""

    name: str
    api_name: str
    describe_api_name: str
    limits: ServiceLimits
    uses_partition_key: bool
    default_append_newline: bool

    #: How this service packs many events into one record (`aggregation`): kpl or lines.
    aggregation: str
    #: An aggregated record's bytes and events, unless configured.
    aggregation_max_bytes: int
    aggregation_max_records: int | None
    #: AWS bills each record in units of this many bytes, rounded up (Kinesis PUT payload
    #: units, Firehose ingestion).
    billing_unit_bytes: int
    #: How a stream's record limit can be raised, for the line about an oversized record
    #: ("" when it cannot be).
    raise_record_limit: str

    def record_size(self, data: bytes, key: str | None) -> int: ...

    def wire(self, data: bytes, key: str | None, explicit_hash_key: str | None = None) -> bytes: ...

    #: Per-record (or per-call) refusals that mean "at capacity now": sent again when there
    #: is room, never counted against max_retries.
    capacity_codes: frozenset[str]
    #: Calls that read where records go, for pacing (Kinesis: ListShards).
    map_api_names: tuple[str, ...]

    def put(self, aws: JsonCaller, stream: str, wires: Sequence[bytes], records: int | None = None) -> PutAnswer: ...

    def describe(self, client: Any, stream: str) -> StreamInfo: ...


_DATA_START = len(b'{"Data":"')


def payload_of(wire: bytes) -> bytes:
    """A record's bytes back from its wire form, whichever the service (both begin with
    `{"Data":"<base64>"`). For dead letters: records are kept only in wire form while
    they wait, which halves what they hold in memory."""
    return a2b_base64(wire[_DATA_START : wire.index(b'"', _DATA_START)])


def partition_key_of(wire: bytes) -> str | None:
    """A record's partition key back from its wire form (None for Firehose), as `payload_of`."""
    key = orjson.loads(wire).get("PartitionKey")
    return key if isinstance(key, str) else None


@dataclass(frozen=True)
class BatchApi:
    """Where one service's batch call differs from the other's: names only."""

    service: str
    target: str
    stream_key: bytes
    entries_key: str
    failed_key: str

    def put(self, aws: JsonCaller, stream: str, wires: Sequence[bytes], records: int | None) -> PutAnswer:
        """One batch call. `wires`: request forms, a run's already joined with commas
        (`delivery.batching.Column`); `records`: how many records they hold, when that is
        not one per wire."""
        body = b'{"' + self.stream_key + b'":' + orjson.dumps(stream) + b',"Records":[' + b",".join(wires) + b"]}"
        expected = len(wires) if records is None else records
        return record_errors(
            aws.json_call(self.service, self.target, body), self.entries_key, self.failed_key, expected
        )


def record_errors(response: dict[str, Any], entries_key: str, failed_key: str, expected: int) -> PutAnswer:
    """Per-record outcome, in request order; a short answer counts the rest as failed.

    A response that lists fewer entries than we sent would otherwise let records we
    cannot account for pass as delivered. The usual answer (nothing failed, every entry
    listed) needs no look at each entry.
    """
    entries = response.get(entries_key) or []
    if response.get(failed_key) == 0 and len(entries) == expected:
        return PutAnswer([None] * expected, _placed(entries, 0), entries)
    errors: list[RecordError | None] = [
        RecordError(entry["ErrorCode"], entry.get("ErrorMessage", "")) if entry.get("ErrorCode") else None
        for entry in entries[:expected]
    ]
    errors.extend(
        RecordError("InternalFailure", "record missing from the response") for _ in range(expected - len(errors))
    )
    first = next((index for index, error in enumerate(errors) if error is None), None)
    return PutAnswer(errors, None if first is None else _placed(entries, first), entries)


def _placed(entries: list[dict[str, Any]], index: int) -> tuple[int, str] | None:
    shard = entries[index].get("ShardId") if index < len(entries) else None
    return (index, shard) if isinstance(shard, str) else None
