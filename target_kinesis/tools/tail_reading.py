"""How `target-kinesis-tail` reads what landed: every shard of a Kinesis stream, or the S3
objects a Firehose delivery stream wrote.

AWS calls go through `Caller`, which retries throttles and transient faults and turns any
other failure into one line naming the permission needed. Kinesis: shards read round robin,
a child shard only once its parents are read to their end (a key's events keep their order
across a reshard), an expired iterator re-opened after the last record printed. Firehose:
every object under the prefix, in key order, each once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from target_kinesis.aws.errors import AwsError, error_code, explain
from target_kinesis.delivery.retry import Action, backoff_delays, classify
from target_kinesis.tools.cli import ToolError
from target_kinesis.tools.tail_decoding import keyed_events, maybe_decompress, split_object
from target_kinesis.tools.tail_printing import Output

POLL_SECONDS = 1.0
#: GetRecords allows 5 calls a second per shard.
SHARD_CALL_INTERVAL = 0.2
#: In --follow, shards are listed again this often (and at once when one closes).
RELIST_SECONDS = 30.0
GET_RECORDS_LIMIT = 10_000
TRANSIENT_RETRIES = 5
#: A shard whose fresh iterator expires this many times in a row is an error, not a loop.
MAX_EXPIRIES = 5
KINESIS_READ_ACTIONS = "kinesis:ListShards, kinesis:GetShardIterator and kinesis:GetRecords"
S3_READ_ACTIONS = "s3:ListBucket and s3:GetObject"

Sleep = Callable[[float], None]
Clock = Callable[[], float]


# -- AWS calls --------------------------------------------------------------------------


@dataclass
class Caller:
    """Calls AWS, retrying throttles and transient faults; anything else is a ToolError."""

    refresh: Callable[[], bool] = lambda: False
    sleep: Sleep = time.sleep
    retries: int = TRANSIENT_RETRIES

    def __call__(
        self,
        fn: Callable[..., Any],
        explain: Callable[[AwsError], str],
        *,
        passthrough: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> Any:
        delays = backoff_delays(0.2, 2.0)
        attempt = 0
        while True:
            try:
                return fn(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                error = error_code(exc)
                if error.code in passthrough:
                    raise
                action = classify(error.code, error.status).action
                attempt += 1
                if attempt <= self.retries and action is Action.RETRY:
                    self.sleep(next(delays))
                    continue
                if attempt <= self.retries and action is Action.REFRESH and self.refresh():
                    continue
                raise ToolError(explain(error)) from None


def kinesis_explainer(stream: str, region: str) -> Callable[[AwsError], str]:
    def explain_read(error: AwsError) -> str:
        return explain(
            error,
            where=f"kinesis stream '{stream}' in region {region}",
            verb="read",
            needed=f"{KINESIS_READ_ACTIONS} are needed",
            decrypt="kms:Decrypt on the stream's key is needed",
        )

    return explain_read


def s3_explainer(bucket: str, what: str = "") -> Callable[[AwsError], str]:
    def explain_read(error: AwsError) -> str:
        return explain(
            error,
            where=what or f"bucket '{bucket}'",
            verb="read",
            needed=f"{S3_READ_ACTIONS} are needed",
            check=None,
        )

    return explain_read


# -- Kinesis ----------------------------------------------------------------------------


@dataclass
class ShardCursor:
    """Where the tail is in one shard."""

    shard_id: str
    parent_ids: tuple[str, ...] = ()
    iterator: str | None = None
    start_type: str = "TRIM_HORIZON"
    last_sequence: str | None = None
    next_call: float = 0.0
    #: Caught up (open shard, without --follow) or read to its end (closed shard).
    done: bool = False
    closed: bool = False
    expiries: int = 0


@dataclass
class KinesisTail:
    """Reads every shard of a stream, round robin, and emits each record once."""

    client: Any
    stream: str
    caller: Caller
    explain: Callable[[AwsError], str]
    start: str = "TRIM_HORIZON"
    follow: bool = False
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    shards: dict[str, ShardCursor] = field(default_factory=dict)

    def run(self, out: Output) -> None:
        self.discover(initial=True)
        last_listing = self.clock()
        while not out.full:
            received, closed = self.poll_round(out)
            out.flush()
            if out.full:
                return
            if not self.follow:
                # Caught up, or nothing left that can make progress.
                if not any(self.ready(cursor) for cursor in self.shards.values()):
                    return
                continue
            if closed or self.clock() - last_listing >= RELIST_SECONDS:
                self.discover(initial=False)
                last_listing = self.clock()
            if not received:
                self.sleep(POLL_SECONDS)

    def list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        params: dict[str, Any] = {"StreamName": self.stream}
        while True:
            page = self.caller(self.client.list_shards, self.explain, **params)
            shards.extend(page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return shards
            params = {"NextToken": token}  # with a token, ListShards takes no stream name

    def discover(self, *, initial: bool) -> None:
        """Add shards not seen before; new shards found later are read from their start."""
        for shard in self.list_shards():
            shard_id = shard["ShardId"]
            if shard_id in self.shards:
                continue
            parents = tuple(p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p)
            start = self.start if initial else "TRIM_HORIZON"
            self.shards[shard_id] = ShardCursor(shard_id, parents, start_type=start)

    def ready(self, cursor: ShardCursor) -> bool:
        """A shard is read once its parents (when we know them) are read to their end."""
        if cursor.done:
            return False
        parents = [self.shards[p] for p in cursor.parent_ids if p in self.shards]
        return all(parent.closed for parent in parents)

    def poll_round(self, out: Output) -> tuple[bool, bool]:
        """One GetRecords per ready shard: (any records, any shard closed)."""
        received = closed = False
        for cursor in list(self.shards.values()):
            if out.full:
                break
            if not self.ready(cursor):
                continue
            wait = cursor.next_call - self.clock()
            if wait > 0:
                self.sleep(wait)
            count = self.poll_shard(cursor, out)
            received = received or count > 0
            closed = closed or cursor.closed
        return received, closed

    def open(self, cursor: ShardCursor) -> None:
        params: dict[str, Any] = {"StreamName": self.stream, "ShardId": cursor.shard_id}
        if cursor.last_sequence is not None:
            params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=cursor.last_sequence)
        else:
            params["ShardIteratorType"] = cursor.start_type
        cursor.iterator = self.caller(self.client.get_shard_iterator, self.explain, **params)["ShardIterator"]

    def poll_shard(self, cursor: ShardCursor, out: Output) -> int:
        """Read one page of a shard; returns the number of records whose events were emitted."""
        if cursor.iterator is None:
            self.open(cursor)
        try:
            page = self.caller(
                self.client.get_records,
                self.explain,
                passthrough=frozenset({"ExpiredIteratorException"}),
                ShardIterator=cursor.iterator,
                Limit=GET_RECORDS_LIMIT,
            )
        except ClientError:  # the iterator expired: continue after the last record printed
            cursor.iterator = None
            cursor.expiries += 1
            if cursor.expiries > MAX_EXPIRIES:
                raise ToolError(
                    self.explain(AwsError("ExpiredIteratorException", "shard iterators keep expiring"))
                ) from None
            return 0
        cursor.expiries = 0
        cursor.next_call = self.clock() + SHARD_CALL_INTERVAL
        records = page.get("Records", [])
        emitted = 0
        for record in records:
            if out.full:
                break
            for key, event in keyed_events(record["Data"], record.get("PartitionKey")):
                out.emit(event, cursor.shard_id, key)
            cursor.last_sequence = record["SequenceNumber"]
            emitted += 1
        cursor.iterator = page.get("NextShardIterator")
        if cursor.iterator is None:
            cursor.closed = cursor.done = True
        elif not self.follow and not records and page.get("MillisBehindLatest", 0) == 0:
            cursor.done = True
        return emitted


# -- Firehose (S3) ----------------------------------------------------------------------


@dataclass
class FirehoseTail:
    """Prints the records of every object under a prefix, in key order, each object once."""

    s3: Any
    bucket: str
    prefix: str
    caller: Caller
    start: str = "TRIM_HORIZON"
    follow: bool = False
    sleep: Sleep = time.sleep
    seen: set[str] = field(default_factory=set)

    def run(self, out: Output) -> None:
        keys = self.list_keys()
        if self.start == "LATEST":
            self.seen.update(keys)
            keys = []
        while True:
            for key in keys:
                self.print_object(key, out)
                self.seen.add(key)
                out.flush()
                if out.full:
                    return
            if not self.follow:
                return
            self.sleep(POLL_SECONDS)
            keys = [key for key in self.list_keys() if key not in self.seen]

    def list_keys(self) -> list[str]:
        keys: list[str] = []
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        explain = s3_explainer(self.bucket)
        while True:
            page = self.caller(self.s3.list_objects_v2, explain, **params)
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(keys)
            params["ContinuationToken"] = token

    def print_object(self, key: str, out: Output) -> None:
        explain = s3_explainer(self.bucket, f"object '{key}' of bucket '{self.bucket}'")
        try:
            answer = self.caller(
                self.s3.get_object, explain, passthrough=frozenset({"NoSuchKey"}), Bucket=self.bucket, Key=key
            )
        except ClientError:  # deleted since it was listed (lifecycle rule, operator)
            return
        for record in split_object(maybe_decompress(answer["Body"].read())):
            out.emit(record)
            if out.full:
                return


def firehose_bucket(client: Any, stream: str, region: str, caller: Caller) -> tuple[str, str]:
    """(bucket, static prefix) of a delivery stream's S3 destination."""
    where = f"firehose stream '{stream}' in region {region}"

    def explain_describe(error: AwsError) -> str:
        return explain(
            error,
            where=where,
            verb="describe",
            needed="firehose:DescribeDeliveryStream is needed",
            alternative="give --bucket",
        )

    answer = caller(client.describe_delivery_stream, explain_describe, DeliveryStreamName=stream)
    for destination in answer["DeliveryStreamDescription"].get("Destinations", []):
        s3 = destination.get("ExtendedS3DestinationDescription") or destination.get("S3DestinationDescription")
        if s3 and s3.get("BucketARN"):
            return bucket_from_arn(s3["BucketARN"]), static_prefix(s3.get("Prefix") or "")
    raise ToolError(f"{where} does not deliver to S3: give --bucket")


def bucket_from_arn(arn: str) -> str:
    """`arn:aws:s3:::bucket` -> `bucket`."""
    return arn.rsplit(":", 1)[-1]


def static_prefix(prefix: str) -> str:
    """The literal start of a Firehose S3 prefix, before any `!{...}` expression."""
    return prefix.split("!{", 1)[0]


__all__ = [
    "Caller",
    "FirehoseTail",
    "KinesisTail",
    "ShardCursor",
    "bucket_from_arn",
    "firehose_bucket",
    "kinesis_explainer",
    "s3_explainer",
    "static_prefix",
]
