"""The hand-written producer target-kinesis is measured against.

What a competent engineer writes in an afternoon: read Singer lines with orjson, map each
RECORD to a Segment ``track`` event, serialize it with orjson and ship batches of 500 with
``PutRecords`` (or Firehose ``PutRecordBatch``) from 4 threads fed by a bounded queue, with
boto3. No schema validation, no state handling beyond ignoring STATE lines.

Usage::

    python bench/baseline_producer.py --config cfg.json < input.singer
    python bench/baseline_producer.py --endpoint-url http://127.0.0.1:PORT \
        --stream-name bench [--service kinesis|firehose] < input.singer

Options given on the command line override the config file (same keys as target-kinesis:
``stream_name``, ``service``, ``endpoint_url``, ``region``, ``aws_access_key_id``,
``aws_secret_access_key``). Prints ``{"records_sent": N, ...}`` on stdout at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import queue
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import orjson
from botocore.config import Config

BATCH_RECORDS = 500
BATCH_BYTES = {"kinesis": 5 * 1024 * 1024, "firehose": 4 * 1024 * 1024}
WORKERS = 4
QUEUE_DEPTH = 8
MAX_ATTEMPTS = 5
LIBRARY = {"name": "baseline-producer", "version": "0.0.0"}


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_event(stream: str, record: dict) -> dict:
    event: dict = {
        "type": "track",
        "event": stream,
        "messageId": str(uuid.uuid4()),
        "timestamp": record.get("created_at") or _now_iso(),
        "sentAt": _now_iso(),
        "properties": record,
        "context": {"library": LIBRARY},
    }
    user_id = record.get("user_id")
    anonymous_id = record.get("anonymous_id")
    if user_id is not None:
        event["userId"] = str(user_id)
    if anonymous_id is not None:
        event["anonymousId"] = str(anonymous_id)
    return event


class Sender:
    """Ships batches from a bounded queue on a small thread pool."""

    def __init__(self, service: str, stream_name: str, client: object) -> None:
        self.service = service
        self.stream_name = stream_name
        self.client = client
        self.sent = 0
        self.calls = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[list | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="put")
        self._futures = [self._pool.submit(self._worker) for _ in range(WORKERS)]

    def submit(self, batch: list) -> None:
        for _ in range(100_000):  # bounded wait: a dead worker must not hang us forever
            try:
                self._queue.put(batch, timeout=1.0)
                return
            except queue.Full:
                for fut in self._futures:
                    if fut.done():
                        fut.result()  # re-raise the worker's error
        raise RuntimeError("send queue stuck")

    def close(self) -> None:
        for _ in range(WORKERS):
            self._queue.put(None)
        self._pool.shutdown(wait=True)
        for fut in self._futures:
            fut.result()

    def _worker(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            self._put(batch)

    def _put(self, entries: list) -> None:
        for attempt in range(MAX_ATTEMPTS):
            if self.service == "kinesis":
                resp = self.client.put_records(StreamName=self.stream_name, Records=entries)
                failed = resp.get("FailedRecordCount", 0)
                results = resp.get("Records", [])
            else:
                resp = self.client.put_record_batch(DeliveryStreamName=self.stream_name, Records=entries)
                failed = resp.get("FailedPutCount", 0)
                results = resp.get("RequestResponses", [])
            with self._lock:
                self.calls += 1
                self.sent += len(entries) - failed
            if not failed:
                return
            entries = [e for e, r in zip(entries, results, strict=False) if r.get("ErrorCode")]
            time.sleep(min(0.05 * 2**attempt, 1.0))
        with self._lock:
            self.failed += len(entries)


def run(cfg: dict, stdin: object) -> dict:
    service = cfg.get("service", "kinesis")
    if service not in ("kinesis", "firehose"):
        raise SystemExit(f"unknown service {service!r}")
    client = boto3.client(
        service,
        region_name=cfg.get("region", "us-east-1"),
        endpoint_url=cfg.get("endpoint_url"),
        aws_access_key_id=cfg.get("aws_access_key_id"),
        aws_secret_access_key=cfg.get("aws_secret_access_key"),
        config=Config(
            max_pool_connections=WORKERS,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )
    sender = Sender(service, cfg["stream_name"], client)
    firehose = service == "firehose"
    max_bytes = BATCH_BYTES[service]
    batch: list = []
    batch_bytes = 0
    records_in = 0
    loads = orjson.loads
    dumps = orjson.dumps
    try:
        for line in stdin:
            if not line.strip():
                continue
            msg = loads(line)
            if msg.get("type") != "RECORD":
                continue
            records_in += 1
            record = msg["record"]
            event = to_event(msg["stream"], record)
            data = dumps(event)
            if firehose:
                entry = {"Data": data + b"\n"}
                size = len(data) + 1
            else:
                key = event.get("userId") or event["messageId"]
                entry = {"Data": data, "PartitionKey": key}
                size = len(data) + len(key)
            if batch and (len(batch) >= BATCH_RECORDS or batch_bytes + size > max_bytes):
                sender.submit(batch)
                batch, batch_bytes = [], 0
            batch.append(entry)
            batch_bytes += size
        if batch:
            sender.submit(batch)
    finally:
        sender.close()
    return {
        "records_in": records_in,
        "records_sent": sender.sent,
        "records_failed": sender.failed,
        "calls": sender.calls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="JSON config file (target-kinesis keys)")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--stream-name")
    parser.add_argument("--service", choices=["kinesis", "firehose"])
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    cfg: dict = {}
    if args.config:
        with open(args.config) as fh:
            cfg = json.load(fh)
    for key in ("endpoint_url", "stream_name", "service", "region"):
        value = getattr(args, key)
        if value is not None:
            cfg[key] = value
    if not cfg.get("stream_name"):
        parser.error("stream_name is required (--stream-name or config)")
    result = run(cfg, sys.stdin.buffer)
    print(json.dumps(result), flush=True)
    print(f"baseline-producer: sent {result['records_sent']} records", file=sys.stderr)
    return 0 if result["records_failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
