"""The aggregation scenarios' read-back: every record a stream stored, unpacked into events as consumers do.

Kinesis with GetRecords and AWS's own deaggregation module, Firehose from the endpoint's
``/__records``; each event found by its order_id in the input, to count what was lost,
duplicated or misplaced. Also the target's summary line (billed units). Not to be confused with
bench/capacity_readback.py, the endpoint (a child script) that adds the ``/__records`` route.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.base import ROOT, log
from bench.endpoints import _NO_PROXY, Endpoint
from bench.scenarios import CAPACITY_STREAM, Scenario

KPL_MAGIC = b"\xf3\x89\x9a\xc2"  # a KPL aggregated record's first bytes
#: AWS's billing units (each record rounded up): Kinesis PUT payload units of 25 KB (of data plus
#: partition key, as the target counts a record's size), Firehose ingestion in 5 KB units.
BILLING_UNIT_BYTES = {"kinesis": 25 * 1024, "firehose": 5 * 1024}

_SUMMARY_LINE = re.compile(
    r"summary (?:kinesis|firehose):\S+: records_sent=(\d+)(?: aws_records=(\d+))?(?: billed_units=(\d+))?"
)


def summary_figures(paths: list[Path]) -> dict | None:
    """events, aws_records and billed from the target's summary lines (``summary kinesis:NAME:
    records_sent=N aws_records=N billed_units=N ...``), summed over ``paths`` (its stderr logs);
    a figure the target does not print (an older commit) is None; None without any summary line."""
    found = False
    totals: dict[str, int | None] = {"events": 0, "aws_records": 0, "billed": 0}
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for match in _SUMMARY_LINE.finditer(text):
            found = True
            for name, value in zip(totals, match.groups(), strict=True):
                totals[name] = None if value is None or totals[name] is None else totals[name] + int(value)
    return totals if found else None


_SUPPORT: dict[str, object] = {}


def support_module(name: str):
    """tests/support/NAME.py, loaded from its file (tests/ is no installed package; the capacity
    endpoint is run from its file the same way)."""
    if name not in _SUPPORT:
        import importlib.util

        path = ROOT / "tests" / "support" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"bench_support_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
        _SUPPORT[name] = module
    return _SUPPORT[name]


_ORDER_IDS: dict[str, list[str]] = {}


def order_ids(path: Path) -> list[str]:
    """The order_id of every RECORD of an input: what identifies an event when it is read back."""
    if str(path) not in _ORDER_IDS:
        ids = []
        with open(path, "rb") as fh:
            for line in fh:
                if line.startswith(b'{"type":"RECORD"'):
                    ids.append(str(json.loads(line)["record"]["order_id"]))
        _ORDER_IDS[str(path)] = ids
    return _ORDER_IDS[str(path)]


@dataclass
class Readback:
    """Every record a stream stored, read back and unpacked into events, against the input."""

    aws_records: int = 0  # records the stream holds
    aggregated: int = 0  # of them, KPL aggregates (kpl) or records of more than one event (lines)
    events: int = 0  # events unpacked from them (user records, lines), duplicates included
    lost: int = 0  # events of the input not read back
    duplicated: int = 0  # events read back more than once (the extra copies)
    unknown: int = 0  # events read back that do not parse or are not in the input
    misplaced: int | None = None  # Kinesis: user records on a shard whose hash range lacks their key
    billed: int = 0  # billing units of the stored records (sizes rounded up per record)
    stored_bytes: int = 0  # data (plus partition keys, Kinesis) of the stored records
    event_bytes: int = 0  # the events' own JSON (unpacked, without partition key or newline)
    seconds: float = 0.0  # how long reading back took
    error: str = ""


def _tally(back: Readback, events: list[bytes], inputs: list[Path]) -> None:
    """Lost, duplicated and unknown events: each event's properties.order_id against the input's."""
    expected = Counter(oid for path in inputs for oid in order_ids(path))
    seen: Counter[str] = Counter()
    for data in events:
        try:
            seen[str(json.loads(data)["properties"]["order_id"])] += 1
        except (ValueError, KeyError, TypeError):
            back.unknown += 1
    back.events = len(events)
    back.event_bytes = sum(len(data.rstrip(b"\n")) for data in events)
    back.lost = sum(n - seen.get(oid, 0) for oid, n in expected.items() if seen.get(oid, 0) < n)
    back.duplicated = sum(n - expected[oid] for oid, n in seen.items() if oid in expected and n > expected[oid])
    back.unknown += sum(n for oid, n in seen.items() if oid not in expected)


def _kinesis_client(url: str):
    """A boto3 Kinesis client on the capacity endpoint (dummy keys; no proxy for 127.0.0.1)."""
    import boto3
    from botocore.config import Config

    for key in ("NO_PROXY", "no_proxy"):
        if "127.0.0.1" not in os.environ.get(key, ""):
            os.environ[key] = ",".join(filter(None, (os.environ.get(key), "127.0.0.1,localhost")))
    return boto3.client(
        "kinesis",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 2}, read_timeout=60),
    )


def read_kinesis(client, stream: str) -> list[tuple[str, str, bytes]]:
    """(shard id, partition key, data) of every record of every shard, with GetRecords from
    TRIM_HORIZON, as a consumer reads them."""
    stored: list[tuple[str, str, bytes]] = []
    for shard_id in support_module("kpl_readback").shard_ranges(client, stream):
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        while iterator:
            answer = client.get_records(ShardIterator=iterator, Limit=10_000)
            records = answer["Records"]
            stored.extend((shard_id, r["PartitionKey"], r["Data"]) for r in records)
            if not records:  # an open shard read to its end
                break
            iterator = answer.get("NextShardIterator")
    return stored


def read_back(scenario: Scenario, endpoint: Endpoint, inputs: list[Path]) -> Readback:
    """Every record the endpoint stored, unpacked into events as consumers do: Kinesis with
    GetRecords and AWS's deaggregation module (tests/support/kpl_readback.py: aws_kinesis_agg),
    each user record's hash key checked against its shard's range (ListShards); Firehose from
    the endpoint's /__records, each record split on newlines."""
    back = Readback()
    t0 = time.perf_counter()
    unit = BILLING_UNIT_BYTES[scenario.service]
    try:
        if scenario.service == "kinesis":
            readback = support_module("kpl_readback")
            client = _kinesis_client(endpoint.url)
            stored = read_kinesis(client, CAPACITY_STREAM)
            sizes = [len(data) + len(key.encode("utf-8")) for _, key, data in stored]
            back.aggregated = sum(1 for _, _, data in stored if data.startswith(KPL_MAGIC))
            users = readback.deaggregate(stored)
            back.misplaced = len(readback.misplaced(users, readback.shard_ranges(client, CAPACITY_STREAM)))
            events = [user.data for user in users]
        else:
            import base64

            with _NO_PROXY.open(
                f"{endpoint.url}/__records?stream={urllib.parse.quote(CAPACITY_STREAM)}", timeout=120
            ) as resp:
                blobs = [base64.b64decode(r["data"]) for r in json.loads(resp.read())["records"]]
            sizes = [len(blob) for blob in blobs]
            events = []
            for blob in blobs:
                lines = [line for line in blob.split(b"\n") if line]
                back.aggregated += len(lines) > 1
                events.extend(lines)
        back.aws_records = len(sizes)
        back.stored_bytes = sum(sizes)
        back.billed = sum(-(-size // unit) for size in sizes)
        _tally(back, events, inputs)
    except Exception as exc:  # reported in the run's status
        back.error = f"{type(exc).__name__}: {exc}"
        log(f"!!! reading back {scenario.name}: {back.error}")
    back.seconds = time.perf_counter() - t0
    return back
