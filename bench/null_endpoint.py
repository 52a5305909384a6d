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
so ``body.count(b'"Data"')`` is exact and costs next to nothing.

Control endpoints (for the harness):

* ``GET /__counts``  -> JSON counters (records, calls and bytes per API).
* ``POST /__reset``  -> zero the counters, answers the counters as they were.
* ``GET /__health``  -> ``ok``.

Usage::

    python bench/null_endpoint.py [PORT]      # PORT 0 or absent: any free port

The first line printed on stdout is the chosen port number.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

HOST = "127.0.0.1"
ACCOUNT = "123456789012"
REGION = "us-east-1"
CREATED = 1_700_000_000.0  # StreamCreationTimestamp / CreateTimestamp (epoch seconds)

AMZ_JSON = "application/x-amz-json-1.1"

_KINESIS_ENTRY = b'{"SequenceNumber":"1","ShardId":"shardId-000000000000"}'
_FIREHOSE_ENTRY = b'{"RecordId":"1"}'


class Counters:
    """Thread-safe counters of what the endpoint received."""

    FIELDS = (
        "kinesis_records",
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

# Pre-built PutRecords / PutRecordBatch answers, one per batch size (<= 500 keys each).
_answer_cache: dict[tuple[str, int], bytes] = {}
_answer_lock = threading.Lock()


def _batch_answer(kind: str, n: int) -> bytes:
    key = (kind, n)
    body = _answer_cache.get(key)
    if body is not None:
        return body
    if kind == "kinesis":
        body = b'{"FailedRecordCount":0,"EncryptionType":"NONE","Records":[' + b",".join([_KINESIS_ENTRY] * n) + b"]}"
    else:
        body = b'{"FailedPutCount":0,"Encrypted":false,"RequestResponses":[' + b",".join([_FIREHOSE_ENTRY] * n) + b"]}"
    if n <= 10_000:  # bound the cache: real batches are <= 500 records
        with _answer_lock:
            _answer_cache[key] = body
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
            "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
            "RetentionPeriodHours": 24,
            "StreamCreationTimestamp": CREATED,
            "EnhancedMonitoring": [],
            "EncryptionType": "NONE",
            "OpenShardCount": 4,
            "ConsumerCount": 0,
        }
    }


def _shards() -> list[dict]:
    step = 2**128 // 4
    return [
        {
            "ShardId": f"shardId-{i:012d}",
            "HashKeyRange": {
                "StartingHashKey": str(i * step),
                "EndingHashKey": str((i + 1) * step - 1),
            },
            "SequenceNumberRange": {"StartingSequenceNumber": "1"},
        }
        for i in range(4)
    ]


def _kinesis_describe(name: str) -> dict:
    summary = _kinesis_summary(name)["StreamDescriptionSummary"]
    return {
        "StreamDescription": {
            "StreamName": summary["StreamName"],
            "StreamARN": summary["StreamARN"],
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": summary["StreamModeDetails"],
            "Shards": _shards(),
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
                n = body.count(b'"Data"')
                COUNTERS.add(kinesis_records=n, kinesis_calls=1, kinesis_bytes=len(body))
                self._send(200, _batch_answer("kinesis", n))
            elif op == "PutRecord":
                COUNTERS.add(kinesis_records=1, kinesis_calls=1, kinesis_bytes=len(body))
                self._send(200, b'{"SequenceNumber":"1","ShardId":"shardId-000000000000"}')
            elif op == "DescribeStreamSummary":
                COUNTERS.add(describe_calls=1)
                self._send_json(_kinesis_summary(_stream_name(body, "StreamName")))
            elif op == "DescribeStream":
                COUNTERS.add(describe_calls=1)
                self._send_json(_kinesis_describe(_stream_name(body, "StreamName")))
            elif op == "ListShards":
                COUNTERS.add(describe_calls=1)
                self._send_json({"Shards": _shards()})
            else:
                COUNTERS.add(other_calls=1)
                self._error("UnknownOperationException", f"null endpoint: {op} not supported")
        elif service == "Firehose_20150804":
            if op == "PutRecordBatch":
                n = body.count(b'"Data"')
                COUNTERS.add(firehose_records=n, firehose_calls=1, firehose_bytes=len(body))
                self._send(200, _batch_answer("firehose", n))
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


def serve(port: int = 0) -> None:
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
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    port = int(argv[0]) if argv else 0
    serve(port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
