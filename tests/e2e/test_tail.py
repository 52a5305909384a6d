"""target-kinesis-tail as a subprocess against moto's server: what it prints of what landed."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator

from target_kinesis.tools.tail_printing import (
    format_record,
)
from tests.support.readback import create_firehose_to_s3, create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import REGION, aws_env, boto_client
from tests.unit.tools.test_tail import BIN, TAIL, _tail

pytestmark = pytest.mark.e2e


TARGET = str(BIN / "target-kinesis")


def _put_kinesis(client: Any, stream: str, records: list[bytes]) -> None:
    entries = [{"Data": data, "PartitionKey": f"key-{i}"} for i, data in enumerate(records)]
    answer = client.put_records(StreamName=stream, Records=entries)
    assert answer.get("FailedRecordCount", 0) == 0


def _expected_lines(records: list[bytes]) -> list[str]:
    return sorted(format_record(r) for r in records)


class Follower:
    """A tail subprocess whose stdout is read by a thread: a broken tail fails the test
    within a time-out instead of blocking it on a read forever."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [TAIL, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def take(self, count: int, timeout: float = 30) -> list[str]:
        """The next `count` lines; fails if they do not come in time or the tail exits."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while len(lines) < count:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"only {len(lines)} of {count} lines within {timeout:.0f} s") from None
            if line is None:
                raise AssertionError(f"the tail exited after {len(lines)} lines: {self._stderr()}")
            lines.append(line)
        return lines

    def finish(self, timeout: float = 60) -> tuple[list[str], str, int]:
        """(remaining lines, stderr, exit code) once the tail has exited by itself."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        rest: list[str] = []
        while True:
            line = self._lines.get_nowait()
            if line is None:
                return rest, self._stderr(), code
            rest.append(line)

    def _stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read() if self.process.poll() is not None else "(still running)"

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


SCHEMA = {
    "type": "SCHEMA",
    "stream": "users",
    "schema": {"type": "object", "properties": {"id": {"type": "integer"}, "userId": {"type": "string"}}},
    "key_properties": ["id"],
}


@pytest.mark.e2e
def test_tail_prints_every_record_of_every_shard_exactly_once(
    moto_server: Any, kinesis: Any, env: dict[str, str]
) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=2)
    records = [json.dumps({"n": i, "text": "é"}).encode() + b"\n" for i in range(60)] + [b"not json", b"\xff"]
    _put_kinesis(kinesis, stream, records)
    assert len({r.shard_id for r in read_kinesis(kinesis, stream)}) == 2  # the data really spans both shards

    result = _tail(env, "--stream", stream, "--endpoint-url", moto_server.url, "--region", REGION)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(lines) == _expected_lines(records)
    assert len(lines) == len(set(lines)) == 62
    assert all(json.loads(line) is not None for line in lines)


@pytest.mark.e2e
def test_tail_prints_each_event_of_an_aggregated_record(moto_server: Any, kinesis: Any, env: dict[str, str]) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=1)  # one shard: the order is the order put
    events = [json.dumps({"n": i, "text": "é"}).encode() for i in range(5)]
    aggregator = RecordAggregator()  # AWS's own KPL aggregate writer
    for i, event in enumerate(events[1:4]):
        assert aggregator.add_user_record(f"user-{i}", event) is None
    key, _, aggregate = aggregator.clear_and_get().get_contents()
    lines_record = b"".join(event + b"\n" for event in events[4:]) + b'{"n": 5}\n'
    kinesis.put_record(StreamName=stream, PartitionKey="plain", Data=events[0])
    kinesis.put_record(StreamName=stream, PartitionKey=key, Data=aggregate)
    kinesis.put_record(StreamName=stream, PartitionKey="lines", Data=lines_record)

    result = _tail(env, "--stream", stream, "--endpoint-url", moto_server.url, "--region", REGION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [format_record(e) for e in events] + ['{"n": 5}']


@pytest.mark.e2e
def test_show_keys_prints_each_events_shard_and_own_partition_key(
    moto_server: Any, kinesis: Any, env: dict[str, str]
) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=2)
    plain = [json.dumps({"n": i}).encode() for i in range(12)]
    _put_kinesis(kinesis, stream, plain)  # keys key-0 .. key-11, spread over both shards
    aggregator = RecordAggregator()  # AWS's own KPL aggregate writer
    user_events = [(f"user-{i}", json.dumps({"user": i}).encode()) for i in range(3)]
    for key, event in user_events:
        assert aggregator.add_user_record(key, event) is None
    aggregate_key, _, aggregate = aggregator.clear_and_get().get_contents()
    kinesis.put_record(StreamName=stream, PartitionKey=aggregate_key, Data=aggregate)
    stored = read_kinesis(kinesis, stream)
    assert len({r.shard_id for r in stored}) == 2  # the data really spans both shards
    expected = []
    for record in stored:  # what the server says: the shard of each record, and its key
        if record.partition_key == aggregate_key:  # each user record with its own key, not the aggregate's
            expected += [(record.shard_id, key, json.loads(event)) for key, event in user_events]
        else:
            expected.append((record.shard_id, record.partition_key, json.loads(record.data)))

    result = _tail(env, "--stream", stream, "--endpoint-url", moto_server.url, "--region", REGION, "--show-keys")
    assert result.returncode == 0, result.stderr
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(list(line) == ["shard", "partition_key", "event"] for line in shown)
    assert sorted((s["shard"], s["partition_key"], json.dumps(s["event"])) for s in shown) == sorted(
        (shard, key, json.dumps(event)) for shard, key, event in expected
    )
    assert all(s["shard"].startswith("shardId-") for s in shown)

    # Firehose (S3) has neither keys nor shards: a usage error, before any call
    firehose = _tail(env, "--stream", stream, "--service", "firehose", "--show-keys", "--endpoint-url", moto_server.url)
    assert firehose.returncode == 2
    assert firehose.stdout == ""
    assert firehose.stderr.count("\n") == 1 and "--show-keys" in firehose.stderr


@pytest.mark.e2e
def test_tail_limit_prints_that_many_distinct_records(moto_server: Any, kinesis: Any, env: dict[str, str]) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=2)
    records = [json.dumps({"n": i}).encode() for i in range(30)]
    _put_kinesis(kinesis, stream, records)

    result = _tail(env, "--stream", stream, "--endpoint-url", moto_server.url, "--limit", "7")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(set(lines)) == 7
    assert set(lines) <= {r.decode() for r in records}


@pytest.mark.e2e
def test_tail_from_latest_without_follow_prints_nothing(moto_server: Any, kinesis: Any, env: dict[str, str]) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=2)
    _put_kinesis(kinesis, stream, [b'{"old": true}'] * 4)
    result = _tail(env, "--stream", stream, "--endpoint-url", moto_server.url, "--from", "latest")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


@pytest.mark.e2e
def test_tail_uses_the_targets_config_for_endpoint_and_credentials(
    moto_server: Any, kinesis: Any, env: dict[str, str], tmp_path: Path
) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=2)
    _put_kinesis(kinesis, stream, [b'{"a": 1}', b'{"a": 2}'])
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "stream_name": stream,
                "endpoint_url": moto_server.url,
                "region": REGION,
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
                "role_arn": "arn:aws:iam::123456789012:role/writer",
                "external_id": "ext-123",
            }
        )
    )
    # --stream comes from the config's only destination; the role is assumed through moto's STS
    result = _tail(env, "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ['{"a": 1}', '{"a": 2}']

    # --endpoint-url overrides a config endpoint where nothing listens
    config.write_text(json.dumps({"stream_name": stream, "endpoint_url": "http://127.0.0.1:9", "region": REGION}))
    result = _tail(env, "--config", str(config), "--endpoint-url", moto_server.url)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


@pytest.mark.e2e
def test_follow_prints_records_written_after_it_started(moto_server: Any, kinesis: Any, env: dict[str, str]) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=2)
    before = [json.dumps({"phase": "before", "n": i}).encode() for i in range(3)]
    after = [json.dumps({"phase": "after", "n": i}).encode() for i in range(4)]
    _put_kinesis(kinesis, stream, before)
    with Follower(env, "--stream", stream, "--endpoint-url", moto_server.url, "--follow", "--limit", "7") as tail_:
        seen = tail_.take(len(before))  # it is caught up and polling now
        _put_kinesis(kinesis, stream, after)
        rest, err, code = tail_.finish()
    assert code == 0, err
    assert sorted(seen + rest) == sorted(r.decode() for r in before + after)


@pytest.mark.e2e
def test_ctrl_c_exits_0_quietly(moto_server: Any, kinesis: Any, env: dict[str, str]) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=1)
    _put_kinesis(kinesis, stream, [b'{"a": 1}'])
    with Follower(env, "--stream", stream, "--endpoint-url", moto_server.url, "--follow") as tail_:
        assert tail_.take(1) == ['{"a": 1}']
        time.sleep(0.5)
        tail_.process.send_signal(signal.SIGINT)
        rest, err, code = tail_.finish(timeout=30)
    assert code == 0
    assert rest == []
    assert err == ""


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--stream", "no-such-stream"], "kinesis stream 'no-such-stream'"),
        (
            ["--stream", "fh", "--service", "firehose", "--bucket", "no-such-bucket-tail"],
            "bucket 'no-such-bucket-tail'",
        ),
        (["--stream", "no-such-delivery", "--service", "firehose"], "firehose stream 'no-such-delivery'"),
    ],
)
def test_missing_stream_or_bucket_is_one_line_and_exit_1(
    moto_server: Any, env: dict[str, str], args: list[str], named: str
) -> None:
    result = _tail(env, *args, "--endpoint-url", moto_server.url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert named in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.e2e
def test_tail_prints_every_line_firehose_delivered(
    moto_server: Any, env: dict[str, str], delivery: tuple[Any, str, str]
) -> None:
    firehose, name, bucket = delivery
    batches = [[json.dumps({"batch": b, "n": i}).encode() + b"\n" for i in range(5)] for b in range(3)]
    for batch in batches:
        firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in batch])
    expected = sorted(r.decode().strip() for batch in batches for r in batch)

    result = _tail(
        env, "--stream", name, "--service", "firehose", "--bucket", bucket, "--endpoint-url", moto_server.url
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == expected

    # without --bucket/--prefix they come from DescribeDeliveryStream
    result = _tail(env, "--stream", name, "--service", "firehose", "--endpoint-url", moto_server.url)
    assert sorted(result.stdout.splitlines()) == expected

    result = _tail(env, "--stream", name, "--service", "firehose", "--endpoint-url", moto_server.url, "--limit", "4")
    assert len(set(result.stdout.splitlines()) & set(expected)) == 4

    result = _tail(
        env, "--stream", name, "--service", "firehose", "--bucket", bucket, "--prefix", "nothing/",
        "--endpoint-url", moto_server.url,
    )  # fmt: skip
    assert result.returncode == 0
    assert result.stdout == ""


@pytest.mark.e2e
def test_follow_on_firehose_prints_objects_delivered_later(
    moto_server: Any, env: dict[str, str], delivery: tuple[Any, str, str]
) -> None:
    firehose, name, _ = delivery
    firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b'{"old": 1}\n'}])
    args = ("--stream", name, "--service", "firehose", "--endpoint-url", moto_server.url, "--follow", "--limit", "3")
    with Follower(env, *args) as tail_:
        first = tail_.take(1)  # it has listed the bucket and is polling now
        new = [{"Data": b'{"new": 1}\n'}, {"Data": b'{"new": 2}\n'}]
        firehose.put_record_batch(DeliveryStreamName=name, Records=new)
        rest, err, code = tail_.finish()
    assert code == 0, err
    assert first == ['{"old": 1}']
    assert sorted(rest) == ['{"new": 1}', '{"new": 2}']


@pytest.mark.e2e
def test_tail_shows_the_events_the_target_wrote(
    moto_server: Any, kinesis: Any, env: dict[str, str], tmp_path: Path
) -> None:
    stream = unique_name("tail")
    create_kinesis_stream(kinesis, stream, shards=2)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "stream_name": stream,
                "endpoint_url": moto_server.url,
                "region": REGION,
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
            }
        )
    )
    lines = [json.dumps(SCHEMA)] + [
        json.dumps({"type": "RECORD", "stream": "users", "record": {"id": i, "userId": f"u{i}"}}) for i in range(20)
    ]
    singer = tmp_path / "input.singer"
    singer.write_text("\n".join(lines) + "\n")
    target = subprocess.run(
        [TARGET, "--config", str(config), "--input", str(singer)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert target.returncode == 0, target.stderr[-2000:]

    result = _tail(env, "--config", str(config))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(e["userId"] for e in events) == sorted(f"u{i}" for i in range(20))
    assert {e["type"] for e in events} == {"track"}
    assert len({e["messageId"] for e in events}) == 20


@pytest.fixture
def env(moto_server: Any) -> dict[str, str]:
    """Dummy credentials, no AWS_ENDPOINT_URL: the endpoint must come from flag or config."""
    environment = aws_env(moto_server.url)
    environment.pop("AWS_ENDPOINT_URL")
    return environment


@pytest.fixture
def kinesis(moto_server: Any) -> Any:
    return boto_client("kinesis", moto_server.url)


@pytest.fixture
def delivery(moto_server: Any) -> Iterator[tuple[Any, str, str]]:
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    name, bucket = unique_name("fh"), unique_name("bucket")
    create_firehose_to_s3(firehose, s3, name, bucket, prefix="events/")
    yield firehose, name, bucket


@pytest.mark.e2e
def test_bad_arguments_exit_2(env: dict[str, str]) -> None:
    result = _tail(env, "--stream", "s", "--service", "sqs")
    assert result.returncode == 2
    assert "--service" in result.stderr
    assert result.stderr.count("\n") == 1
