"""Writing at the stream's capacity, through the real CLI, against an endpoint that refuses the way
AWS does beyond each shard's 1,000 records and 1 MiB a second (tests/support/capacity_endpoint.py).

Each test reads back what the endpoint stored: nothing lost, nothing twice, per-key order where it
was asked for; and checks from the endpoint's own counts that the target paced itself instead of
hammering the stream. Efficiency against capacity is a benchmark figure (bench/), not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from target_kinesis.delivery.budget import BURST_SECONDS
from tests.support.capacity_endpoint import CapacityEndpoint
from tests.support.readback import unique_name
from tests.support.servers import aws_env
from tests.support.target_cli import TARGET, base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

ORDERS = schema(
    "orders",
    {"id": {"type": "integer"}, "user_id": {"type": "string"}, "note": {"type": "string"}},
    ["id"],
)
#: About 450 bytes an event, as the benchmark's orders.
NOTE = "x" * 200


@pytest.fixture
def endpoint() -> Iterator[CapacityEndpoint]:
    with CapacityEndpoint() as server:
        yield server


def _orders(count: int, users: int = 1000, *, hot: float = 0.0, start: int = 0) -> str:
    """`count` order records; with `hot`, that share of them is for one user (one partition key)."""
    lines: list[dict[str, Any]] = [ORDERS]
    for i in range(start, start + count):
        user = "hot-user" if hot and (i % 100) < hot * 100 else f"u{i % users}"
        lines.append(record("orders", {"id": i, "user_id": user, "note": NOTE}))
        if (i + 1) % 1000 == 0:
            lines.append(state({"offset": i + 1}))
    lines.append(state({"offset": start + count}))
    return singer_lines(*lines)


def _landed(endpoint: CapacityEndpoint, stream: str) -> list[dict[str, Any]]:
    return [json.loads(r.data) for r in endpoint.records(stream)]


def _ids(events: list[dict[str, Any]]) -> Counter[int]:
    return Counter(event["properties"]["id"] for event in events)


def _assert_paced(accepts: dict[str, Any], count: int, rate: float) -> None:
    """`count` records went at no more than `rate` a second, measured where AWS counts it: from
    the first accepted record to the last (the run's start-up is no part of it). At most
    BURST_SECONDS of the rate go at once, the rest at the rate."""
    least = (count - BURST_SECONDS * rate) / rate
    assert accepts["last_accept"] - accepts["first_accept"] > 0.9 * least, f"{count} records at {rate} a second"


def _run(endpoint: CapacityEndpoint, tmp_path: Path, text: str, timeout: float = 180, **settings: Any) -> Any:
    return run_target(
        base_config(endpoint.url, **settings), text, endpoint=endpoint.url, tmp_path=tmp_path, timeout=timeout
    )


@pytest.mark.slow
@pytest.mark.parametrize("shards", [1, 2])
def test_paced_to_the_shards_nothing_lost_few_refused(endpoint, tmp_path, shards):
    stream = unique_name("cap")
    endpoint.create_stream(stream, shards=shards)
    count = 2500 * shards
    run = _run(endpoint, tmp_path, _orders(count), stream_name=stream)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _ids(_landed(endpoint, stream)) == Counter(range(count)), "every record once"
    stats = endpoint.stats(stream)
    refused = sum(stats["refused"].values())
    assert refused <= 0.05 * stats["offered"], f"{refused} of {stats['offered']} offered were refused"
    assert run.states[-1] == {"offset": count}
    assert f"capacity kinesis:{stream}: {shards} shard(s)" in run.stderr


@pytest.mark.parametrize("processes", [0, 2], ids=["one-process", "mapping-processes"])
def test_a_burst_that_fits_a_second_of_the_shards_goes_in_full_calls(endpoint, tmp_path, processes):
    """1,300 records into an idle 2-shard stream (2,000 records a second): AWS counts per second,
    so they fit at once, in calls of 500 (3 calls; a fourth where a chunk boundary cuts a call)."""
    stream = unique_name("burst")
    endpoint.create_stream(stream, shards=2)
    run = _run(endpoint, tmp_path, _orders(1300), stream_name=stream, mapping_processes=processes)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _ids(_landed(endpoint, stream)) == Counter(range(1300))
    stats = endpoint.stats(stream)
    assert stats["refused"] == {}, stats
    assert stats["calls"] <= 4, f"{stats['calls']} calls for 1,300 records"


@pytest.mark.slow
def test_per_key_order_holds_while_paced_and_refused(endpoint, tmp_path):
    """Another producer takes most of the shard, so records are refused, and per_key must hold."""
    stream = unique_name("order")
    endpoint.create_stream(stream, shards=2)
    endpoint.other_producer(stream, 0.6)
    count = 2000
    run = _run(endpoint, tmp_path, _orders(count, users=20), stream_name=stream, ordering="per_key")
    assert run.returncode == 0, run.stderr[-3000:]
    events = _landed(endpoint, stream)
    assert _ids(events) == Counter(range(count))
    by_user: dict[str, list[int]] = {}
    for event in events:  # the endpoint's records are in stream order per shard; a key has one shard
        by_user.setdefault(event["userId"], []).append(event["properties"]["id"])
    assert all(ids == sorted(ids) for ids in by_user.values()), "a key's records out of input order"


def test_a_reshard_mid_run_is_followed(endpoint, tmp_path):
    stream = unique_name("reshard")
    endpoint.create_stream(stream, shards=1)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(base_config(endpoint.url, stream_name=stream)))
    # Output to files: the feeder closes stdin, which communicate() would then try to flush.
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err_file:
        proc = subprocess.Popen(
            [TARGET, "--config", str(config)],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err_file,
            env=aws_env(endpoint.url),
        )
    assert proc.stdin is not None
    count = 6000
    text = _orders(count).encode()

    def feed() -> None:
        assert proc.stdin is not None
        proc.stdin.write(text)
        proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    deadline = time.monotonic() + 60
    while endpoint.stats(stream)["accepted"] < 1500 and time.monotonic() < deadline:
        time.sleep(0.05)
    children = endpoint.reshard(stream, 3)  # a second into the run: the map the target read is stale
    proc.wait(timeout=180)
    feeder.join(timeout=10)
    err = err_path.read_bytes()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert _ids(_landed(endpoint, stream)) == Counter(range(count))
    assert "the shard map changed (3 open shards)" in err.decode()
    per_shard = endpoint.stats(stream)["shards"]
    assert all(per_shard[child]["accepted"] > 0 for child in children), "the new shards took records"


@pytest.mark.slow
def test_a_hot_key_does_not_hold_back_the_other_shards(endpoint, tmp_path):
    """30% of events on one key, 4 shards: the other shards' records are not queued behind it."""
    stream = unique_name("hot")
    endpoint.create_stream(stream, shards=4)
    count = 6000
    run = _run(endpoint, tmp_path, _orders(count, hot=0.3), stream_name=stream)
    assert run.returncode == 0, run.stderr[-3000:]
    records = endpoint.records(stream)
    assert _ids([json.loads(r.data) for r in records]) == Counter(range(count))
    hot_shard = next(r.shard_id for r in records if json.loads(r.data)["userId"] == "hot-user")
    stats = endpoint.stats(stream)
    # 1,800 hot records take their shard at least 1.8 s; the rest spread over 4 shards must not wait for it:
    # the other shards finish well before the hot one.
    cold_done = max(s["last_accept"] for sid, s in stats["shards"].items() if sid != hot_shard and s["accepted"])
    hot_done = stats["shards"][hot_shard]["last_accept"]
    assert hot_done - cold_done > 0.5, (hot_done, cold_done)
    assert sum(stats["refused"].values()) <= 0.05 * stats["offered"]


@pytest.mark.slow
def test_a_shard_shared_with_another_producer_finishes(endpoint, tmp_path):
    """The other producer leaves 25% of the shard: never fails for being busy, few refusals."""
    stream = unique_name("shared")
    endpoint.create_stream(stream, shards=1)
    endpoint.other_producer(stream, 0.75)
    count = 1500
    run = _run(endpoint, tmp_path, _orders(count), stream_name=stream, stall_timeout_seconds=60)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _ids(_landed(endpoint, stream)) == Counter(range(count))
    stats = endpoint.stats(stream)
    assert sum(stats["refused"].values()) <= 0.2 * stats["offered"], stats
    summary = run.summary(f"kinesis:{stream}")
    assert summary["failed"] == 0 and summary["records_sent"] == count


def test_rate_limit_percent_leaves_the_rest_of_the_shard(endpoint, tmp_path):
    stream = unique_name("share")
    endpoint.create_stream(stream, shards=1)
    count = 1000
    run = _run(endpoint, tmp_path, _orders(count), stream_name=stream, rate_limit_percent=50)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _ids(_landed(endpoint, stream)) == Counter(range(count))
    # Half a shard: 500 records a second. Unpaced, the shard (1,000 a second, as much at once)
    # takes all 1,000 in a tenth of a second.
    (shard,) = endpoint.stats(stream)["shards"].values()
    _assert_paced(shard, count, 500)
    assert "500 records/s" in run.stderr


@pytest.mark.slow
def test_firehose_at_its_quota(endpoint, tmp_path):
    """A delivery stream of 1 MiB/s: paced by what it refuses (ServiceUnavailableException), counted."""
    stream = unique_name("fh")
    endpoint.create_delivery_stream(stream, bytes_per_second=1024 * 1024)
    count = 20000  # about 9 s: the first second's overshoot (its quota is not known) is a small part
    run = _run(endpoint, tmp_path, _orders(count), stream_name=stream, service="firehose")
    assert run.returncode == 0, run.stderr[-3000:]
    assert _ids(_landed(endpoint, stream)) == Counter(range(count))
    stats = endpoint.stats(stream)
    summary = run.summary(f"firehose:{stream}")
    refused = sum(stats["refused"].values())
    assert summary["refused"] == refused, "the summary counts every refusal"
    assert refused <= 0.1 * stats["offered"], stats


@pytest.mark.slow
def test_firehose_caps_are_kept(endpoint, tmp_path):
    stream = unique_name("fhcap")
    endpoint.create_delivery_stream(stream)
    count, cap = 1000, 400
    run = _run(endpoint, tmp_path, _orders(count), stream_name=stream, service="firehose", max_records_per_second=cap)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _ids(_landed(endpoint, stream)) == Counter(range(count))
    stats = endpoint.stats(stream)
    assert stats["refused"] == {}
    # (Uncapped, this stream's slow start takes the 1,000 records in well under a second.)
    _assert_paced(stats, count, cap)


@pytest.mark.slow
def test_without_list_shards_it_still_delivers_with_one_warning(endpoint, tmp_path):
    stream = unique_name("nolist")
    endpoint.create_stream(stream, shards=2)
    endpoint.deny("ListShards")
    count = 3000
    run = _run(endpoint, tmp_path, _orders(count), stream_name=stream)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _ids(_landed(endpoint, stream)) == Counter(range(count))
    assert run.stderr.count("Cannot read the shard map") == 1
    assert "kinesis:ListShards is needed" in run.stderr


@pytest.mark.slow
def test_a_stream_that_accepts_nothing_fails_after_the_stall_timeout(endpoint, tmp_path):
    stream = unique_name("stall")
    endpoint.create_stream(stream, shards=2)
    endpoint.other_producer(stream, 1.0)  # another producer takes everything
    started = time.monotonic()
    run = _run(endpoint, tmp_path, _orders(300), stream_name=stream, stall_timeout_seconds=3)
    assert run.returncode == 1
    assert time.monotonic() - started < 60
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr[-3000:]
    assert "nothing accepted for" in errors[0] and "2 shard(s)" in errors[0] and "add shards" in errors[0]
    assert run.states == []
    assert run.summary(f"kinesis:{stream}")["failed"] == 300
