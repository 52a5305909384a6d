"""The few facts in which Kinesis Data Streams and Data Firehose differ.

Everything else (batching, retries, dead letters, statistics) is shared and lives in
`producer.py`; this module is the thin per-service layer: API names, limits, whether a
partition key exists, the request and response shapes, and the preflight describe call.
Each AWS limit is written here once.
"""

from __future__ import annotations

import re
from binascii import a2b_base64, b2a_base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

KIB = 1024
MIB = 1024 * KIB

#: Stream names of both services share this alphabet; only the length differs.
_STREAM_NAME_CHARS = re.compile(r"[A-Za-z0-9_.-]+")


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
class StreamInfo:
    """What the preflight describe call tells us about a destination stream."""

    status: str
    active: bool
    encrypted: bool
    kms_key_id: str | None
    max_record_bytes: int | None


class Service(Protocol):
    """The per-service layer used by the shared producer."""

    name: str
    api_name: str
    describe_api_name: str
    limits: ServiceLimits
    uses_partition_key: bool
    default_append_newline: bool

    def record_size(self, data: bytes, key: str | None) -> int: ...

    def wire(self, data: bytes, key: str | None) -> bytes: ...

    def put(
        self, client: Any, stream: str, wires: Sequence[bytes], records: int | None = None
    ) -> list[RecordError | None]: ...

    def describe(self, client: Any, stream: str) -> StreamInfo: ...


# Request bodies are assembled as bytes: base64 text needs no JSON escaping, and building
# them without an intermediate dict per record halves the sending threads' CPU per call.
# Each record's part of the body (its "wire" form) is made once, where the record is
# encoded (in a mapping process when there are several), not again on every retry.


class KinesisService:
    """Kinesis Data Streams: PutRecords, partition keys, per-stream record size."""

    name = "kinesis"
    api_name = "PutRecords"
    describe_api_name = "DescribeStreamSummary"
    uses_partition_key = True
    default_append_newline = False
    limits = ServiceLimits(
        max_batch_records=500,
        max_batch_bytes=10 * MIB,
        default_batch_bytes=5 * MIB,
        default_record_bytes=1 * MIB,
        max_record_bytes=10 * MIB,
        max_stream_name=128,
        max_partition_key_chars=256,
    )

    @staticmethod
    def record_size(data: bytes, key: str | None) -> int:
        """Kinesis counts the partition key (UTF-8) against record and request limits."""
        return len(data) + (len(key.encode("utf-8")) if key else 0)

    @staticmethod
    def wire(data: bytes, key: str | None) -> bytes:
        """One entry of PutRecords' `Records`, as JSON."""
        return b"".join((b'{"Data":"', b2a_base64(data, newline=False), b'","PartitionKey":', orjson.dumps(key), b"}"))

    @staticmethod
    def put(aws: Any, stream: str, wires: Sequence[bytes], records: int | None = None) -> list[RecordError | None]:
        return _put(
            aws, "kinesis", "Kinesis_20131202.PutRecords", b"StreamName", stream, wires, records, _KINESIS_ANSWER
        )

    @staticmethod
    def describe(client: Any, stream: str) -> StreamInfo:
        summary = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        status = summary.get("StreamStatus", "UNKNOWN")
        max_kib = summary.get("MaxRecordSizeInKiB")
        return StreamInfo(
            status=status,
            # UPDATING streams (resharding, encryption changes) still accept writes.
            active=status in ("ACTIVE", "UPDATING"),
            encrypted=summary.get("EncryptionType", "NONE") == "KMS",
            kms_key_id=summary.get("KeyId"),
            max_record_bytes=int(max_kib) * KIB if max_kib else None,
        )


class FirehoseService:
    """Data Firehose: PutRecordBatch, no partition key, fixed limits."""

    name = "firehose"
    api_name = "PutRecordBatch"
    describe_api_name = "DescribeDeliveryStream"
    uses_partition_key = False
    default_append_newline = True
    limits = ServiceLimits(
        max_batch_records=500,
        max_batch_bytes=4 * MIB,
        default_batch_bytes=4 * MIB,
        default_record_bytes=1000 * KIB,
        max_record_bytes=1000 * KIB,
        max_stream_name=64,
        max_partition_key_chars=0,
    )

    @staticmethod
    def record_size(data: bytes, key: str | None) -> int:
        return len(data)

    @staticmethod
    def wire(data: bytes, key: str | None) -> bytes:
        """One entry of PutRecordBatch's `Records`, as JSON (Firehose has no partition key)."""
        return b'{"Data":"' + b2a_base64(data, newline=False) + b'"}'

    @staticmethod
    def put(aws: Any, stream: str, wires: Sequence[bytes], records: int | None = None) -> list[RecordError | None]:
        return _put(
            aws,
            "firehose",
            "Firehose_20150804.PutRecordBatch",
            b"DeliveryStreamName",
            stream,
            wires,
            records,
            _FIREHOSE_ANSWER,
        )

    @staticmethod
    def describe(client: Any, stream: str) -> StreamInfo:
        description = client.describe_delivery_stream(DeliveryStreamName=stream)["DeliveryStreamDescription"]
        status = description.get("DeliveryStreamStatus", "UNKNOWN")
        encryption = description.get("DeliveryStreamEncryptionConfiguration") or {}
        return StreamInfo(
            status=status,
            active=status == "ACTIVE",
            encrypted=encryption.get("Status") == "ENABLED",
            kms_key_id=encryption.get("KeyARN"),
            max_record_bytes=None,
        )


_DATA_START = len(b'{"Data":"')


def payload_of(wire: bytes) -> bytes:
    """A record's bytes back from its wire form, whichever the service (both begin with
    `{"Data":"<base64>"`). For dead letters: records are kept only in wire form while
    they wait, which halves what they hold in memory."""
    return a2b_base64(wire[_DATA_START : wire.index(b'"', _DATA_START)])


#: Where each service's answer lists per-record outcomes, and where it counts failures.
_KINESIS_ANSWER = ("Records", "FailedRecordCount")
_FIREHOSE_ANSWER = ("RequestResponses", "FailedPutCount")


def _put(
    aws: Any,
    service: str,
    target: str,
    stream_key: bytes,
    stream: str,
    wires: Sequence[bytes],
    records: int | None,
    answer: tuple[str, str],
) -> list[RecordError | None]:
    """One batch call: the same body and answer shape for both services, names aside.

    `wires`: request forms, a run's already joined with commas (batching.Column);
    `records`: how many records they hold, when that is not one per wire."""
    body = b'{"' + stream_key + b'":' + orjson.dumps(stream) + b',"Records":[' + b",".join(wires) + b"]}"
    return _record_errors(aws.json_call(service, target, body), *answer, len(wires) if records is None else records)


def _record_errors(
    response: dict[str, Any], entries_key: str, failed_key: str, expected: int
) -> list[RecordError | None]:
    """Per-record outcome, in request order; a short answer counts the rest as failed.

    A response that lists fewer entries than we sent would otherwise let records we
    cannot account for pass as delivered. The usual answer (nothing failed, every entry
    listed) needs no look at each entry.
    """
    entries = response.get(entries_key) or []
    if response.get(failed_key) == 0 and len(entries) == expected:
        return [None] * expected
    errors: list[RecordError | None] = [
        RecordError(entry["ErrorCode"], entry.get("ErrorMessage", "")) if entry.get("ErrorCode") else None
        for entry in entries[:expected]
    ]
    errors.extend(
        RecordError("InternalFailure", "record missing from the response") for _ in range(expected - len(errors))
    )
    return errors


SERVICES: dict[str, Service] = {
    "kinesis": KinesisService(),
    "firehose": FirehoseService(),
}


def stream_name_problem(service: Service, name: str) -> str | None:
    """Why `name` cannot be a stream of `service`, or None when it can."""
    if not name:
        return "is empty"
    if len(name) > service.limits.max_stream_name:
        return f"is longer than {service.limits.max_stream_name} characters ({service.name} limit)"
    if not _STREAM_NAME_CHARS.fullmatch(name):
        return "may only contain letters, digits, '_', '.' and '-'"
    return None
