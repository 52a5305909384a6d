"""Kinesis Data Streams: PutRecords, partition keys, a record limit per stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from target_kinesis.aws import kpl
from target_kinesis.aws.batch_api import KIB, MIB, BatchApi, JsonCaller, PutAnswer, ServiceLimits, StreamInfo, data_text
from target_kinesis.aws.errors import AwsCallFailed, error_code

#: PutRecords: 500 records a call; 10 MiB a call in the current API, 5 MiB what every stream
#: takes; a record 1 MiB, up to 10 MiB on streams raised with UpdateMaxRecordSize (data plus
#: partition key); a partition key 1 to 256 Unicode characters.
LIMITS = ServiceLimits(
    max_batch_records=500,
    max_batch_bytes=10 * MIB,
    default_batch_bytes=5 * MIB,
    default_record_bytes=1 * MIB,
    max_record_bytes=10 * MIB,
    max_stream_name=128,
    max_partition_key_chars=256,
)

#: A shard takes 1,000 records and 1 MiB (data plus partition keys) a second, on provisioned and
#: on-demand streams alike (Kinesis Data Streams quotas).
SHARD_RECORDS_PER_SECOND = 1000
SHARD_BYTES_PER_SECOND = 1 * MIB
#: Kinesis bills PUT payload units: 25 KB of a record, rounded up (Kinesis Data Streams pricing).
PUT_PAYLOAD_UNIT_BYTES = 25 * KIB
#: Per-record refusals that mean "this shard is at its capacity now".
CAPACITY_CODES = frozenset({"ProvisionedThroughputExceededException"})

_API = BatchApi("kinesis", "Kinesis_20131202.PutRecords", b"StreamName", "Records", "FailedRecordCount")


class KinesisService:
    name = "kinesis"
    api_name = "PutRecords"
    describe_api_name = "DescribeStreamSummary"
    uses_partition_key = True
    default_append_newline = False
    limits = LIMITS
    capacity_codes = CAPACITY_CODES
    map_api_names: tuple[str, ...] = ("ListShards",)
    aggregation = "kpl"
    aggregation_max_bytes = kpl.DEFAULT_MAX_BYTES
    aggregation_max_records: int | None = None
    billing_unit_bytes = PUT_PAYLOAD_UNIT_BYTES
    raise_record_limit = (
        "a stream's record limit can be raised to 10 MiB (aws kinesis update-max-record-size --stream-arn ARN "
        "--max-record-size-in-ki-b 10240); the target reads it at start-up and follows it, unless max_record_bytes "
        "is set lower"
    )

    @staticmethod
    def record_size(data: bytes, key: str | None) -> int:
        """Kinesis counts the partition key (UTF-8) against record and request limits."""
        if not key:
            return len(data)
        return len(data) + (len(key) if key.isascii() else len(key.encode("utf-8")))

    @staticmethod
    def wire(data: bytes, key: str | None, explicit_hash_key: str | None = None) -> bytes:
        """One entry of PutRecords' `Records`, as JSON. `explicit_hash_key` (a decimal) places
        the record instead of its partition key's MD5 (a KPL aggregate, on its shard)."""
        end = b"}" if explicit_hash_key is None else b',"ExplicitHashKey":"' + explicit_hash_key.encode("ascii") + b'"}'
        return b"".join((b'{"Data":"', data_text(data), b'","PartitionKey":', orjson.dumps(key), end))

    @staticmethod
    def put(aws: JsonCaller, stream: str, wires: Sequence[bytes], records: int | None = None) -> PutAnswer:
        return _API.put(aws, stream, wires, records)

    @staticmethod
    def describe(client: Any, stream: str) -> StreamInfo:
        summary = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        status = summary.get("StreamStatus", "UNKNOWN")
        max_kib = summary.get("MaxRecordSizeInKiB")
        encrypted = summary.get("EncryptionType", "NONE") == "KMS"
        return StreamInfo(
            status=status,
            # UPDATING streams (resharding, encryption changes) still accept writes.
            active=status in ("ACTIVE", "UPDATING"),
            encrypted=encrypted,
            kms_key=summary.get("KeyId") if encrypted else None,
            arn=summary.get("StreamARN"),
            max_record_bytes=int(max_kib) * KIB if max_kib else None,
        )


def list_shards(client: Any, stream: str) -> list[tuple[str, int]]:
    """(shard id, starting hash key) of every open shard of a stream (ListShards, every page).

    Closed shards (those with an ending sequence number) take no more writes; a record
    goes to the open shard whose range holds its hash key. AwsCallFailed when AWS refuses.
    """
    shards: list[tuple[str, int]] = []
    try:
        answer = client.list_shards(StreamName=stream)
        while True:
            for shard in answer.get("Shards", []):
                if "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {}):
                    shards.append((shard["ShardId"], int(shard["HashKeyRange"]["StartingHashKey"])))
            token = answer.get("NextToken")
            if not token:
                return shards
            answer = client.list_shards(NextToken=token)  # with a token, AWS refuses the stream name
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallFailed(error_code(exc)) from None
