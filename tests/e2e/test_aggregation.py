"""Aggregation through the real CLI, read back the way consumers read it.

KPL aggregates are unpacked by AWS's own deaggregation module (aws-kinesis-agg, what Lambda
consumers run) from what landed in moto, kinesalite and the capacity-enforcing endpoint; every
user record must be read from a shard whose hash-key range holds its partition key's hash (the
KCL drops the others). Firehose `lines` records are read back from moto's S3 and split into
their events. Throughput against a shard's capacity is a benchmark figure (bench/), not asserted.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.capacity_endpoint import CapacityEndpoint
from tests.support.kpl_readback import UserRecord, deaggregate, misplaced, shard_ranges
from tests.support.readback import (
    create_firehose_to_s3,
    create_kinesis_stream,
    read_firehose_s3,
    read_kinesis,
    split_lines,
    unique_name,
)
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import TARGET, base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

ORDERS = schema(
    "orders",
    {"id": {"type": "integer"}, "user_id": {"type": "string"}, "note": {"type": "string"}},
    ["id"],
)
NOTE = "x" * 200  # about 450 bytes an event, as the benchmark's orders


def _orders(count: int, users: int = 200, note: str = NOTE) -> str:
    lines: list[dict[str, Any]] = [ORDERS]
    for i in range(count):
        lines.append(record("orders", {"id": i, "user_id": f"u{i % users}", "note": note}))
        if (i + 1) % 500 == 0:
            lines.append(state({"offset": i + 1}))
    lines.append(state({"offset": count}))
    return singer_lines(*lines)


def _ids(users: list[UserRecord]) -> Counter[int]:
    return Counter(json.loads(u.data)["properties"]["id"] for u in users)


@pytest.fixture
def capacity() -> Iterator[CapacityEndpoint]:
    with CapacityEndpoint() as server:
        yield server


@pytest.mark.parametrize("processes", [0, 2])
def test_kpl_on_moto_every_event_once_on_its_own_shard(moto_server, tmp_path, processes):
    client = boto_client("kinesis", moto_server.url)
    stream = unique_name("kpl")
    create_kinesis_stream(client, stream, shards=3)
    count = 1500
    # moto loses records when one stream is written over several connections at once.
    config = base_config(
        moto_server.url,
        stream_name=stream,
        aggregation="kpl",
        max_concurrent_requests=1,
        mapping_processes=processes,
    )
    run = run_target(config, _orders(count), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    stored = read_kinesis(client, stream)
    users = deaggregate((r.shard_id, r.partition_key, r.data) for r in stored)
    assert _ids(users) == Counter(range(count)), "every event once, as the deaggregation module reads it"
    assert misplaced(users, shard_ranges(client, stream)) == [], "a user record on a shard the KCL would drop it from"
    assert len(stored) < count / 50, f"{len(stored)} AWS records for {count} events: not packed"
    summary = run.summary(f"kinesis:{stream}")
    assert summary["records_sent"] == count
    assert summary["aws_records"] == len(stored)
    assert summary["billed_units"] < count / 10
    assert run.states[-1] == {"offset": count}
    keys = {u.partition_key for u in users}
    assert keys == {f"u{i}" for i in range(200)}, "each event keeps its own partition key"
    ids = [json.loads(u.data)["messageId"] for u in users]
    assert len(set(ids)) == count, "each event keeps its own messageId"


def test_kpl_on_kinesalite_keeps_per_key_order(kinesalite_server, tmp_path):
    client = boto_client("kinesis", kinesalite_server.url)
    stream = unique_name("kplorder")
    create_kinesis_stream(client, stream, shards=4)
    count = 2000
    config = base_config(kinesalite_server.url, stream_name=stream, aggregation="kpl", ordering="per_key")
    run = run_target(config, _orders(count, users=30), endpoint=kinesalite_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    users = deaggregate((r.shard_id, r.partition_key, r.data) for r in read_kinesis(client, stream))
    assert _ids(users) == Counter(range(count))
    assert misplaced(users, shard_ranges(client, stream)) == []
    by_key: dict[str, list[int]] = {}
    for user in users:  # read in stream order per shard; a key has one shard
        by_key.setdefault(user.partition_key, []).append(json.loads(user.data)["properties"]["id"])
    assert all(ids == sorted(ids) for ids in by_key.values()), "a key's events out of input order"


def test_kpl_sends_an_event_too_large_to_share_as_an_ordinary_record(kinesalite_server, tmp_path):
    client = boto_client("kinesis", kinesalite_server.url)
    stream = unique_name("kplbig")
    create_kinesis_stream(client, stream, shards=1)
    lines = [ORDERS, *(record("orders", {"id": i, "user_id": "u", "note": "n"}) for i in range(10))]
    lines.append(record("orders", {"id": 10, "user_id": "u", "note": "y" * 60_000}))  # above 51,200 bytes
    lines.extend(record("orders", {"id": i, "user_id": "u", "note": "n"}) for i in range(11, 20))
    config = base_config(kinesalite_server.url, stream_name=stream, aggregation="kpl", ordering="per_key")
    run = run_target(config, singer_lines(*lines), endpoint=kinesalite_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    stored = read_kinesis(client, stream)
    big = [r for r in stored if len(r.data) > 60_000]
    assert len(big) == 1 and json.loads(big[0].data)["properties"]["id"] == 10, "the large event alone, unpacked"
    users = deaggregate((r.shard_id, r.partition_key, r.data) for r in stored)
    assert [json.loads(u.data)["properties"]["id"] for u in users] == list(range(20)), "in input order"


@pytest.mark.slow
def test_kpl_at_one_shards_capacity_nothing_lost(capacity, tmp_path):
    stream = unique_name("kplcap")
    capacity.create_stream(stream, shards=1)
    count = 6000  # 6 s of the shard's records limit unpacked; about 3 s packed
    config = base_config(capacity.url, stream_name=stream, aggregation="kpl")
    run = run_target(config, _orders(count), endpoint=capacity.url, tmp_path=tmp_path, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    stored = capacity.records(stream)
    users = deaggregate((r.shard_id, r.partition_key, r.data) for r in stored)
    assert _ids(users) == Counter(range(count))
    stats = capacity.stats(stream)
    refused = sum(stats["refused"].values())
    assert refused <= 0.05 * stats["offered"], stats
    # Each aggregate is one record of the shard's 1,000 a second, and about 51 KB of its 1 MiB.
    assert stats["accepted"] == len(stored) < count / 50


@pytest.mark.slow
def test_kpl_follows_a_reshard_mid_run_and_packs_by_the_new_map(capacity, tmp_path):
    """The map read at start goes stale a second in: aggregates built after it must hold only
    events of the shard they land on, or the KCL drops the others."""
    stream = unique_name("kplsplit")
    capacity.create_stream(stream, shards=1)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(base_config(capacity.url, stream_name=stream, aggregation="kpl")))
    count = 12000
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [TARGET, "--config", str(config)], stdin=subprocess.PIPE, stdout=out, stderr=err, env=aws_env(capacity.url)
        )
    assert proc.stdin is not None
    stdin = proc.stdin
    feeder = threading.Thread(target=lambda: (stdin.write(_orders(count).encode()), stdin.close()), daemon=True)
    feeder.start()
    deadline = time.monotonic() + 60
    while capacity.stats(stream)["accepted"] < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    children = capacity.reshard(stream, 3)
    proc.wait(timeout=180)
    feeder.join(timeout=10)
    stderr = err_path.read_text()
    assert proc.returncode == 0, stderr[-3000:]
    assert "the shard map changed (3 open shards)" in stderr
    users = deaggregate((r.shard_id, r.partition_key, r.data) for r in capacity.records(stream))
    stray = misplaced(users, shard_ranges(boto_client("kinesis", capacity.url), stream))
    kcl_view = [u for u in users if u not in stray]
    assert _ids(kcl_view) == Counter(range(count)), "what the KCL hands out: every event once"
    # Aggregates in flight when the stream split landed on a child shard with events of its sibling:
    # those events were sent again; a consumer that does not check ranges sees them twice.
    assert set(_ids(users)) == set(range(count))
    resent = [line for line in stderr.splitlines() if "summary kinesis:" in line]
    assert f"resent_after_reshard={len(stray)}" in resent[0] if stray else "resent_after_reshard" not in resent[0]
    assert all(any(u.shard_id == child for u in users) for child in children), "the new shards took aggregates"


def test_kpl_dead_letters_hold_the_events_not_the_packed_bytes(capacity, tmp_path):
    stream = unique_name("kpldead")
    capacity.create_stream(stream, shards=2)
    capacity.deny("PutRecords")
    dead = tmp_path / "dead.jsonl"
    count = 300
    config = base_config(capacity.url, stream_name=stream, aggregation="kpl", dead_letter_path=str(dead))
    run = run_target(config, _orders(count), endpoint=capacity.url, tmp_path=tmp_path)
    assert run.returncode != 0
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(letters) == count, "one dead letter per event"
    events = [letter["record"] for letter in letters]  # the event itself, not packed bytes
    assert sorted(e["properties"]["id"] for e in events) == list(range(count))
    assert all(letter["partition_key"] == event["userId"] for letter, event in zip(letters, events, strict=True))
    assert run.summary(f"kinesis:{stream}")["failed"] == count
    assert run.states == [], "nothing acknowledged, nothing claimed"


def test_lines_on_firehose_packs_events_into_few_records(moto_server, tmp_path):
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    stream, bucket = unique_name("lines"), unique_name("bucket")
    create_firehose_to_s3(firehose, s3, stream, bucket)
    count = 1200
    config = base_config(
        moto_server.url, stream_name=stream, service="firehose", aggregation="lines", max_concurrent_requests=1
    )
    run = run_target(config, _orders(count), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    events = [json.loads(line) for line in split_lines(read_firehose_s3(s3, bucket))]
    assert Counter(e["properties"]["id"] for e in events) == Counter(range(count))
    summary = run.summary(f"firehose:{stream}")
    assert summary["records_sent"] == count
    assert summary["aws_records"] == 3, "500 events a record at most"
    # ~450-byte events alone would be billed one 5 KB unit each; packed, by their bytes.
    assert summary["billed_units"] <= 0.12 * count


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"aggregation": "lines"}, "setting 'aggregation': lines is for firehose streams"),
        (
            {"stream_name": None, "destinations": [{"event": "*", "stream": "s", "aggregation": "lines"}]},
            "setting 'destinations[0].aggregation': lines is not for kinesis streams",
        ),
        ({"aggregation": "zip"}, "setting 'aggregation' must be one of none, kpl, lines"),
    ],
)
def test_aggregation_that_does_not_fit_the_service_is_refused(moto_server, tmp_path, settings, expected):
    config = {**base_config(moto_server.url, stream_name="s", preflight_check=False), **settings}
    config = {k: v for k, v in config.items() if v is not None}
    run = run_target(config, singer_lines(ORDERS), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    assert expected in run.stderr, run.stderr[-2000:]


@pytest.mark.slow
def test_aggregation_limits_shape_what_lands(moto_server, kinesalite_server, tmp_path):
    """aggregation_max_records (Firehose lines) and aggregation_max_bytes (KPL), read back."""
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    stream, bucket = unique_name("lines100"), unique_name("bucket")
    create_firehose_to_s3(firehose, s3, stream, bucket)
    config = base_config(
        moto_server.url,
        stream_name=stream,
        service="firehose",
        aggregation="lines",
        aggregation_max_records=100,
        max_concurrent_requests=1,
    )
    run = run_target(config, _orders(1200), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    events = [json.loads(line) for line in split_lines(read_firehose_s3(s3, bucket))]
    assert Counter(e["properties"]["id"] for e in events) == Counter(range(1200))
    assert run.summary(f"firehose:{stream}")["aws_records"] == 12, "100 events a record"

    kinesis = boto_client("kinesis", kinesalite_server.url)
    k_stream = unique_name("kpl10k")
    create_kinesis_stream(kinesis, k_stream, shards=2)
    config = base_config(kinesalite_server.url, stream_name=k_stream, aggregation="kpl", aggregation_max_bytes=10_000)
    run = run_target(config, _orders(1200), endpoint=kinesalite_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    stored = read_kinesis(kinesis, k_stream)
    assert max(len(r.data) for r in stored) <= 10_000
    assert len(stored) >= 1200 * 450 // 10_000, "packed to the smaller limit, not the default 51,200"
    users = deaggregate((r.shard_id, r.partition_key, r.data) for r in stored)
    assert _ids(users) == Counter(range(1200))
