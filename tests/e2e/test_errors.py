"""Bad config, bad input and AWS refusals, through the real CLI against a local endpoint.

Each case must end with one clear error line naming what and where, a non-zero exit, the
records read before the problem delivered and only the STATE that covers them emitted.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from target_kinesis.config.schema import CONFIG_SCHEMA
from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import TARGET, base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t-Value-never-printed-81723"


def _stream(server) -> tuple[object, str]:
    kinesis = boto_client("kinesis", server.url)
    name = unique_name("err")
    create_kinesis_stream(kinesis, name)
    return kinesis, name


def _error_line(run) -> str:
    errors = run.error_lines
    assert len(errors) == 1, f"expected one error line, got:\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr
    return errors[0]


USERS = schema("users", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"])


def test_preflight_missing_stream_stops_before_reading(moto_server, tmp_path):
    config = base_config(moto_server.url, stream_name="no-such-stream-here", aws_secret_access_key=SECRET)
    run = run_target(config, singer_lines(USERS, state({"s": 1})), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _error_line(run)
    assert "no-such-stream-here" in line and "does not exist" in line and "us-east-1" in line
    assert run.states == []
    assert SECRET not in run.stderr


def test_preflight_can_be_switched_off(moto_server, tmp_path):
    """Without preflight the missing stream is found by the first PutRecords: still fatal."""
    config = base_config(moto_server.url, stream_name="absent-stream", preflight_check=False)
    run = run_target(
        config,
        singer_lines(USERS, record("users", {"id": 1, "user_id": "u"}), state({"s": 1})),
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )
    assert run.returncode != 0
    line = _error_line(run)
    assert "absent-stream" in line and "ResourceNotFoundException" in line
    assert run.states == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"stream_name": "bad name!"}, "stream_name"),
        ({"stream_name": "x" * 129}, "longer than 128"),
        ({"destinations": [{"event": "*", "stream": "y" * 65, "service": "firehose"}]}, "longer than 64"),
        ({"stream_name": "a", "destinations": [{"event": "*", "stream": "b"}]}, "exactly one"),
        ({}, "exactly one"),
        ({"stream_name": "a", "max_batch_records": 501}, "max_batch_records"),
        ({"stream_name": "a", "max_batch_bytes": 11 * 1024 * 1024}, "max_batch_bytes"),
        ({"stream_name": "a", "on_oversized_record": "dead_letter"}, "dead_letter_path"),
        ({"stream_name": "a", "service": "sqs"}, "service"),
        ({"stream_name": "a", "events": {"s": {"type": "purchase"}}}, "events.s.type"),
        ({"stream_name": "a", "aws_secret_access_key": 12345}, "aws_secret_access_key"),
    ],
)
def test_bad_config_one_line_error(moto_server, tmp_path, settings, expected):
    config = {"endpoint_url": moto_server.url, "aws_access_key_id": "k", "aws_secret_access_key": SECRET, **settings}
    run = run_target(config, singer_lines(USERS), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _error_line(run)
    assert expected in line
    assert SECRET not in run.stderr and "12345" not in run.stderr


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("this is not json", "not a valid JSON message"),
        (json.dumps(record("orders", {"id": 9})), "orders"),  # record before its schema
        (json.dumps(record("users", {"id": "not-an-int", "user_id": "u"})), "does not match its schema"),
        (json.dumps(record("users", {"user_id": "no key"})), "missing key properties"),
        (json.dumps({"type": "BOGUS"}), "unknown message type"),
    ],
)
@pytest.mark.parametrize("processes", [0, 2], ids=["one-process", "mapping-processes"])
def test_bad_input_delivers_what_came_before(moto_server, tmp_path, bad_line, expected, processes):
    kinesis, stream = _stream(moto_server)
    before = [record("users", {"id": i, "user_id": f"u{i}"}) for i in range(5)]
    text = (
        singer_lines(USERS, *before[:3], state({"at": 3}), *before[3:], state({"at": 5}))
        + bad_line
        + "\n"
        + singer_lines(record("users", {"id": 99, "user_id": "after"}), state({"at": 99}))
    )
    run = run_target(
        base_config(moto_server.url, stream_name=stream, mapping_processes=processes),
        text,
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )
    assert run.returncode != 0
    line = _error_line(run)
    assert expected in line
    assert "input line 9" in line, "the line number of the bad line"
    assert ("Mapping records in 2 processes" in run.stderr) == bool(processes), "the path under test"
    assert run.states[-1] == {"at": 5}, "the last state read before the bad line is emitted"
    assert {"at": 99} not in run.states
    landed = sorted(json.loads(r.data)["properties"]["id"] for r in read_kinesis(kinesis, stream))
    assert landed == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("processes", [0, 2], ids=["one-process", "mapping-processes"])
def test_oversized_record_policies(moto_server, tmp_path, processes):
    kinesis, stream = _stream(moto_server)
    big = "x" * 3000
    text = singer_lines(
        schema("notes", {"id": {"type": "integer"}, "body": {"type": "string"}}, ["id"]),
        record("notes", {"id": 1, "body": "small"}),
        record("notes", {"id": 2, "body": big}),
        record("notes", {"id": 3, "body": "small too"}),
        state({"done": 1}),
    )
    config = base_config(moto_server.url, stream_name=stream, max_record_bytes=2000, mapping_processes=processes)

    failed = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert failed.returncode != 0
    line = _error_line(failed)
    assert "above max_record_bytes (2000)" in line and stream in line
    assert "raised to 10 MiB (aws kinesis update-max-record-size" in line, "a Kinesis stream's limit can grow"
    assert "input line 3:" in line, "the line of the oversized record"
    assert failed.states == []
    assert [json.loads(r.data)["properties"]["id"] for r in read_kinesis(kinesis, stream)] == [1]

    kinesis, stream = _stream(moto_server)
    skipped = run_target(
        {**config, "stream_name": stream, "on_oversized_record": "skip"},
        text,
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    assert skipped.summary(f"kinesis:{stream}")["skipped"] == 1
    assert sorted(json.loads(r.data)["properties"]["id"] for r in read_kinesis(kinesis, stream)) == [1, 3]
    assert skipped.states == [{"done": 1}]

    kinesis, stream = _stream(moto_server)
    dead = tmp_path / "dead" / "letters.jsonl"
    dlq = run_target(
        {**config, "stream_name": stream, "on_oversized_record": "dead_letter", "dead_letter_path": str(dead)},
        text,
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )
    assert dlq.returncode == 0, dlq.stderr[-2000:]
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(letters) == 1
    assert letters[0]["reason"] == "oversized" and letters[0]["stream"] == stream
    assert letters[0]["record"]["properties"] == {"id": 2, "body": big}
    assert dlq.summary(f"kinesis:{stream}")["dead_lettered"] == 1


def test_firehose_newline_can_be_switched_off_and_kinesis_on(moto_server, tmp_path):
    kinesis, stream = _stream(moto_server)
    run = run_target(
        base_config(moto_server.url, stream_name=stream, append_newline=True),
        singer_lines(USERS, record("users", {"id": 1, "user_id": "u1"})),
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (landed,) = read_kinesis(kinesis, stream)
    assert landed.data.endswith(b"}\n")


def test_input_file_option_and_about(moto_server, tmp_path):
    """`--input file.singer` reads the file (bytes path), and `--about` lists every setting."""
    kinesis, stream = _stream(moto_server)
    singer = tmp_path / "in.singer"
    singer.write_text(
        singer_lines(USERS, record("users", {"id": 1, "user_id": "ü-1"}), record("users", {"id": 2, "user_id": "u2"})),
        encoding="utf-8",
    )
    run = run_target(
        base_config(moto_server.url, stream_name=stream),
        "",
        endpoint=moto_server.url,
        tmp_path=tmp_path,
        extra_args=["--input", str(singer)],
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(json.loads(r.data)["userId"] for r in read_kinesis(kinesis, stream)) == ["u2", "ü-1"]

    about = subprocess.run([TARGET, "--about", "--format=markdown"], capture_output=True, text=True, check=True)
    for setting in CONFIG_SCHEMA["properties"]:
        assert f"| {setting} |" in about.stdout, setting


def test_unreachable_endpoint_is_one_line_naming_it(tmp_path):
    from tests.support.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = run_target(
        base_config(url, stream_name="s", connect_timeout=1), singer_lines(USERS), endpoint=url, tmp_path=tmp_path
    )
    assert run.returncode != 0
    line = _error_line(run)
    assert "preflight" in line and url in line and "kinesis stream 's'" in line


def test_log_level_quiets_the_run_but_not_errors(moto_server, tmp_path):
    """TARGET_KINESIS_LOGLEVEL=WARNING: no progress or summary lines, errors still one line."""
    kinesis, stream = _stream(moto_server)
    config_path = tmp_path / "quiet.json"
    config_path.write_text(json.dumps(base_config(moto_server.url, stream_name=stream)))
    env = {**aws_env(moto_server.url), "TARGET_KINESIS_LOGLEVEL": "WARNING"}
    text = singer_lines(USERS, record("users", {"id": 1, "user_id": "u1"}), state({"s": 1}))
    quiet = subprocess.run([TARGET, "--config", str(config_path)], input=text.encode(), capture_output=True, env=env)
    assert quiet.returncode == 0
    assert "INFO" not in quiet.stderr.decode() and quiet.stdout.decode().strip() == '{"s": 1}'
    assert len(read_kinesis(kinesis, stream)) == 1, "quiet, not idle"
    failing = subprocess.run([TARGET, "--config", str(config_path)], input=b"not json\n", capture_output=True, env=env)
    assert failing.returncode != 0
    assert [line for line in failing.stderr.decode().splitlines() if "ERROR" in line]
