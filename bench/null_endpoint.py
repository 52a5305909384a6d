"""A do-almost-nothing AWS endpoint for benchmarking target-kinesis.

Answers, on 127.0.0.1 only, the handful of calls a Kinesis/Firehose producer makes:

* Kinesis (``X-Amz-Target: Kinesis_20131202.*``): ``PutRecords``, ``PutRecord``,
  ``DescribeStreamSummary``, ``DescribeStream``, ``ListShards``.
* Firehose (``X-Amz-Target: Firehose_20150804.*``): ``PutRecordBatch``, ``PutRecord``,
  ``DescribeDeliveryStream``.
* STS (form POST, ``Action=AssumeRole`` / ``GetCallerIdentity``): an XML answer whose
  credentials expire in one hour.

Records are counted without decoding them: a PutRecords / PutRecordBatch body holds one
``"Data"`` key per record (the payload itself is base64, so it can never contain a quote),
so ``body.count(b'"Data"')`` is exact and costs next to nothing (PutRecords: the ``Data`` strings
of the body split on quotes, see ``_put_records``).

Control endpoints (for the harness):

* ``GET /__counts``  -> JSON counters (records, calls and bytes per API).
* ``POST /__reset``  -> zero the counters, answers the counters as they were.
* ``GET /__health``  -> ``ok``.

Every Kinesis stream has ``--shards N`` open shards (default 256), ``shardId-000000000000`` on,
splitting the hash-key space evenly as CreateStream does (shard i starts at i * (2^128 // N),
the last one ends at 2^128 - 1). ``ListShards``, ``DescribeStream`` and
``DescribeStreamSummary`` show them, and ``PutRecords`` / ``PutRecord`` answer each record with
the ShardId its partition key's MD5 falls in (a producer that checks where AWS placed a record
sees the map it read hold); a record with an ``ExplicitHashKey`` (a KPL aggregate, which the
target places on its shard that way) is answered with the shard whose ListShards range holds that
hash key. The endpoint enforces no limit: it stands for a stream too large to be the bottleneck.
The partition keys are cut out of the body split on quotes (the body is parsed as JSON only
when it holds an escape, an ExplicitHashKey is given or a data blob may be a KPL aggregate).

Events and AWS records: ``kinesis_records`` counts AWS records (``"Data"`` keys);
``kinesis_events`` counts what a consumer gets out of them: 1 per ordinary record, and for a
KPL aggregated record (data ``F3 89 9A C2`` + protobuf + its MD5, whose base64 starts with
``84ma``) its user records, counted by walking the protobuf's top-level fields after checking the
MD5 (an aggregate whose digest does not match counts 1, as consumers read it whole);
``kinesis_aggregates`` counts the aggregated records. Without aggregation the two counts are
equal.

Usage::

    python bench/null_endpoint.py [PORT] [--shards N]   # PORT 0 or absent: any free port

The first line printed on stdout is the chosen port number.

One file (about 530 lines) on purpose: it runs as a child script by path, on the stdlib alone,
so it imports nothing of the bench package and starts and answers with as little as possible.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import signal
import sys
import threading
import time
from bisect import bisect_right
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

HOST = "127.0.0.1"
ACCOUNT = "123456789012"
REGION = "us-east-1"
CREATED = 1_700_000_000.0  # StreamCreationTimestamp / CreateTimestamp (epoch seconds)

AMZ_JSON = "application/x-amz-json-1.1"

_FIREHOSE_ENTRY = b'{"RecordId":"1"}'

HASH_KEY_SPACE = 2**128
DEFAULT_SHARDS = 256


class Counters:
    """Thread-safe counters of what the endpoint received."""

    FIELDS = (
        "kinesis_records",
        "kinesis_events",
        "kinesis_aggregates",
        "kinesis_calls",
        "kinesis_bytes",
        "firehose_records",
        "firehose_calls",
        "firehose_bytes",
        "describe_calls",
        "sts_calls",
        "other_calls",
        "errors",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(self.FIELDS, 0)
        self._since = time.time()

    def add(self, **deltas: int) -> None:
        with self._lock:
            for key, delta in deltas.items():
                self._values[key] += delta

    def snapshot(self, reset: bool = False) -> dict:
        with self._lock:
            snap = dict(self._values)
            snap["since"] = self._since
            if reset:
                self._values = dict.fromkeys(self.FIELDS, 0)
                self._since = time.time()
        return snap


COUNTERS = Counters()


class ShardMap:
    """The open shards every Kinesis stream has: ids, even hash-key ranges, placement."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("a stream needs at least one shard")
        self.count = count
        self.step = HASH_KEY_SPACE // count
        self.ids = [f"shardId-{i:012d}" for i in range(count)]
        # starting hash keys as 16 big-endian bytes: they order as the numbers do, bisected in C
        self.starts = [(i * self.step).to_bytes(16, "big") for i in range(count)]
        # one PutRecords answer entry per shard, built once
        self.entries = [f'{{"SequenceNumber":"1","ShardId":"{sid}"}}'.encode() for sid in self.ids]

    def index_of_hash(self, hash_key: int) -> int:
        return min(hash_key // self.step, self.count - 1)

    def index_of(self, partition_key: bytes) -> int:
        """The shard of a partition key (its UTF-8 bytes): where the MD5 of the key falls."""
        return bisect_right(self.starts, hashlib.md5(partition_key, usedforsecurity=False).digest()) - 1

    def describe(self) -> list[dict]:
        """The shards as ListShards / DescribeStream show them."""
        return [
            {
                "ShardId": sid,
                "HashKeyRange": {
                    "StartingHashKey": str(i * self.step),
                    "EndingHashKey": str(HASH_KEY_SPACE - 1 if i == self.count - 1 else (i + 1) * self.step - 1),
                },
                "SequenceNumberRange": {"StartingSequenceNumber": "1"},
            }
            for i, sid in enumerate(self.ids)
        ]


SHARDS = ShardMap(DEFAULT_SHARDS)  # serve() sets the one of --shards

_KEY_NAME = b"PartitionKey"
_DATA_NAME = b"Data"
_EXPLICIT = b"ExplicitHashKey"
#: base64 of a KPL aggregate's first 3 bytes (magic F3 89 9A C2): a data blob starting with it
#: may be an aggregate (an event's JSON starts "eyJ").
_KPL_START = b"84ma"
_KPL_MAGIC = b"\xf3\x89\x9a\xc2"
_KPL_DIGEST = 16


def kpl_user_records(blob: bytes) -> int:
    """User records of a KPL aggregated record (field 3 of its AggregatedRecord protobuf);
    0 when ``blob`` is not a valid aggregate (no magic, digest mismatch, malformed): a
    consumer then reads it as one ordinary record."""
    if len(blob) <= len(_KPL_MAGIC) + _KPL_DIGEST or not blob.startswith(_KPL_MAGIC):
        return 0
    message = blob[len(_KPL_MAGIC) : -_KPL_DIGEST]
    if hashlib.md5(message, usedforsecurity=False).digest() != blob[-_KPL_DIGEST:]:
        return 0
    count, at, end = 0, 0, len(message)
    try:
        while at < end:
            tag = message[at]
            at += 1
            if tag & 0x80:  # a field number above 15: not the AggregatedRecord's fields
                return 0
            if tag & 7 == 0:  # varint field: skip it
                while message[at] & 0x80:
                    at += 1
                at += 1
                continue
            if tag & 7 != 2:
                return 0
            size = shift = 0
            while True:
                byte = message[at]
                at += 1
                size |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            at += size
            count += tag == 0x1A  # field 3, length-delimited: a Record
    except IndexError:
        return 0
    return count if at == end else 0


def _put_records(body: bytes) -> tuple[list[int], int]:
    """The shard index of each record of a PutRecords body, in order, and the events the
    records carry (KPL aggregates counted by their user records).

    Without a backslash in the body, splitting it on quotes cuts out every JSON string, in
    order, in one pass in C (the data blobs are base64: they hold no quote): each ``Data``
    key is a record, each ``PartitionKey`` key is followed by its value. The body is parsed
    as JSON instead when it holds an escape, an ExplicitHashKey, a data blob that may be a
    KPL aggregate, or not one key for each record. (The three scans of the body this
    replaced cost the endpoint 2.8 us a record, a fifth of what the target spends: on a
    2-CPU machine, CPU taken from the contenders.)
    """
    if b"\\" not in body:
        strings = body.split(b'"')[1::2]  # every JSON string of the body, keys and values
        # (a name as the last string has no value after it: a broken body, parsed below)
        if _EXPLICIT not in strings and strings[-1:] not in ([_KEY_NAME], [_DATA_NAME]):
            keys = [strings[j + 1] for j, text in enumerate(strings) if text == _KEY_NAME]
            blobs = [strings[j + 1] for j, text in enumerate(strings) if text == _DATA_NAME]
            if len(keys) == len(blobs) and not any(blob.startswith(_KPL_START) for blob in blobs):
                starts, md5 = SHARDS.starts, hashlib.md5  # ShardMap.index_of, inlined: per record
                return [bisect_right(starts, md5(key, usedforsecurity=False).digest()) - 1 for key in keys], len(keys)
    try:  # the records the body holds; a body that does not parse: its "Data" keys
        records = len(json.loads(body)["Records"])
    except (ValueError, KeyError, TypeError):
        records = body.count(b'"Data"')
    return _placements(body, records)


def _placements(body: bytes, records: int) -> tuple[list[int], int]:
    """The shard index of each of the `records` of a PutRecords (or PutRecord) body, in
    order, and the events they carry, by parsing the body as JSON."""
    shards = SHARDS
    try:
        parsed = json.loads(body)
    except ValueError:
        return [0] * records, records
    entries = parsed.get("Records", [parsed]) if isinstance(parsed, dict) else []
    placed = []
    events = aggregates = 0
    for entry in entries if isinstance(entries, list) else []:
        entry = entry if isinstance(entry, dict) else {}
        explicit = entry.get("ExplicitHashKey")
        if isinstance(explicit, str) and explicit.isdigit() and int(explicit) < HASH_KEY_SPACE:
            placed.append(shards.index_of_hash(int(explicit)))
        else:
            placed.append(shards.index_of(str(entry.get("PartitionKey", "")).encode("utf-8")))
        data = entry.get("Data")
        users = 0
        if isinstance(data, str) and data.startswith("84ma"):
            try:
                users = kpl_user_records(base64.b64decode(data))
            except ValueError:
                users = 0
        events += users or 1
        aggregates += users > 0
    if aggregates:
        COUNTERS.add(kinesis_aggregates=aggregates)
    return (placed + [0] * records)[:records], events + max(0, records - len(placed))


def _kinesis_answer(body: bytes) -> tuple[bytes, int, int]:
    """The PutRecords answer (each record on its shard), its records and the events they carry."""
    entries = SHARDS.entries
    placements, events = _put_records(body)
    placed = b",".join([entries[i] for i in placements])
    return b'{"FailedRecordCount":0,"EncryptionType":"NONE","Records":[' + placed + b"]}", len(placements), events


# Pre-built PutRecordBatch answers, one per batch size (<= 500 keys each).
_answer_cache: dict[int, bytes] = {}
_answer_lock = threading.Lock()


def _firehose_answer(n: int) -> bytes:
    body = _answer_cache.get(n)
    if body is not None:
        return body
    body = b'{"FailedPutCount":0,"Encrypted":false,"RequestResponses":[' + b",".join([_FIREHOSE_ENTRY] * n) + b"]}"
    if n <= 10_000:  # bound the cache: real batches are <= 500 records
        with _answer_lock:
            _answer_cache[n] = body
    return body


def _stream_name(body: bytes, key: str, default: str = "bench") -> str:
    try:
        return str(json.loads(body or b"{}").get(key) or default)
    except ValueError:
        return default


def _kinesis_summary(name: str) -> dict:
    return {
        "StreamDescriptionSummary": {
            "StreamName": name,
            "StreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}",
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "RetentionPeriodHours": 24,
            "StreamCreationTimestamp": CREATED,
            "EnhancedMonitoring": [],
            "EncryptionType": "NONE",
            "OpenShardCount": SHARDS.count,
            "ConsumerCount": 0,
        }
    }


def _kinesis_describe(name: str) -> dict:
    summary = _kinesis_summary(name)["StreamDescriptionSummary"]
    return {
        "StreamDescription": {
            "StreamName": summary["StreamName"],
            "StreamARN": summary["StreamARN"],
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": summary["StreamModeDetails"],
            "Shards": SHARDS.describe(),
            "HasMoreShards": False,
            "RetentionPeriodHours": 24,
            "StreamCreationTimestamp": CREATED,
            "EnhancedMonitoring": [],
            "EncryptionType": "NONE",
        }
    }


def _firehose_describe(name: str) -> dict:
    return {
        "DeliveryStreamDescription": {
            "DeliveryStreamName": name,
            "DeliveryStreamARN": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}",
            "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
            "DeliveryStreamType": "DirectPut",
            "VersionId": "1",
            "CreateTimestamp": CREATED,
            "Destinations": [{"DestinationId": "destinationId-000000000001"}],
            "HasMoreDestinations": False,
        }
    }


def _sts_xml(action: str, params: dict[str, list[str]]) -> bytes:
    ns = "https://sts.amazonaws.com/doc/2011-06-15/"
    request_id = "00000000-0000-0000-0000-000000000000"
    if action == "GetCallerIdentity":
        return (
            f'<GetCallerIdentityResponse xmlns="{ns}"><GetCallerIdentityResult>'
            f"<Arn>arn:aws:iam::{ACCOUNT}:user/bench</Arn><UserId>AIDABENCH</UserId>"
            f"<Account>{ACCOUNT}</Account></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ).encode()
    role_arn = (params.get("RoleArn") or [f"arn:aws:iam::{ACCOUNT}:role/bench"])[0]
    session = (params.get("RoleSessionName") or ["bench"])[0]
    role_name = role_arn.rsplit("/", 1)[-1]
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    return (
        f'<AssumeRoleResponse xmlns="{ns}"><AssumeRoleResult>'
        "<Credentials>"
        "<AccessKeyId>ASIABENCHACCESSKEY</AccessKeyId>"
        "<SecretAccessKey>benchSecretAccessKey</SecretAccessKey>"
        "<SessionToken>benchSessionToken</SessionToken>"
        f"<Expiration>{expiration}</Expiration>"
        "</Credentials>"
        "<AssumedRoleUser>"
        f"<AssumedRoleId>AROABENCH:{session}</AssumedRoleId>"
        f"<Arn>arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{session}</Arn>"
        "</AssumedRoleUser>"
        "</AssumeRoleResult>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length
    # An answer written as headers then body, with Nagle's algorithm on, waits for the
    # client's delayed ACK: 40 ms per call, which made the endpoint, not the producers,
    # the bottleneck (about 45,000 records/s for any client). AWS answers without it.
    disable_nagle_algorithm = True
    wbufsize = -1  # buffer the answer; flushed once, as one write, after the body
    server_version = "null-endpoint/1"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        pass  # silence per-request logging: it would cost more than the answers

    # -- helpers -------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            for _ in range(1_000_000):  # bounded
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(self, status: int, body: bytes, content_type: str = AMZ_JSON) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, obj: dict, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _error(self, code: str, message: str, status: int = 400) -> None:
        COUNTERS.add(errors=1)
        self._send_json({"__type": code, "message": message}, status)

    # -- verbs ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path.startswith("/__counts"):
            self._send(200, json.dumps(COUNTERS.snapshot()).encode(), "application/json")
        elif self.path.startswith("/__health"):
            self._send(200, b"ok", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        body = self._read_body()
        if self.path.startswith("/__reset"):
            self._send(200, json.dumps(COUNTERS.snapshot(reset=True)).encode(), "application/json")
            return
        target = self.headers.get("X-Amz-Target")
        if target:
            self._amz_json(target, body)
        else:
            self._query(body)

    def _amz_json(self, target: str, body: bytes) -> None:
        service, _, op = target.partition(".")
        if service == "Kinesis_20131202":
            if op == "PutRecords":
                answer, n, events = _kinesis_answer(body)
                COUNTERS.add(kinesis_records=n, kinesis_events=events, kinesis_calls=1, kinesis_bytes=len(body))
                self._send(200, answer)
            elif op == "PutRecord":
                placements, events = _placements(body, 1)
                COUNTERS.add(kinesis_records=1, kinesis_events=events, kinesis_calls=1, kinesis_bytes=len(body))
                self._send(200, SHARDS.entries[placements[0]])
            elif op == "DescribeStreamSummary":
                COUNTERS.add(describe_calls=1)
                self._send_json(_kinesis_summary(_stream_name(body, "StreamName")))
            elif op == "DescribeStream":
                COUNTERS.add(describe_calls=1)
                self._send_json(_kinesis_describe(_stream_name(body, "StreamName")))
            elif op == "ListShards":
                COUNTERS.add(describe_calls=1)
                self._send_json({"Shards": SHARDS.describe()})
            else:
                COUNTERS.add(other_calls=1)
                self._error("UnknownOperationException", f"null endpoint: {op} not supported")
        elif service == "Firehose_20150804":
            if op == "PutRecordBatch":
                n = body.count(b'"Data"')
                COUNTERS.add(firehose_records=n, firehose_calls=1, firehose_bytes=len(body))
                self._send(200, _firehose_answer(n))
            elif op == "PutRecord":
                COUNTERS.add(firehose_records=1, firehose_calls=1, firehose_bytes=len(body))
                self._send(200, b'{"RecordId":"1","Encrypted":false}')
            elif op == "DescribeDeliveryStream":
                COUNTERS.add(describe_calls=1)
                self._send_json(_firehose_describe(_stream_name(body, "DeliveryStreamName")))
            else:
                COUNTERS.add(other_calls=1)
                self._error("InvalidArgumentException", f"null endpoint: {op} not supported")
        else:
            COUNTERS.add(other_calls=1)
            self._error("UnknownOperationException", f"null endpoint: unknown target {target}")

    def _query(self, body: bytes) -> None:
        params = parse_qs(body.decode("utf-8", "replace"))
        action = (params.get("Action") or [""])[0]
        if action in ("AssumeRole", "GetCallerIdentity"):
            COUNTERS.add(sts_calls=1)
            self._send(200, _sts_xml(action, params), "text/xml")
        else:
            COUNTERS.add(other_calls=1, errors=1)
            xml = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"
                f"<Message>null endpoint: {action or 'no action'} not supported</Message>"
                "</Error><RequestId>0</RequestId></ErrorResponse>"
            ).encode()
            self._send(400, xml, "text/xml")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def serve(port: int = 0, shards: int = DEFAULT_SHARDS) -> None:
    global SHARDS
    SHARDS = ShardMap(shards)
    server = Server((HOST, port), Handler)
    print(server.server_address[1], flush=True)

    def _stop(signum: int, frame: object) -> None:
        # shutdown() must run on another thread than serve_forever()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A do-almost-nothing Kinesis/Firehose endpoint on 127.0.0.1.")
    parser.add_argument("port", nargs="?", type=int, default=0, help="port (0 or absent: any free port)")
    parser.add_argument(
        "--shards",
        type=int,
        default=DEFAULT_SHARDS,
        help=f"open shards of every Kinesis stream (default {DEFAULT_SHARDS}), even hash-key ranges",
    )
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error("--shards must be >= 1")
    serve(args.port, args.shards)
    return 0


if __name__ == "__main__":
    sys.exit(main())
