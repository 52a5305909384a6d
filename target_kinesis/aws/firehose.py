"""Data Firehose: PutRecordBatch, no partition key, fixed limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from target_kinesis.aws.batch_api import KIB, MIB, BatchApi, JsonCaller, PutAnswer, ServiceLimits, StreamInfo, data_text

#: PutRecordBatch: 500 records and 4 MiB a call, 1,000 KiB a record; none of it can be raised.
LIMITS = ServiceLimits(
    max_batch_records=500,
    max_batch_bytes=4 * MIB,
    default_batch_bytes=4 * MIB,
    default_record_bytes=1000 * KIB,
    max_record_bytes=1000 * KIB,
    max_stream_name=64,
    max_partition_key_chars=0,
)

#: Firehose bills ingestion per record rounded up to the next 5 KB (Direct PUT pricing).
INGESTION_UNIT_BYTES = 5 * KIB
#: `aggregation: lines`: as much as a record holds, and the 500 events Firehose's multi-record
#: deaggregation takes.
LINES_MAX_BYTES = 1000 * KIB
LINES_MAX_RECORDS = 500

#: Firehose answers a record (or a whole call) beyond its stream's quota with this, "Slow down.".
CAPACITY_CODES = frozenset({"ServiceUnavailableException"})

_API = BatchApi(
    "firehose", "Firehose_20150804.PutRecordBatch", b"DeliveryStreamName", "RequestResponses", "FailedPutCount"
)


class FirehoseService:
    name = "firehose"
    api_name = "PutRecordBatch"
    describe_api_name = "DescribeDeliveryStream"
    uses_partition_key = False
    default_append_newline = True
    limits = LIMITS
    capacity_codes = CAPACITY_CODES
    map_api_names: tuple[str, ...] = ()
    aggregation = "lines"
    aggregation_max_bytes = LINES_MAX_BYTES
    aggregation_max_records: int | None = LINES_MAX_RECORDS
    billing_unit_bytes = INGESTION_UNIT_BYTES
    raise_record_limit = ""  # 1,000 KiB a record, for every delivery stream

    @staticmethod
    def record_size(data: bytes, key: str | None) -> int:
        return len(data)

    @staticmethod
    def wire(data: bytes, key: str | None, explicit_hash_key: str | None = None) -> bytes:
        """One entry of PutRecordBatch's `Records`, as JSON (Firehose has no partition key)."""
        return b'{"Data":"' + data_text(data) + b'"}'

    @staticmethod
    def put(aws: JsonCaller, stream: str, wires: Sequence[bytes], records: int | None = None) -> PutAnswer:
        return _API.put(aws, stream, wires, records)

    @staticmethod
    def describe(client: Any, stream: str) -> StreamInfo:
        description = client.describe_delivery_stream(DeliveryStreamName=stream)["DeliveryStreamDescription"]
        status = description.get("DeliveryStreamStatus", "UNKNOWN")
        encryption = description.get("DeliveryStreamEncryptionConfiguration") or {}
        # ENABLING counts: the stream is on its way to encrypting what it receives.
        encrypted = encryption.get("Status") in ("ENABLED", "ENABLING")
        return StreamInfo(
            status=status,
            active=status == "ACTIVE",
            encrypted=encrypted,
            kms_key=encryption.get("KeyARN") if encrypted else None,
            arn=description.get("DeliveryStreamARN"),
            max_record_bytes=None,
        )
