"""Create destinations and read back what landed in them, for assertions.

Tests judge the target by what the destination holds, never by what the target says it
sent: a record the target thinks it delivered but the server did not store is exactly the
bug the end-to-end tests exist to catch. These helpers work against moto's server and
(Kinesis only) kinesalite, through any boto3 client (see ``servers.boto_client``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

ACTIVE_TIMEOUT_S = 30.0
_POLL_S = 0.05


def unique_name(prefix: str = "test") -> str:
    """A fresh stream/bucket name: moto keeps state for its whole life and slows as a stream
    fills, so each test writes to its own destination. Valid for Kinesis, Firehose and S3."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class KinesisRecord:
    """One stored Kinesis record, as GetRecords returned it."""

    data: bytes
    partition_key: str
    shard_id: str
    sequence_number: str


def create_kinesis_stream(client: Any, name: str, shards: int = 1) -> None:
    """Create a provisioned stream and wait until it is ACTIVE.

    botocore's ``stream_exists`` waiter polls every 10 s; this polls DescribeStreamSummary
    every 50 ms (moto makes streams ACTIVE at once, our kinesalite after 0 ms).
    """
    client.create_stream(StreamName=name, ShardCount=shards)
    deadline = time.monotonic() + ACTIVE_TIMEOUT_S
    while True:
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        status = summary["StreamStatus"]
        if status == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {name} still {status} after {ACTIVE_TIMEOUT_S:.0f} s")
        time.sleep(_POLL_S)


def list_shard_ids(client: Any, stream: str) -> list[str]:
    """Every shard of ``stream`` (open and closed), following ListShards pagination."""
    shard_ids: list[str] = []
    response = client.list_shards(StreamName=stream)
    while True:
        shard_ids.extend(shard["ShardId"] for shard in response["Shards"])
        token = response.get("NextToken")
        if not token:
            return shard_ids
        # With NextToken, ListShards must not be given the stream name.
        response = client.list_shards(NextToken=token)


def read_shard(client: Any, stream: str, shard_id: str, max_pages: int = 100_000) -> list[KinesisRecord]:
    """All records of one shard from TRIM_HORIZON until caught up.

    Caught up means an empty page with MillisBehindLatest == 0 (an open shard) or no
    NextShardIterator (a closed shard read to its end). An empty page alone is not enough:
    AWS may return empty pages while behind.
    """
    iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records: list[KinesisRecord] = []
    for _ in range(max_pages):
        page = client.get_records(ShardIterator=iterator, Limit=10_000)
        for record in page["Records"]:
            records.append(
                KinesisRecord(
                    data=record["Data"],
                    partition_key=record["PartitionKey"],
                    shard_id=shard_id,
                    sequence_number=record["SequenceNumber"],
                )
            )
        iterator = page.get("NextShardIterator")
        if iterator is None:
            break
        if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
            break
    else:
        raise RuntimeError(f"shard {shard_id} of {stream} not caught up after {max_pages} pages")
    return records


def read_kinesis(client: Any, stream: str) -> list[KinesisRecord]:
    """Every record in every shard of ``stream``, ordered by shard id then sequence number.

    Sequence numbers are compared as integers (moto's are small, kinesalite's and AWS's are
    56-digit decimals), so the order within a shard is the order the server stored them.
    """
    records: list[KinesisRecord] = []
    for shard_id in list_shard_ids(client, stream):
        records.extend(read_shard(client, stream, shard_id))
    records.sort(key=lambda r: (r.shard_id, int(r.sequence_number)))
    return records


def create_firehose_to_s3(
    firehose_client: Any,
    s3_client: Any,
    name: str,
    bucket: str,
    prefix: str = "",
) -> None:
    """Create ``bucket`` and a DirectPut delivery stream ``name`` that writes into it.

    moto writes each PutRecordBatch (or PutRecord) at once as one S3 object holding the
    records' bytes concatenated as sent: no buffering, no separators added. The role ARN is
    a dummy; moto does not check it.
    """
    s3_client.create_bucket(Bucket=bucket)
    firehose_client.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-test",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": prefix,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
            "CompressionFormat": "UNCOMPRESSED",
        },
    )
    deadline = time.monotonic() + ACTIVE_TIMEOUT_S
    while True:
        description = firehose_client.describe_delivery_stream(DeliveryStreamName=name)
        status = description["DeliveryStreamDescription"]["DeliveryStreamStatus"]
        if status == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"delivery stream {name} still {status}")
        time.sleep(_POLL_S)


def list_keys(s3_client: Any, bucket: str, prefix: str = "") -> list[str]:
    """Every object key in ``bucket`` under ``prefix``, in key (UTF-8 binary) order."""
    keys: list[str] = []
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def read_firehose_s3(s3_client: Any, bucket: str, prefix: str = "") -> list[bytes]:
    """Every object body in ``bucket``, in key order.

    Caution: moto names objects
    ``<prefix>YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid4>``, so objects
    written within the same second sort by a random UUID: key order is NOT write order.
    Compare contents as multisets (or sort), not sequences, across objects.
    """
    return [s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in list_keys(s3_client, bucket, prefix)]


def split_lines(objects: list[bytes]) -> list[bytes]:
    """Newline-delimited records of all ``objects``, without the newlines.

    Each record must end with ``\\n`` (the target's Firehose framing); a last line without
    one is still returned, so a missing terminator shows up as a merged record, not a loss.
    Only the empty string after a body's final newline is dropped; empty records stay.
    """
    lines: list[bytes] = []
    for body in objects:
        parts = body.split(b"\n")
        if parts and parts[-1] == b"":
            parts.pop()
        lines.extend(parts)
    return lines


__all__ = [
    "KinesisRecord",
    "create_firehose_to_s3",
    "create_kinesis_stream",
    "list_keys",
    "list_shard_ids",
    "read_firehose_s3",
    "read_kinesis",
    "read_shard",
    "split_lines",
    "unique_name",
]
