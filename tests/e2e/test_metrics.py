"""The SDK's METRIC lines, from the real CLI: summed over a run, they are the run's own counts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.capacity_endpoint import CapacityEndpoint
from tests.support.readback import create_kinesis_stream, unique_name
from tests.support.servers import boto_client
from tests.support.target_cli import TargetRun, base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e


def _metrics(run: TargetRun) -> list[dict[str, Any]]:
    return [json.loads(line.split("METRIC: ", 1)[1]) for line in run.stderr.splitlines() if "METRIC: " in line]


def _sum(points: list[dict[str, Any]], metric: str, **tags: Any) -> int:
    return sum(
        p["value"] for p in points if p["metric"] == metric and all(p["tags"].get(k) == v for k, v in tags.items())
    )


def _two_streams(orders: int, users: int) -> str:
    lines: list[dict[str, Any]] = [
        schema("orders", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"]),
        schema("users", {"id": {"type": "integer"}}, ["id"]),
    ]
    for i in range(max(orders, users)):
        if i < orders:
            lines.append(record("orders", {"id": i, "user_id": f"u{i % 50}"}))
        if i < users:
            lines.append(record("users", {"id": i}))
        if i % 400 == 399:
            lines.append(state({"at": i}))
    lines.append(state({"at": "end"}))
    return singer_lines(*lines)


@pytest.fixture
def capacity() -> Iterator[CapacityEndpoint]:
    with CapacityEndpoint() as server:
        yield server


@pytest.mark.parametrize("processes", [0, 2])
def test_record_count_adds_up_to_the_records_read_per_stream(kinesalite_server, tmp_path, processes):
    client = boto_client("kinesis", kinesalite_server.url)
    stream = unique_name("metrics")
    create_kinesis_stream(client, stream, shards=2)
    config = base_config(kinesalite_server.url, stream_name=stream, mapping_processes=processes)
    run = run_target(config, _two_streams(2300, 700), endpoint=kinesalite_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    points = _metrics(run)
    by_stream = Counter[str]()
    for point in points:
        if point["metric"] == "record_count":
            by_stream[point["tags"]["stream"]] += point["value"]
    assert by_stream == {"orders": 2300, "users": 700}
    summary = run.summary(f"kinesis:{stream}")
    assert _sum(points, "http_request_count", endpoint=f"kinesis:{stream}", status="succeeded") == summary["calls"]
    durations = [p for p in points if p["metric"] == "http_request_duration"]
    assert durations and sum(p["tags"]["calls"] for p in durations) == summary["calls"]
    assert all(0 < p["value"] < 60 for p in durations)


@pytest.mark.slow
def test_refused_and_retried_records_add_up_to_the_summary(capacity, tmp_path):
    stream = unique_name("refused")
    capacity.create_stream(stream, shards=1)
    capacity.other_producer(stream, 0.7)  # refusals the target cannot foresee
    config = base_config(capacity.url, stream_name=stream)
    run = run_target(config, _two_streams(2500, 0), endpoint=capacity.url, tmp_path=tmp_path, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    points = _metrics(run)
    refused = capacity.stats(stream)["refused"]
    assert refused, "the endpoint refused nothing: the test shows nothing"
    for code, count in refused.items():
        assert _sum(points, "refused_records", endpoint=f"kinesis:{stream}", error_code=code) == count
    summary = run.summary(f"kinesis:{stream}")
    assert _sum(points, "retried_records", endpoint=f"kinesis:{stream}") == summary["retried_records"]


def test_failed_calls_are_counted_as_failed(moto_server, tmp_path):
    stream = unique_name("absent")
    config = base_config(moto_server.url, stream_name=stream, preflight_check=False, max_retries=1)
    run = run_target(config, _two_streams(10, 0), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    points = _metrics(run)
    assert _sum(points, "http_request_count", endpoint=f"kinesis:{stream}", status="failed") >= 1
    assert _sum(points, "http_request_count", endpoint=f"kinesis:{stream}", status="succeeded") == 0


def test_metrics_are_quiet_where_the_sdk_is(kinesalite_server, tmp_path):
    client = boto_client("kinesis", kinesalite_server.url)
    stream = unique_name("quiet")
    create_kinesis_stream(client, stream)
    config = base_config(kinesalite_server.url, stream_name=stream)
    run = run_target(
        config,
        _two_streams(50, 0),
        endpoint=kinesalite_server.url,
        tmp_path=tmp_path,
        env={"TARGET_KINESIS_LOGLEVEL": "WARNING"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "METRIC" not in run.stderr
