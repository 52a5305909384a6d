"""Tests of tests/support/capacity_endpoint.py: a local Kinesis / Firehose endpoint that
refuses writes beyond AWS's documented throughput limits.

Flow-control tests and benchmarks trust it to refuse exactly what AWS would, so each limit
is checked here through plain boto3 clients. Timing uses an injected ManualClock: the
bucket arithmetic is exact and nothing sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import itertools
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.capacity_endpoint import (
    HASH_KEY_SPACE,
    KIB,
    MIB,
    CapacityEndpoint,
    ManualClock,
    TokenBucket,
    throughput_message,
)

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "capacity_endpoint.py"
ONE_SHOT = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
RAW = Config(retries={"total_max_attempts": 1}, parameter_validation=False)
TOP = HASH_KEY_SPACE - 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def endpoint(clock: ManualClock) -> Iterator[CapacityEndpoint]:
    with CapacityEndpoint(clock=clock) as running:
        yield running


def client(service: str, endpoint: CapacityEndpoint | str, config: Config = ONE_SHOT) -> Any:
    url = endpoint if isinstance(endpoint, str) else endpoint.url
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


@pytest.fixture
def kinesis(endpoint: CapacityEndpoint) -> Any:
    return client("kinesis", endpoint)


@pytest.fixture
def firehose(endpoint: CapacityEndpoint) -> Any:
    return client("firehose", endpoint)


def shard_start(index: int, shards: int) -> str:
    """An ExplicitHashKey that lands on shard ``index`` of a fresh stream of ``shards`` shards."""
    return str(index * (HASH_KEY_SPACE // shards))


def small(count: int, hash_key: str | None = None, prefix: str = "k") -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [{"Data": b"x", "PartitionKey": f"{prefix}{i}"} for i in range(count)]
    if hash_key is not None:
        for record in records:
            record["ExplicitHashKey"] = hash_key
    return records


def accepted(answer: dict[str, Any]) -> int:
    return sum(1 for record in answer["Records"] if "SequenceNumber" in record)


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


# -- the bucket arithmetic ---------------------------------------------------------------------


def test_token_bucket_starts_full_refills_continuously_and_caps_at_one_second() -> None:
    bucket = TokenBucket(rate=1_000, now=0.0)
    assert bucket.available(0.0) == 1_000
    assert bucket.fits(1_000, 0.0)
    bucket.take(1_000)
    assert not bucket.fits(1, 0.0)
    assert bucket.available(0.25) == 250
    assert bucket.available(5.0) == 1_000  # capped at one second's worth
    bucket.set_share_taken(0.75, 5.0)
    assert bucket.available(5.0) == 250
    bucket.take(250)
    assert bucket.available(5.5) == 125  # refilled at a quarter of the rate


# -- Kinesis: the per-shard limits ------------------------------------------------------------


def test_a_shard_takes_1000_records_then_refuses_in_the_same_second_while_other_shards_land(
    endpoint: CapacityEndpoint, kinesis: Any
) -> None:
    endpoint.create_stream("s", shards=2)
    first, second = shard_start(0, 2), shard_start(1, 2)
    for _ in range(2):
        answer = kinesis.put_records(StreamName="s", Records=small(500, first))
        assert answer["FailedRecordCount"] == 0

    mixed = small(10, first, "a") + small(10, second, "b")
    answer = kinesis.put_records(StreamName="s", Records=mixed)

    assert answer["FailedRecordCount"] == 10
    refused, landed = answer["Records"][:10], answer["Records"][10:]
    for record in refused:
        assert record == {
            "ErrorCode": "ProvisionedThroughputExceededException",
            "ErrorMessage": "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012.",
        }
    assert all(record["ShardId"] == "shardId-000000000001" and record["SequenceNumber"] for record in landed)
    stats = endpoint.stats("s")
    assert stats["offered"] == 1_020
    assert stats["accepted"] == 1_010
    assert stats["refused"] == {"ProvisionedThroughputExceededException": 10}
    assert stats["calls"] == 3
    assert stats["shards"]["shardId-000000000000"]["accepted"] == 1_000
    assert stats["shards"]["shardId-000000000001"]["accepted"] == 10
    assert len(endpoint.records("s")) == 1_010  # refused records are not stored


def test_the_byte_limit_binds_for_large_records_and_counts_the_partition_key(
    endpoint: CapacityEndpoint, kinesis: Any
) -> None:
    endpoint.create_stream("s", shards=1)
    answer = kinesis.put_records(
        StreamName="s", Records=[{"Data": b"\0" * (200 * KIB), "PartitionKey": "k"} for _ in range(8)]
    )
    # 1 MiB / (200 KiB + 1 byte of key) = 5.1: five fit, three do not, though 992 records/s are left.
    assert [("SequenceNumber" in record) for record in answer["Records"]] == [True] * 5 + [False] * 3
    assert answer["Records"][5]["ErrorCode"] == "ProvisionedThroughputExceededException"

    endpoint.create_stream("exact", shards=1)
    whole = kinesis.put_records(StreamName="exact", Records=[{"Data": b"\0" * (MIB - 3), "PartitionKey": "abc"}])
    assert whole["FailedRecordCount"] == 0  # data + key is exactly 1 MiB: fits a full bucket
    empty = kinesis.put_records(StreamName="exact", Records=[{"Data": b"", "PartitionKey": "z"}])
    assert empty["FailedRecordCount"] == 1  # the key's one byte no longer fits
    assert endpoint.stats("exact")["shards"]["shardId-000000000000"]["bytes"] == MIB


def test_tokens_come_back_with_time(endpoint: CapacityEndpoint, kinesis: Any, clock: ManualClock) -> None:
    endpoint.create_stream("s", shards=1)
    assert accepted(kinesis.put_records(StreamName="s", Records=small(500))) == 500
    assert accepted(kinesis.put_records(StreamName="s", Records=small(500))) == 500
    assert accepted(kinesis.put_records(StreamName="s", Records=small(1))) == 0

    clock.advance(0.25)
    assert accepted(kinesis.put_records(StreamName="s", Records=small(300))) == 250
    clock.advance(0.001)
    assert accepted(kinesis.put_records(StreamName="s", Records=small(5))) == 1

    clock.advance(60)  # idle for a minute: the burst is still one second's worth
    assert accepted(kinesis.put_records(StreamName="s", Records=small(500))) == 500
    assert accepted(kinesis.put_records(StreamName="s", Records=small(500))) == 500
    assert accepted(kinesis.put_records(StreamName="s", Records=small(500))) == 0


def test_put_record_on_a_full_shard_is_a_400(endpoint: CapacityEndpoint, kinesis: Any) -> None:
    endpoint.create_stream("s", shards=1)
    kinesis.put_records(StreamName="s", Records=small(500))
    kinesis.put_records(StreamName="s", Records=small(500))
    with pytest.raises(ClientError) as raised:
        kinesis.put_record(StreamName="s", Data=b"x", PartitionKey="k")
    assert error_code(raised) == "ProvisionedThroughputExceededException"
    assert raised.value.response["Error"]["Message"] == throughput_message("shardId-000000000000", "s")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    stats = endpoint.stats("s")
    assert stats["refused"] == {"ProvisionedThroughputExceededException": 1}
    assert stats["failed_calls"] == {"ProvisionedThroughputExceededException": 1}


def test_concurrent_callers_share_one_shard_exactly(endpoint: CapacityEndpoint) -> None:
    endpoint.create_stream("s", shards=1)
    totals: list[int] = []
    clients = [client("kinesis", endpoint) for _ in range(4)]  # made here: client creation is not thread-safe

    def send(own: Any) -> None:
        totals.append(accepted(own.put_records(StreamName="s", Records=small(500))))

    threads = [threading.Thread(target=send, args=(own,)) for own in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(totals) == 1_000
    assert endpoint.stats("s")["refused"] == {"ProvisionedThroughputExceededException": 1_000}


def test_real_clock_allows_about_one_second_of_records() -> None:
    with CapacityEndpoint() as endpoint:
        endpoint.create_stream("s", shards=1)
        kinesis = client("kinesis", endpoint)
        taken = sum(accepted(kinesis.put_records(StreamName="s", Records=small(500))) for _ in range(3))
    assert 1_000 <= taken < 1_200  # a few refilled tokens between calls, never a second burst


# -- placement and the shard map ---------------------------------------------------------------


def test_explicit_hash_keys_and_partition_keys_place_records_as_aws_does(
    endpoint: CapacityEndpoint, kinesis: Any
) -> None:
    endpoint.create_stream("s", shards=4)
    quarter = HASH_KEY_SPACE // 4
    placed = kinesis.put_records(
        StreamName="s",
        Records=[
            {"Data": b"a", "PartitionKey": "k", "ExplicitHashKey": str(2 * quarter)},
            {"Data": b"b", "PartitionKey": "k", "ExplicitHashKey": str(2 * quarter - 1)},
            {"Data": b"c", "PartitionKey": "k", "ExplicitHashKey": str(TOP)},
            {"Data": b"d", "PartitionKey": "k", "ExplicitHashKey": "0"},
        ],
    )
    assert [record["ShardId"] for record in placed["Records"]] == [
        "shardId-000000000002",
        "shardId-000000000001",
        "shardId-000000000003",
        "shardId-000000000000",
    ]

    keys = [f"user-{i}" for i in range(40)]
    answer = kinesis.put_records(StreamName="s", Records=[{"Data": b"x", "PartitionKey": key} for key in keys])
    for key, record in zip(keys, answer["Records"], strict=True):
        expected = int(hashlib.md5(key.encode()).hexdigest(), 16) // quarter
        assert record["ShardId"] == f"shardId-{expected:012d}"
    stored = {record.sequence_number: record for record in endpoint.records("s")}
    first = stored[placed["Records"][0]["SequenceNumber"]]
    assert (first.shard_id, first.partition_key, first.explicit_hash_key, first.data) == (
        "shardId-000000000002",
        "k",
        str(2 * quarter),
        b"a",
    )


def test_list_shards_ranges_and_pagination(endpoint: CapacityEndpoint, kinesis: Any) -> None:
    endpoint.create_stream("s", shards=5)
    first = kinesis.list_shards(StreamName="s", MaxResults=2)
    assert [shard["ShardId"] for shard in first["Shards"]] == ["shardId-000000000000", "shardId-000000000001"]
    second = kinesis.list_shards(NextToken=first["NextToken"], MaxResults=2)
    third = kinesis.list_shards(NextToken=second["NextToken"], MaxResults=2)
    assert "NextToken" not in third
    shards = first["Shards"] + second["Shards"] + third["Shards"]
    assert [shard["ShardId"] for shard in shards] == [f"shardId-{i:012d}" for i in range(5)]

    step = HASH_KEY_SPACE // 5
    assert [int(shard["HashKeyRange"]["StartingHashKey"]) for shard in shards] == [i * step for i in range(5)]
    assert int(shards[-1]["HashKeyRange"]["EndingHashKey"]) == TOP
    for lower, upper in itertools.pairwise(shards):
        assert int(lower["HashKeyRange"]["EndingHashKey"]) + 1 == int(upper["HashKeyRange"]["StartingHashKey"])
    assert kinesis.list_shards(StreamName="s")["Shards"] == shards  # default MaxResults 1000: one page

    with pytest.raises(ClientError) as raised:
        kinesis.list_shards(StreamName="s", NextToken=first["NextToken"])
    assert error_code(raised) == "InvalidArgumentException"


def test_describe_stream_summary_and_unknown_streams(endpoint: CapacityEndpoint, kinesis: Any) -> None:
    kinesis.create_stream(StreamName="made", ShardCount=3)
    summary = kinesis.describe_stream_summary(StreamName="made")["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["OpenShardCount"] == 3
    assert summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert summary["EncryptionType"] == "NONE"
    assert summary["StreamARN"].endswith(":stream/made")
    for call in (
        lambda: kinesis.describe_stream_summary(StreamName="nope"),
        lambda: kinesis.put_records(StreamName="nope", Records=small(1)),
        lambda: kinesis.list_shards(StreamName="nope"),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert error_code(raised) == "ResourceNotFoundException"


def test_resharding_moves_placement_and_closed_shards_keep_their_records(
    endpoint: CapacityEndpoint, kinesis: Any
) -> None:
    endpoint.create_stream("s", shards=1)
    for prefix in ("a", "b"):  # fills shard 0 to its limit
        assert accepted(kinesis.put_records(StreamName="s", Records=small(500, prefix=prefix))) == 500
    assert accepted(kinesis.put_records(StreamName="s", Records=small(1, prefix="z"))) == 0

    children = endpoint.reshard("s", shards=2)
    assert children == ["shardId-000000000001", "shardId-000000000002"]
    # The new shards take a full second's worth at once, even within the same (fake) second.
    after = kinesis.put_records(StreamName="s", Records=small(500, str(HASH_KEY_SPACE // 2)))
    assert after["FailedRecordCount"] == 0
    assert {record["ShardId"] for record in after["Records"]} == {"shardId-000000000002"}
    low = kinesis.put_records(StreamName="s", Records=small(1, "0"))
    assert low["Records"][0]["ShardId"] == "shardId-000000000001"

    shards = {shard["ShardId"]: shard for shard in kinesis.list_shards(StreamName="s")["Shards"]}
    closed = shards["shardId-000000000000"]
    ending = int(closed["SequenceNumberRange"]["EndingSequenceNumber"])
    assert shards["shardId-000000000001"]["ParentShardId"] == "shardId-000000000000"
    assert shards["shardId-000000000002"]["ParentShardId"] == "shardId-000000000000"
    assert "EndingSequenceNumber" not in shards["shardId-000000000001"]["SequenceNumberRange"]
    assert shards["shardId-000000000002"]["HashKeyRange"] == {
        "StartingHashKey": str(HASH_KEY_SPACE // 2),
        "EndingHashKey": str(TOP),
    }
    parent_records = [record for record in endpoint.records("s") if record.shard_id == "shardId-000000000000"]
    assert len(parent_records) == 1_000
    assert all(int(record.sequence_number) < ending for record in parent_records)
    assert all(int(record["SequenceNumber"]) > ending for record in after["Records"])
    stats = endpoint.stats("s")
    assert (stats["shards"]["shardId-000000000000"]["accepted"], stats["shards"]["shardId-000000000000"]["open"]) == (
        1_000,
        False,
    )
    assert stats["capacity"]["records_per_second"] == 2_000

    iterator = kinesis.get_shard_iterator(
        StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    read = kinesis.get_records(ShardIterator=iterator)
    assert len(read["Records"]) == 1_000
    assert read.get("NextShardIterator") is None
    assert {child["ShardId"] for child in read["ChildShards"]} == set(children)


def test_split_shard_halves_the_parent_at_its_midpoint(endpoint: CapacityEndpoint, kinesis: Any) -> None:
    endpoint.create_stream("s", shards=2)
    low, high = endpoint.split_shard("s", "shardId-000000000000")
    assert (low, high) == ("shardId-000000000002", "shardId-000000000003")
    shards = {shard["ShardId"]: shard for shard in kinesis.list_shards(StreamName="s")["Shards"]}
    half = HASH_KEY_SPACE // 2
    assert shards[low]["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(half // 2 - 1)}
    assert shards[high]["HashKeyRange"] == {"StartingHashKey": str(half // 2), "EndingHashKey": str(half - 1)}
    assert shards[low]["ParentShardId"] == shards[high]["ParentShardId"] == "shardId-000000000000"
    assert kinesis.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"]["OpenShardCount"] == 3
    answer = kinesis.put_records(StreamName="s", Records=small(1, str(half // 2)) + small(1, str(half // 2 - 1)))
    assert [record["ShardId"] for record in answer["Records"]] == [high, low]


# -- another producer on the same stream -------------------------------------------------------


def test_other_producer_leaves_a_quarter_of_the_capacity(
    endpoint: CapacityEndpoint, kinesis: Any, clock: ManualClock
) -> None:
    endpoint.create_stream("s", shards=1)
    endpoint.other_producer("s", share=0.75)
    assert accepted(kinesis.put_records(StreamName="s", Records=small(500))) == 250
    taken = 0
    for _ in range(10):  # one second in steps of 100 ms, offering 1,000 records/s
        clock.advance(0.1)
        taken += accepted(kinesis.put_records(StreamName="s", Records=small(100)))
    assert taken == 250
    assert endpoint.stats("s")["capacity"] == {"records_per_second": 250.0, "bytes_per_second": MIB / 4}

    endpoint.create_stream("bytes", shards=1)
    endpoint.other_producer("bytes", share=0.75)
    big = [{"Data": b"\0" * (200 * KIB), "PartitionKey": "k"} for _ in range(2)]
    assert accepted(kinesis.put_records(StreamName="bytes", Records=big)) == 1  # 256 KiB of bytes left


# -- Firehose ------------------------------------------------------------------------------------


def test_firehose_refuses_records_beyond_its_bytes_per_second(
    endpoint: CapacityEndpoint, firehose: Any, clock: ManualClock
) -> None:
    endpoint.create_delivery_stream("f", bytes_per_second=1 * MIB)
    answer = firehose.put_record_batch(
        DeliveryStreamName="f", Records=[{"Data": b"\0" * (200 * KIB)} for _ in range(8)]
    )
    assert answer["FailedPutCount"] == 3
    assert answer["Encrypted"] is False
    assert all("RecordId" in entry for entry in answer["RequestResponses"][:5])
    for entry in answer["RequestResponses"][5:]:
        assert entry == {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
    stats = endpoint.stats("f")
    assert (stats["offered"], stats["accepted"], stats["refused"]) == (8, 5, {"ServiceUnavailableException": 3})
    assert [record.data for record in endpoint.records("f")] == [b"\0" * (200 * KIB)] * 5

    clock.advance(0.5)
    again = firehose.put_record_batch(DeliveryStreamName="f", Records=[{"Data": b"\0" * (200 * KIB)}] * 3)
    assert again["FailedPutCount"] == 1  # half a second refills 512 KiB: two records
    with pytest.raises(ClientError) as raised:
        firehose.put_record(DeliveryStreamName="f", Record={"Data": b"\0" * (200 * KIB)})
    assert error_code(raised) == "ServiceUnavailableException"


def test_other_producer_on_a_firehose_stream(endpoint: CapacityEndpoint, firehose: Any) -> None:
    endpoint.create_delivery_stream("f", bytes_per_second=1 * MIB)
    endpoint.other_producer("f", share=0.75)
    answer = firehose.put_record_batch(DeliveryStreamName="f", Records=[{"Data": b"\0" * (200 * KIB)}] * 2)
    assert answer["FailedPutCount"] == 1  # 256 KiB/s left
    assert endpoint.stats("f")["capacity"]["bytes_per_second"] == MIB / 4


def test_firehose_records_and_calls_per_second(endpoint: CapacityEndpoint, firehose: Any, clock: ManualClock) -> None:
    endpoint.create_delivery_stream("f", records_per_second=10, calls_per_second=2)
    assert firehose.put_record_batch(DeliveryStreamName="f", Records=[{"Data": b"x"}] * 15)["FailedPutCount"] == 5
    firehose.put_record_batch(DeliveryStreamName="f", Records=[{"Data": b"x"}])  # second call of this second
    with pytest.raises(ClientError) as raised:
        firehose.put_record_batch(DeliveryStreamName="f", Records=[{"Data": b"x"}] * 4)
    assert error_code(raised) == "ServiceUnavailableException"
    assert raised.value.response["Error"]["Message"] == "Slow down."
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    clock.advance(0.5)
    assert firehose.put_record(DeliveryStreamName="f", Record={"Data": b"y"})["RecordId"]
    stats = endpoint.stats("f")
    assert stats["calls"] == 4
    assert stats["failed_calls"] == {"ServiceUnavailableException": 1}
    assert stats["offered"] == 15 + 1 + 4 + 1
    assert stats["accepted"] == 10 + 1  # the single record of call two found the records bucket empty
    assert stats["offered"] == stats["accepted"] + sum(stats["refused"].values())


def test_firehose_defaults_describe_and_validation(endpoint: CapacityEndpoint, firehose: Any) -> None:
    firehose.create_delivery_stream(DeliveryStreamName="made", DeliveryStreamType="DirectPut")
    described = firehose.describe_delivery_stream(DeliveryStreamName="made")["DeliveryStreamDescription"]
    assert (described["DeliveryStreamStatus"], described["DeliveryStreamType"]) == ("ACTIVE", "DirectPut")
    assert described["DeliveryStreamARN"].endswith(":deliverystream/made")
    assert endpoint.stats("made")["capacity"] == {
        "records_per_second": 500_000.0,
        "bytes_per_second": 5.0 * MIB,
        "calls_per_second": 2_000.0,
    }
    for records in (
        [{"Data": b"x"}] * 501,
        [{"Data": b"\0" * (1_000 * KIB + 1)}],
        [{"Data": b"\0" * (1_000 * KIB)}] * 5,  # 5,000 KiB: above 4 MiB a call
    ):
        with pytest.raises(ClientError) as raised:
            firehose.put_record_batch(DeliveryStreamName="made", Records=records)
        assert error_code(raised) == "InvalidArgumentException"
    with pytest.raises(ClientError) as raised:
        client("firehose", endpoint, RAW).put_record_batch(DeliveryStreamName="made", Records=[])
    assert error_code(raised) == "InvalidArgumentException"
    with pytest.raises(ClientError) as raised:
        firehose.put_record_batch(DeliveryStreamName="nope", Records=[{"Data": b"x"}])
    assert error_code(raised) == "ResourceNotFoundException"
    assert endpoint.records("made") == []
    assert endpoint.stats("made")["failed_calls"] == {"InvalidArgumentException": 4}


# -- Kinesis call validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "code"),
    [
        (small(501), "ValidationException"),
        ([{"Data": b"x", "PartitionKey": "k" * 257}], "ValidationException"),
        ([{"Data": b"\0" * (MIB + 1), "PartitionKey": "k"}], "ValidationException"),
        ([{"Data": b"\0" * MIB, "PartitionKey": "k"}], "InvalidArgumentException"),  # data + key above 1 MiB
        ([{"Data": b"\0" * (MIB - 10), "PartitionKey": "k"}] * 6, "InvalidArgumentException"),  # call above 5 MiB
        ([{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": "01"}], "ValidationException"),
        ([{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": str(HASH_KEY_SPACE)}], "InvalidArgumentException"),
        ([{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": "-1"}], "ValidationException"),
        ([*small(499), {"Data": b"x", "PartitionKey": "é" * 257}], "ValidationException"),
    ],
    ids=[
        "501-records",
        "key-257",
        "data-over-1MiB",
        "record-over-1MiB",
        "call-over-5MiB",
        "hash-pattern",
        "hash-2^128",
        "hash-negative",
        "one-bad-of-500",
    ],
)
def test_invalid_calls_are_refused_whole_and_store_nothing(
    endpoint: CapacityEndpoint, kinesis: Any, records: list[dict[str, Any]], code: str
) -> None:
    endpoint.create_stream("s", shards=2)
    with pytest.raises(ClientError) as raised:
        kinesis.put_records(StreamName="s", Records=records)
    assert error_code(raised) == code
    assert raised.value.response["Error"]["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert endpoint.records("s") == []
    stats = endpoint.stats("s")
    assert (stats["offered"], stats["accepted"], stats["failed_calls"]) == (0, 0, {code: 1})


def test_limits_at_their_edges_are_accepted(endpoint: CapacityEndpoint, kinesis: Any) -> None:
    endpoint.create_stream("s", shards=2)
    answer = kinesis.put_records(
        StreamName="s",
        Records=[
            {"Data": b"x", "PartitionKey": "é" * 256},  # 256 characters (512 UTF-8 bytes)
            {"Data": b"", "PartitionKey": "k", "ExplicitHashKey": str(TOP)},
        ],
    )
    assert answer["FailedRecordCount"] == 0
    assert accepted(kinesis.put_records(StreamName="s", Records=small(500))) == 500
    assert endpoint.stats("s")["accepted_bytes"] == (1 + 512) + 1 + sum(1 + len(f"k{i}") for i in range(500))


def test_an_empty_records_list_is_a_validation_error(endpoint: CapacityEndpoint) -> None:
    endpoint.create_stream("s", shards=1)
    with pytest.raises(ClientError) as raised:
        client("kinesis", endpoint, RAW).put_records(StreamName="s", Records=[])
    assert error_code(raised) == "ValidationException"


# -- reading back --------------------------------------------------------------------------------


def test_get_records_reads_back_everything_in_order(endpoint: CapacityEndpoint, kinesis: Any) -> None:
    endpoint.create_stream("s", shards=2)
    sent: list[tuple[str, bytes, str]] = []
    for batch in range(3):
        records = [{"Data": f"{batch}-{i}".encode(), "PartitionKey": f"p{i % 7}"} for i in range(50)]
        answer = kinesis.put_records(StreamName="s", Records=records)
        sent += [
            (result["ShardId"], record["Data"], record["PartitionKey"])
            for record, result in zip(records, answer["Records"], strict=True)
        ]
    single = kinesis.put_record(StreamName="s", Data=b"single", PartitionKey="p1")
    sent.append((single["ShardId"], b"single", "p1"))

    read_back: list[tuple[str, bytes, str]] = []
    for shard in kinesis.list_shards(StreamName="s")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="s", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        numbers: list[int] = []
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=40)
            assert page["MillisBehindLatest"] == 0
            numbers += [int(record["SequenceNumber"]) for record in page["Records"]]
            read_back += [(shard["ShardId"], record["Data"], record["PartitionKey"]) for record in page["Records"]]
            assert all(record["ApproximateArrivalTimestamp"] for record in page["Records"])
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
        assert numbers == sorted(numbers)

    assert sorted(read_back) == sorted(sent)
    for shard_id in ("shardId-000000000000", "shardId-000000000001"):
        assert [item for item in read_back if item[0] == shard_id] == [item for item in sent if item[0] == shard_id]
    assert [(r.shard_id, r.data, r.partition_key) for r in endpoint.records("s")] == read_back


# -- the command line ------------------------------------------------------------------------------


def test_command_line_prints_its_port_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--port",
            "0",
            "--kinesis",
            "s:2",
            "--firehose",
            "f:1048576",
            "--other-producer",
            "s:0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/__health")
        health = connection.getresponse()
        health.read()
        assert health.status == 200

        kinesis = client("kinesis", f"http://127.0.0.1:{port}")
        first = accepted(kinesis.put_records(StreamName="s", Records=small(500, "0")))
        second = accepted(kinesis.put_records(StreamName="s", Records=small(500, "0")))
        assert first == 500  # half of the shard's 1,000 records: the other producer takes the rest
        assert second < 100  # only what refilled (at 500 records/s) between two calls: a real clock runs

        connection.request("GET", "/__stats?stream=s")
        response = connection.getresponse()
        stats = json.loads(response.read())
        assert response.status == 200
        assert stats["accepted"] == first + second
        assert stats["other_producer_share"] == 0.5
        connection.request("GET", "/__stats?stream=f")
        assert json.loads(connection.getresponse().read())["capacity"]["bytes_per_second"] == MIB
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=10)
    assert returncode == 0, process.stderr.read() if process.stderr else ""


def test_data_travels_base64_encoded(endpoint: CapacityEndpoint) -> None:
    """What botocore sends, checked without botocore: Data is base64 in the JSON body."""
    endpoint.create_stream("s", shards=1)
    body = json.dumps(
        {"StreamName": "s", "Records": [{"Data": base64.b64encode(b"\x00\xff").decode(), "PartitionKey": "k"}]}
    )
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    for _ in range(2):  # twice on one keep-alive connection
        connection.request(
            "POST",
            "/",
            body=body,
            headers={"X-Amz-Target": "Kinesis_20131202.PutRecords", "Content-Type": "application/x-amz-json-1.1"},
        )
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/x-amz-json-1.1"
        assert json.loads(response.read())["FailedRecordCount"] == 0
    connection.request("POST", "/", body="{}", headers={"X-Amz-Target": "Kinesis_20131202.Nope"})
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["__type"]) == (400, "UnknownOperationException")
    connection.close()
    assert [record.data for record in endpoint.records("s")] == [b"\x00\xff", b"\x00\xff"]
