"""Reading KPL aggregates back the way consumers do: with AWS's own deaggregation module.

`aws_kinesis_agg.deaggregator.deaggregate_records` is what Lambda consumers run; it takes
records in Lambda's event format and hands back one record per user record (an ordinary
record comes back as it was). It does not raise on a damaged aggregate: it hands it back
whole, so callers compare counts and contents with what they sent.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aws_kinesis_agg.deaggregator import deaggregate_records


@dataclass(frozen=True)
class UserRecord:
    """One event as a consumer sees it after deaggregation, with the shard it was read from."""

    shard_id: str
    partition_key: str
    data: bytes

    @property
    def hash_key(self) -> int:
        """Where Kinesis (and the KCL's check) places this user record: MD5 of its key."""
        return int.from_bytes(hashlib.md5(self.partition_key.encode("utf-8")).digest(), "big")


def deaggregate(stored: Iterable[tuple[str, str, bytes]]) -> list[UserRecord]:
    """(shard id, partition key, data) of stored Kinesis records -> their user records, in order."""
    out: list[UserRecord] = []
    for number, (shard_id, key, data) in enumerate(stored):
        lambda_record = {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": key,
                "sequenceNumber": str(number),
                "data": base64.b64encode(data).decode("ascii"),
                "approximateArrivalTimestamp": 1.0,
            },
            "eventSource": "aws:kinesis",
        }
        for user in deaggregate_records([lambda_record]):
            out.append(UserRecord(shard_id, user["kinesis"]["partitionKey"], base64.b64decode(user["kinesis"]["data"])))
    return out


def shard_ranges(client: Any, stream: str) -> dict[str, tuple[int, int]]:
    """Every shard's (starting, ending) hash key, closed shards included (ListShards)."""
    ranges: dict[str, tuple[int, int]] = {}
    answer = client.list_shards(StreamName=stream)
    while True:
        for shard in answer["Shards"]:
            hash_range = shard["HashKeyRange"]
            ranges[shard["ShardId"]] = (int(hash_range["StartingHashKey"]), int(hash_range["EndingHashKey"]))
        token = answer.get("NextToken")
        if not token:
            return ranges
        answer = client.list_shards(NextToken=token)


def misplaced(users: Iterable[UserRecord], ranges: dict[str, tuple[int, int]]) -> list[UserRecord]:
    """User records read from a shard whose range does not hold their hash key: those the KCL drops."""
    return [u for u in users if not ranges[u.shard_id][0] <= u.hash_key <= ranges[u.shard_id][1]]
