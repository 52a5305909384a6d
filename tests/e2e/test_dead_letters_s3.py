"""Dead letters that outlive the machine: ``dead_letter_path: s3://bucket/prefix/``, through the
real CLI against moto's server, read back from moto's S3.

Each test fails if the S3 form is taken out: the letters are looked for in the bucket, not in
what the target says it wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.readback import create_kinesis_stream, list_keys, read_kinesis, unique_name
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

USERS = schema("users", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"])
FAST_RETRY = {"retry_base_delay": 0.01, "retry_max_delay": 0.2}
#: `prefix/<run start, UTC>-<run id>-<object number>.jsonl`
OBJECT_NAME = re.compile(r"dead/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-[0-9a-f]{8}-\d{6}\.jsonl")
SECRET = "dead-letter-Secret-Key-31415926"


def _bucket(server: Any) -> tuple[Any, str]:
    s3 = boto_client("s3", server.url)
    bucket = unique_name("dead")
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def _objects(s3: Any, bucket: str, prefix: str = "dead/") -> dict[str, list[dict[str, Any]]]:
    """Every dead-letter object under `prefix`: its key and its lines, parsed."""
    found = {}
    for key in list_keys(s3, bucket, prefix):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body.endswith(b"\n"), key
        found[key] = [json.loads(line) for line in body.splitlines()]
    return found


def _letters(objects: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [letter for lines in objects.values() for letter in lines]


def _oversized_input(ids: range, small: range = range(0)) -> str:
    messages = [USERS]
    messages += [record("users", {"id": i, "user_id": "x" * 1500}) for i in ids]
    messages += [record("users", {"id": i, "user_id": f"u{i}"}) for i in small]
    return singer_lines(*messages, state({"done": True}))


def _error_lines(run: Any) -> list[str]:
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    return run.error_lines


def test_oversized_records_land_in_s3_once_each_as_the_file_writes_them(moto_server, tmp_path: Path) -> None:
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("dl")
    create_kinesis_stream(kinesis, stream)
    s3, bucket = _bucket(moto_server)
    text = _oversized_input(range(6), small=range(100, 103))
    settings = {"stream_name": stream, "max_record_bytes": 1000, "on_oversized_record": "dead_letter"}

    run = run_target(
        base_config(moto_server.url, dead_letter_path=f"s3://{bucket}/dead/", **settings),
        text,
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states == [{"done": True}]
    assert sorted(json.loads(r.data)["properties"]["id"] for r in read_kinesis(kinesis, stream)) == [100, 101, 102]
    objects = _objects(s3, bucket)
    assert objects and all(OBJECT_NAME.fullmatch(key) for key in objects), list(objects)
    letters = _letters(objects)
    assert sorted(letter["record"]["properties"]["id"] for letter in letters) == list(range(6))
    assert {(letter["reason"], letter["stream"], letter["service"]) for letter in letters} == {
        ("oversized", stream, "kinesis")
    }
    assert {letter["error_code"] for letter in letters} == {"RecordTooLarge"}
    assert run.summary(f"kinesis:{stream}")["dead_lettered"] == 6

    # The lines are the file form's, field for field (only the times of the run differ: when the
    # letter was written, and the event's sentAt and default timestamp).
    dead = tmp_path / "dead.jsonl"
    file_run = run_target(
        base_config(moto_server.url, dead_letter_path=str(dead), **settings),
        text,
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )
    assert file_run.returncode == 0, file_run.stderr[-3000:]
    from_file = [json.loads(line) for line in dead.read_text().splitlines()]

    def without_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = []
        for row in rows:
            event = {k: v for k, v in row["record"].items() if k not in ("sentAt", "timestamp")}
            kept.append({**{k: v for k, v in row.items() if k != "at"}, "record": event})
        return sorted(kept, key=json.dumps)

    assert [list(row) for row in from_file] == [list(row) for row in letters]
    assert without_time(from_file) == without_time(letters)


def test_undeliverable_records_are_in_s3_before_the_failed_run_exits(moto_server, tmp_path: Path) -> None:
    s3, bucket = _bucket(moto_server)
    missing = unique_name("no-such-stream")
    config = base_config(
        moto_server.url,
        stream_name=missing,
        preflight_check=False,
        max_retries=1,
        dead_letter_path=f"s3://{bucket}/dead",  # no trailing slash: still the folder dead/
        **FAST_RETRY,
    )
    text = singer_lines(USERS, *(record("users", {"id": i, "user_id": f"u{i}"}) for i in range(5)), state(1))

    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)

    assert run.returncode != 0
    (line,) = _error_lines(run)
    assert missing in line and "ResourceNotFoundException" in line, line
    assert run.states == [], "no STATE covers records that were not delivered"
    letters = _letters(_objects(s3, bucket))
    assert sorted(letter["record"]["properties"]["id"] for letter in letters) == list(range(5))
    assert {(letter["reason"], letter["error_code"], letter["stream"]) for letter in letters} == {
        ("undeliverable", "ResourceNotFoundException", missing)
    }


def test_two_runs_write_different_objects(moto_server, tmp_path: Path) -> None:
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("dl")
    create_kinesis_stream(kinesis, stream)
    s3, bucket = _bucket(moto_server)
    config = base_config(
        moto_server.url,
        stream_name=stream,
        max_record_bytes=1000,
        on_oversized_record="dead_letter",
        dead_letter_path=f"s3://{bucket}/dead/",
    )
    for first in (0, 10):
        run = run_target(config, _oversized_input(range(first, first + 2)), endpoint=moto_server.url, tmp_path=tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]

    objects = _objects(s3, bucket)
    assert len(objects) == 2, list(objects)
    runs = {key.rsplit("-", 1)[0] for key in objects}
    assert len(runs) == 2, "each run names its objects apart (start time and run id)"
    assert sorted(sorted(letter["record"]["properties"]["id"] for letter in lines) for lines in objects.values()) == [
        [0, 1],
        [10, 11],
    ]


def test_a_missing_bucket_is_one_line_naming_it_and_a_non_zero_exit(moto_server, tmp_path: Path) -> None:
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("dl")
    create_kinesis_stream(kinesis, stream)
    bucket = unique_name("never-made")
    config = base_config(
        moto_server.url,
        stream_name=stream,
        max_record_bytes=1000,
        on_oversized_record="dead_letter",
        dead_letter_path=f"s3://{bucket}/dead/",
        aws_secret_access_key=SECRET,
        **FAST_RETRY,
    )

    run = run_target(config, _oversized_input(range(2), small=range(5, 7)), endpoint=moto_server.url, tmp_path=tmp_path)

    assert run.returncode != 0
    (line,) = _error_lines(run)
    assert f"s3 bucket '{bucket}'" in line and f"s3://{bucket}/dead/" in line and "NoSuchBucket" in line, line
    assert "2 dead letter(s) not written" in line, line
    assert SECRET not in run.stderr
    assert run.states == [], "no STATE covers dead letters that were not stored"


def test_undeliverable_records_and_a_missing_bucket_print_both_lines(moto_server, tmp_path: Path) -> None:
    missing, bucket = unique_name("no-such-stream"), unique_name("never-made")
    config = base_config(
        moto_server.url,
        stream_name=missing,
        preflight_check=False,
        max_retries=0,
        dead_letter_path=f"s3://{bucket}/",
        **FAST_RETRY,
    )
    text = singer_lines(USERS, record("users", {"id": 1, "user_id": "u1"}))

    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)

    assert run.returncode != 0
    lines = _error_lines(run)
    assert len(lines) == 2, run.stderr[-3000:]
    assert any(bucket in line and "NoSuchBucket" in line for line in lines), lines
    assert missing in lines[-1] and "ResourceNotFoundException" in lines[-1], "the delivery error stays the run's"


def test_dead_letters_go_through_the_targets_endpoint_with_its_role(moto_server, fault_proxy, tmp_path: Path) -> None:
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("dl")
    create_kinesis_stream(kinesis, stream)
    s3, bucket = _bucket(moto_server)
    proxy = fault_proxy()  # the target's endpoint_url; AWS_ENDPOINT_URL is unset below
    config = base_config(
        proxy.url,
        stream_name=stream,
        max_record_bytes=1000,
        on_oversized_record="dead_letter",
        dead_letter_path=f"s3://{bucket}/dead/",
        role_arn="arn:aws:iam::123456789012:role/writer",
    )
    env = aws_env(moto_server.url)
    env.pop("AWS_ENDPOINT_URL")

    run = run_target(config, _oversized_input(range(3)), endpoint=moto_server.url, tmp_path=tmp_path, env=env)

    assert run.returncode == 0, run.stderr[-3000:]
    assert len(_letters(_objects(s3, bucket))) == 3
    puts = proxy.requests_for("s3:PUT")
    assert len(puts) == 1
    assert "Credential=testing/" not in puts[0].headers["Authorization"], "signed with the assumed role's keys"
    assert proxy.calls["sts:AssumeRole"] >= 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("s3://", "without a bucket"),
        ("s3:///dead/", "without a bucket"),
        ("s3://a/dead/", "valid S3 bucket"),
        ("gs://bucket/dead/", "gs:// URL"),
    ],
)
def test_a_bad_s3_url_is_a_config_error_at_start_up(moto_server, tmp_path: Path, path: str, expected: str) -> None:
    config = base_config(moto_server.url, stream_name=unique_name("never-read"), dead_letter_path=path)
    run = run_target(config, singer_lines(USERS), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    (line,) = _error_lines(run)
    assert "setting 'dead_letter_path'" in line and expected in line, line
