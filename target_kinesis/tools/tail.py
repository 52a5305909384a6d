"""`target-kinesis-tail`: print the events that landed in a Kinesis stream or a Firehose bucket.

An operator tool to check what the target wrote, with the target's own credential and
endpoint settings (static keys, profile, role_arn + external_id, endpoint_url, region):

    target-kinesis-tail [--config config.json] --stream NAME [--service kinesis|firehose]
                        [--bucket B] [--prefix P] [--from trim_horizon|latest] [--follow]
                        [--limit N] [--show-keys] [--endpoint-url URL] [--region R]

Kinesis: every shard is read (ListShards, GetShardIterator, GetRecords), from TRIM_HORIZON
or LATEST. A child shard waits until its parent shard has been read to its end, so a key's
events keep their order across a reshard. Without ``--follow`` the tail stops once every
shard is caught up (an empty page with MillisBehindLatest 0, or a closed shard read to its
end); with ``--follow`` it polls about every second, picks up new shards, and re-opens a
shard whose iterator expired after the last sequence number it printed.

Firehose: the objects the delivery stream wrote to S3 (``--bucket``; when not given it is
read from DescribeDeliveryStream), every object under ``--prefix`` in key order, gzip
undone, split into lines (and back-to-back JSON objects written without a newline are
split too). With ``--from latest`` the objects already there are skipped; ``--follow``
polls for new keys.

A record that packs several events (the target's ``aggregation``) is printed one event a
line, in order: a KPL aggregate (``kpl``) as its user records, and a record of JSON lines
(``lines``) as its lines. In an S3 object those lines are lines of the object already.

stdout carries one JSON line per event and nothing else: the event's data as-is when it is
JSON (without its trailing newline), otherwise the data as a JSON string. With ``--show-keys``
(Kinesis only) each line is instead an object naming where the event was read:

    {"shard":"shardId-000000000001","partition_key":"u1","event":<the line printed without it>}

``partition_key`` is the event's own: a KPL aggregate's user record has its own key (the
aggregate's key only chose the shard), and the lines of a JSON-lines record share the record's.
Firehose's S3 objects keep neither keys nor shards, so ``--show-keys`` with Firehose is a usage
error. Errors are one line on stderr and exit 1 (2 for bad arguments); Ctrl-C exits 0.

Permissions needed: kinesis:ListShards, kinesis:GetShardIterator, kinesis:GetRecords (and
kms:Decrypt on an encrypted stream's key); for Firehose s3:ListBucket and s3:GetObject (and
firehose:DescribeDeliveryStream when --bucket is not given).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from target_kinesis.aws import kpl
from target_kinesis.aws.clients import AwsClients
from target_kinesis.aws.errors import AwsError, error_code, explain
from target_kinesis.aws.services import SERVICES, stream_name_problem
from target_kinesis.delivery.retry import Action, backoff_delays, classify
from target_kinesis.errors import TargetKinesisError
from target_kinesis.tools.cli import ToolError, ToolParser, UsageError, read_config, settings_of, usage_line

PROG = "target-kinesis-tail"
SHOW_KEYS_FIREHOSE = "--show-keys: Firehose (S3) keeps no partition keys or shards; it works with --service kinesis"
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


# -- pure parts -------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` is one strict JSON document (no NaN/Infinity)."""
    try:
        return True, json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None


def format_keyed(data: bytes, shard: str, partition_key: str | None) -> str:
    """The ``--show-keys`` line of one event: ``{"shard":..,"partition_key":..,"event":..}``.

    The event is format_record's line, unchanged, so it reads the same with and without keys.
    """
    where = json.dumps({"shard": shard, "partition_key": partition_key}, ensure_ascii=False, separators=(",", ":"))
    return f'{where[:-1]},"event":{format_record(data)}}}'


def format_record(data: bytes) -> str:
    """One output line for one record's data.

    JSON data is printed as it is, without the trailing newline (a document spread over
    several lines is compacted so it stays one line); anything else becomes a JSON string
    (bytes that are not UTF-8 are decoded with U+FFFD replacement characters).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return json.dumps(data.decode("utf-8", errors="replace").rstrip("\r\n"), ensure_ascii=False)
    candidate = text.strip()
    is_json, value = _parse_json(candidate) if candidate else (False, None)
    if not is_json:
        return json.dumps(text.rstrip("\r\n"), ensure_ascii=False)
    if "\n" in candidate or "\r" in candidate:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return candidate


def _split_concatenated(line: bytes) -> list[bytes]:
    """`{..}{..}` (records written without a newline) as separate objects; else the line."""
    if not line.lstrip().startswith(b"{"):
        return [line]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return [line]
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    parts: list[bytes] = []
    position = 0
    while position < len(text):
        while position < len(text) and text[position] in " \t\r":
            position += 1
        if position == len(text):
            break
        try:
            value, end = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return [line]
        if not isinstance(value, dict):
            return [line]
        parts.append(text[position:end].encode("utf-8"))
        position = end
    return parts if len(parts) > 1 else [line]


def _lines(body: bytes) -> list[bytes]:
    """The lines of `body` that are not blank, without line ends."""
    lines: list[bytes] = []
    for raw in body.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line.strip():
            lines.append(line)
    return lines


def split_object(body: bytes) -> list[bytes]:
    """The records of one object Firehose delivered: its lines, without line ends.

    Blank lines are skipped; a line holding several JSON objects back to back (records
    sent without append_newline) gives one record per object.
    """
    return [record for line in _lines(body) for record in _split_concatenated(line)]


def _is_json(line: bytes) -> bool:
    """Whether format_record would print `line` as JSON (strict, UTF-8)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _parse_json(text)[0]


def split_json_lines(data: bytes) -> list[bytes]:
    """The events of a record the target packed as JSON lines (`aggregation: lines`).

    Only when every line is a JSON document of its own: one document spread over several
    lines, or text, is one event (as format_record prints it), not a line each.
    """
    if b"\n" not in data.rstrip(b"\r\n"):
        return [data]  # one line: nothing to split, and nothing to parse twice
    lines = _lines(data)
    return lines if all(_is_json(line) for line in lines) else [data]


def keyed_events(data: bytes, partition_key: str | None) -> list[tuple[str | None, bytes]]:
    """(partition key, event) for each event one Kinesis record holds, in order: a KPL
    aggregate's user records with their own keys, a JSON lines record's lines, or else the
    record itself; `partition_key` is the record's.

    Data that is not an aggregate, or is a damaged one (its digest does not match), is one
    plain record: the KCL hands such a record out whole too.
    """
    pieces: list[tuple[str | None, bytes]]
    try:
        pieces = [(key, user_data) for key, _hash_key, user_data in kpl.unpack(data)]
    except kpl.NotAggregated:
        pieces = [(partition_key, data)]
    return [(key, event) for key, piece in pieces for event in split_json_lines(piece)]


def record_events(data: bytes) -> list[bytes]:
    """The events one Kinesis record holds, in order (keyed_events without the keys)."""
    return [event for _key, event in keyed_events(data, None)]


def maybe_decompress(body: bytes) -> bytes:
    """Undo the GZIP compression Firehose can apply; other bodies are returned unchanged."""
    if body[:2] != b"\x1f\x8b":
        return body
    try:
        return gzip.decompress(body)
    except (OSError, EOFError, zlib.error):
        return body


def bucket_from_arn(arn: str) -> str:
    """`arn:aws:s3:::bucket` -> `bucket`."""
    return arn.rsplit(":", 1)[-1]


def static_prefix(prefix: str) -> str:
    """The literal start of a Firehose S3 prefix, before any `!{...}` expression."""
    return prefix.split("!{", 1)[0]


def tail_config(
    file_config: Mapping[str, Any],
    *,
    stream: str,
    service: str,
    endpoint_url: str | None,
    region: str | None,
) -> dict[str, Any]:
    """The target config to build credentials from: the file's, with the flags on top.

    Settings.from_config needs a destination; a config without one gets ``--stream``.
    """
    config = dict(file_config)
    if endpoint_url:
        config["endpoint_url"] = endpoint_url
    if region:
        config["region"] = region
    if not config.get("stream_name") and not config.get("destinations"):
        config["stream_name"] = stream
        config["service"] = service
    return config


def config_service(config: Mapping[str, Any], stream: str) -> str | None:
    """The service the config routes `stream` to, or None when it does not name it."""
    default = config.get("service") or "kinesis"
    if config.get("stream_name") == stream:
        return default
    for rule in config.get("destinations") or ():
        if isinstance(rule, Mapping) and rule.get("stream") == stream:
            return rule.get("service") or default
    return None


# -- output -----------------------------------------------------------------------------


class Output:
    """Writes event lines (with their shard and partition key when `show_keys`); knows when
    --limit is reached."""

    def __init__(self, stream: TextIO, limit: int | None, *, show_keys: bool = False) -> None:
        self._stream = stream
        self.limit = limit
        self.show_keys = show_keys
        self.count = 0

    @property
    def full(self) -> bool:
        return self.limit is not None and self.count >= self.limit

    def emit(self, data: bytes, shard: str | None = None, partition_key: str | None = None) -> None:
        """Print one event; `shard` and `partition_key` (Kinesis) are shown with --show-keys."""
        if self.full:
            return
        line = format_record(data) if shard is None or not self.show_keys else format_keyed(data, shard, partition_key)
        self._stream.write(line + "\n")
        self.count += 1

    def flush(self) -> None:
        self._stream.flush()


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


# -- command line -----------------------------------------------------------------------


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ToolParser(
        prog=PROG, description="Print the events in a Kinesis stream or a Firehose bucket, one JSON line each."
    )
    parser.add_argument("--config", help="the target's config.json (credentials, role, endpoint_url, region)")
    parser.add_argument("--stream", help="Kinesis stream or Firehose delivery stream name")
    parser.add_argument("--service", choices=("kinesis", "firehose"), help="default: the config's, else kinesis")
    parser.add_argument("--bucket", help="Firehose: the S3 bucket (default: read from the delivery stream)")
    parser.add_argument("--prefix", help="Firehose: key prefix (default: the delivery stream's)")
    parser.add_argument(
        "--from",
        dest="start",
        choices=("trim_horizon", "latest"),
        default="trim_horizon",
        help="Kinesis shards: where to start; Firehose: latest skips objects already there",
    )
    parser.add_argument("--follow", action="store_true", help="keep polling for new events until interrupted")
    parser.add_argument("--limit", type=_limit, help="stop after N events")
    parser.add_argument(
        "--show-keys",
        action="store_true",
        help='Kinesis: print {"shard": ..., "partition_key": ..., "event": ...} per event',
    )
    parser.add_argument("--endpoint-url", help="overrides the config's endpoint_url")
    parser.add_argument("--region", help="overrides the config's region")
    args = parser.parse_args(argv)
    if args.show_keys and args.service == "firehose":
        parser.error(SHOW_KEYS_FIREHOSE)
    return args


def _only_destination(config: Mapping[str, Any]) -> str | None:
    if config.get("stream_name"):
        return str(config["stream_name"])
    rules = [r for r in config.get("destinations") or () if isinstance(r, Mapping)]
    streams = {r.get("stream") for r in rules}
    return str(streams.pop()) if len(streams) == 1 else None


def run(args: argparse.Namespace, out: Output) -> None:
    file_config = read_config(args.config) if args.config else {}
    stream = args.stream or _only_destination(file_config)
    if not stream:
        raise ToolError("--stream is required (the config names no single stream)")
    service = args.service or config_service(file_config, stream) or "kinesis"
    if args.show_keys and service == "firehose":  # the config routes the stream to Firehose
        raise UsageError(SHOW_KEYS_FIREHOSE)
    problem = stream_name_problem(SERVICES[service], stream)
    if problem:
        raise ToolError(f"--stream: {service} stream name '{stream}' {problem}")
    config = tail_config(
        file_config, stream=stream, service=service, endpoint_url=args.endpoint_url, region=args.region
    )
    settings = settings_of(config)
    clients = AwsClients(settings.aws_access())
    caller = Caller(refresh=clients.refresh_credentials)
    start = args.start.upper()
    if service == "kinesis":
        explain = kinesis_explainer(stream, settings.region)
        KinesisTail(clients.client("kinesis"), stream, caller, explain, start=start, follow=args.follow).run(out)
        return
    bucket, prefix = args.bucket, args.prefix
    if not bucket:
        bucket, found_prefix = firehose_bucket(clients.client("firehose"), stream, settings.region, caller)
        prefix = found_prefix if prefix is None else prefix
    FirehoseTail(clients.client("s3"), bucket, prefix or "", caller, start=start, follow=args.follow).run(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `target-kinesis-tail`; returns the exit code."""
    args = parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    out = Output(sys.stdout, args.limit, show_keys=args.show_keys)
    try:
        if args.limit != 0:
            run(args, out)
        out.flush()
    except KeyboardInterrupt:
        _quiet_flush(out)
        return 0
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except UsageError as exc:
        sys.stderr.write(usage_line(PROG, str(exc)))
        return 2
    except (ToolError, TargetKinesisError) as exc:
        _quiet_flush(out)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0


def _quiet_flush(out: Output) -> None:
    try:
        out.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        _silence_stdout()


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
