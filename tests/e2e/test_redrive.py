"""`target-kinesis-redrive`, end to end with the real CLIs as subprocesses: records refused by
AWS (the fault proxy in front of moto) become dead letters, in a file and in moto's S3; the
redrive sends them again; every event is read back from the stream exactly once, with its
messageId and its bytes. A redrive whose sends fail again leaves its sources in place and
writes new dead letters: take out "delete only after every event is acknowledged" and the
failing-redrive tests fail.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.kpl_readback import deaggregate
from tests.support.readback import (
    create_firehose_to_s3,
    create_kinesis_stream,
    list_keys,
    read_firehose_s3,
    read_kinesis,
    split_lines,
    unique_name,
)
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import BIN, TargetRun, base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

REDRIVE = str(BIN / "target-kinesis-redrive")
USERS = schema("users", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"])
FAST = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "max_retries": 1}
EVENTS = 40


def _input(n: int = EVENTS) -> str:
    return singer_lines(USERS, *(record("users", {"id": i, "user_id": f"u{i % 7}"}) for i in range(n)), state(1))


def _redrive(config: dict[str, Any], *args: str, endpoint: str, tmp_path: Path) -> TargetRun:
    config_file = tmp_path / f"redrive-{unique_name('c')}.json"
    config_file.write_text(json.dumps(config))
    done = subprocess.run(
        [REDRIVE, "--config", str(config_file), *args],
        capture_output=True,
        env=aws_env(endpoint),
        timeout=120,
        check=False,
    )
    return TargetRun(done.returncode, done.stdout.decode(), done.stderr.decode())


def _metrics(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line.split("METRIC: ", 1)[1]) for line in stderr.splitlines() if "METRIC: " in line]


def _dead_letter_count(stderr: str, code: str) -> int:
    return sum(
        p["value"]
        for p in _metrics(stderr)
        if p["metric"] == "dead_lettered_records" and p["tags"].get("error_code") == code
    )


def _refused_run(moto_server: Any, fault_proxy: Any, tmp_path: Path, stream: str, dead_letter_path: str) -> TargetRun:
    """Every record refused (InternalFailure) past max_retries: all of them dead-lettered."""
    proxy = fault_proxy(record_failure_rate=1.0, record_error_code="InternalFailure")
    config = base_config(proxy.url, stream_name=stream, dead_letter_path=dead_letter_path, **FAST)
    run = run_target(config, _input(), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert run.states == []
    # The target's own METRIC lines count its dead letters by error code.
    assert _dead_letter_count(run.stderr, "InternalFailure") == EVENTS, run.stderr[-3000:]
    return run


def _letter_events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line)["record"] for line in body.splitlines() if line.strip()]


def _raw_events(body: bytes) -> list[bytes]:
    """The event bytes embedded in each dead-letter line (the record field is last)."""
    return [line.split(b',"record":', 1)[1][:-1] for line in body.splitlines() if line.strip()]


def _assert_read_back_once(kinesis: Any, stream: str, expected: list[bytes]) -> None:
    landed = [r.data for r in read_kinesis(kinesis, stream)]
    assert sorted(landed) == sorted(expected), "every event exactly once, its bytes unchanged"
    ids = [json.loads(d)["messageId"] for d in landed]
    assert len(set(ids)) == len(ids) == EVENTS


def test_file_dead_letters_redriven_once_each_then_the_file_is_deleted(moto_server, fault_proxy, tmp_path):
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("redrive")
    create_kinesis_stream(kinesis, stream, shards=2)
    dead = tmp_path / "dead.jsonl"
    _refused_run(moto_server, fault_proxy, tmp_path, stream, str(dead))
    body = dead.read_bytes()
    assert len(_letter_events(body)) == EVENTS
    assert read_kinesis(kinesis, stream) == []

    run = _redrive(
        base_config(moto_server.url, stream_name=stream), str(dead), endpoint=moto_server.url, tmp_path=tmp_path
    )

    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["sent"] == EVENTS and report["failed_again"] == 0
    assert report["sources"] == [{"source": str(dead), "events": EVENTS, "sent": EVENTS, "status": "deleted"}]
    _assert_read_back_once(kinesis, stream, _raw_events(body))
    assert not dead.exists(), "deleted once every event was acknowledged"
    redriven = [p for p in _metrics(run.stderr) if p["metric"] == "redriven_records"]
    assert redriven == [
        {
            "type": "counter",
            "metric": "redriven_records",
            "value": EVENTS,
            "tags": {"endpoint": f"kinesis:{stream}", "error_code": "InternalFailure", "status": "succeeded"},
        }
    ]


def _dead_letters_in_s3(moto_server, fault_proxy, tmp_path) -> tuple[Any, Any, str, str]:
    """A stream, and a bucket holding under dead/ the dead letters of a run whose records were refused."""
    kinesis = boto_client("kinesis", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    stream = unique_name("redrive")
    create_kinesis_stream(kinesis, stream)
    bucket = unique_name("dead")
    s3.create_bucket(Bucket=bucket)
    _refused_run(moto_server, fault_proxy, tmp_path, stream, f"s3://{bucket}/dead/")
    return kinesis, s3, stream, bucket


def test_s3_dead_letters_redriven_once_each_then_the_objects_are_deleted(moto_server, fault_proxy, tmp_path):
    kinesis, s3, stream, bucket = _dead_letters_in_s3(moto_server, fault_proxy, tmp_path)
    keys = list_keys(s3, bucket, "dead/")
    assert keys
    bodies = [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
    expected = [raw for body in bodies for raw in _raw_events(body)]
    assert len(expected) == EVENTS

    config = base_config(moto_server.url, stream_name=stream, aggregation="kpl")
    run = _redrive(config, f"s3://{bucket}/dead/", endpoint=moto_server.url, tmp_path=tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["sent"] == EVENTS
    assert list_keys(s3, bucket, "dead/") == []
    # aggregation=kpl packs the events (the target's aggregation, reused); AWS's deaggregator
    # unpacks them: still each once, bytes unchanged.
    stored = read_kinesis(kinesis, stream)
    assert len(stored) < EVENTS, "packed into KPL aggregates"
    landed = [u.data for u in deaggregate((r.shard_id, r.partition_key, r.data) for r in stored)]
    assert sorted(landed) == sorted(expected)


def test_a_failing_redrive_leaves_the_file_and_writes_new_dead_letters(moto_server, fault_proxy, tmp_path):
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("redrive")
    create_kinesis_stream(kinesis, stream)
    dead = tmp_path / "dead.jsonl"
    _refused_run(moto_server, fault_proxy, tmp_path, stream, str(dead))
    body = dead.read_bytes()
    again = tmp_path / "again.jsonl"
    proxy = fault_proxy(record_failure_rate=1.0, record_error_code="InternalFailure")

    run = _redrive(
        base_config(proxy.url, stream_name=stream, **FAST),
        str(dead),
        "--dead-letter-path",
        str(again),
        endpoint=proxy.url,
        tmp_path=tmp_path,
    )

    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("target-kinesis-redrive: ")]
    assert "InternalFailure" in line and str(dead) in line and str(again) in line, line
    assert "testing" not in line
    assert dead.read_bytes() == body, "the source stays, whole, until every event in it is acknowledged"
    assert sorted(_raw_events(again.read_bytes())) == sorted(_raw_events(body))
    assert json.loads(run.stdout)["sources"][0]["status"] == "left"
    assert _dead_letter_count(run.stderr, "InternalFailure") == EVENTS
    assert read_kinesis(kinesis, stream) == []

    report = json.loads(run.stdout)
    assert (report["sent"], report["failed_again"], report["not_sent"]) == (0, EVENTS, 0)

    # Once the stream takes them, the source left in place is redriven again, whole.
    run = _redrive(
        base_config(moto_server.url, stream_name=stream), str(dead), endpoint=moto_server.url, tmp_path=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_read_back_once(kinesis, stream, _raw_events(body))
    assert not dead.exists()


def test_a_failing_redrive_leaves_the_s3_objects(moto_server, fault_proxy, tmp_path):
    _, s3, stream, bucket = _dead_letters_in_s3(moto_server, fault_proxy, tmp_path)
    before = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in list_keys(s3, bucket, "dead/")}
    proxy = fault_proxy(record_failure_rate=1.0, record_error_code="InternalFailure")

    run = _redrive(
        base_config(proxy.url, stream_name=stream, dead_letter_path=f"s3://{bucket}/again/", **FAST),
        f"s3://{bucket}/dead/",
        endpoint=proxy.url,
        tmp_path=tmp_path,
    )

    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    after = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in list_keys(s3, bucket, "dead/")}
    assert after == before
    new = [
        raw
        for k in list_keys(s3, bucket, "again/")
        for raw in _raw_events(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
    ]
    assert sorted(new) == sorted(raw for body in before.values() for raw in _raw_events(body))


def test_errors_are_one_line_without_traceback(moto_server, tmp_path):
    missing = tmp_path / "nowhere.jsonl"
    config = base_config(moto_server.url, stream_name="s", aws_secret_access_key="Redrive-Secret-271828")
    run = _redrive(config, str(missing), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip() == f"target-kinesis-redrive: {missing}: no such dead-letter file"

    bad = tmp_path / "bad.jsonl"
    bad.write_text("not a dead letter\n")
    run = _redrive(config, str(bad), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip() == f"target-kinesis-redrive: {bad} line 1 is not JSON: not a dead letter"
    assert bad.exists()

    bucket = unique_name("nobucket")
    run = _redrive(config, f"s3://{bucket}/dead/", endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("target-kinesis-redrive: ") and bucket in line and "does not exist" in line, line
    assert "Redrive-Secret" not in run.stderr and "Traceback" not in run.stderr


def test_stream_flag_sends_every_event_to_another_destination_firehose_lines_and_all(
    moto_server, fault_proxy, tmp_path
):
    """--stream/--service: Kinesis dead letters into a Firehose delivery stream, each event once,
    with the newline Firehose records get (the dead letter holds the event without it)."""
    stream = unique_name("redrive")
    create_kinesis_stream(boto_client("kinesis", moto_server.url), stream)
    dead = tmp_path / "dead.jsonl"
    _refused_run(moto_server, fault_proxy, tmp_path, stream, str(dead))
    body = dead.read_bytes()
    firehose, s3 = boto_client("firehose", moto_server.url), boto_client("s3", moto_server.url)
    delivery, bucket = unique_name("fh"), unique_name("fh-bucket")
    create_firehose_to_s3(firehose, s3, delivery, bucket)

    run = _redrive(
        base_config(moto_server.url, stream_name=stream, aggregation="lines", service="firehose"),
        str(dead),
        "--stream",
        delivery,
        "--service",
        "firehose",
        "--keep",
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["sources"][0]["status"] == "kept"
    assert dead.read_bytes() == body, "--keep: never deleted"
    landed = split_lines(read_firehose_s3(s3, bucket))
    assert sorted(landed) == sorted(_raw_events(body))


def test_the_new_dead_letters_may_not_be_the_file_redriven(moto_server, tmp_path):
    dead = tmp_path / "dead.jsonl"
    dead.write_text('{"service":"kinesis","stream":"s","record":{"messageId":"m"}}\n')
    config = base_config(moto_server.url, stream_name="s", dead_letter_path=str(dead))
    run = _redrive(config, str(dead), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 2
    assert "is being redriven" in run.stderr and "Traceback" not in run.stderr
    assert dead.exists()
