"""The promises at the edges, through the real CLI: batch files, secrets at DEBUG, a bounded stop,
malformed lines of every kind, config files, mistyped settings, file modes and the smaller truths.

Each test reads back what landed (or checks that nothing did) and fails if the handling it
covers is taken out: the inputs are the ones that broke a promise before it was kept.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import TARGET, base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

USERS = schema("users", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"])
PROCESSES = pytest.mark.parametrize("processes", [0, 2], ids=["one-process", "mapping-processes"])


def _stream(server) -> tuple[object, str]:
    kinesis = boto_client("kinesis", server.url)
    name = unique_name("edge")
    create_kinesis_stream(kinesis, name)
    return kinesis, name


def _landed(kinesis, stream) -> list[dict]:
    return [json.loads(r.data) for r in read_kinesis(kinesis, stream)]


def _ids(kinesis, stream) -> list[int]:
    return [event["properties"]["id"] for event in _landed(kinesis, stream)]


def _error_line(run) -> str:
    errors = run.error_lines
    assert len(errors) == 1, f"expected one error line, got:\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr
    return errors[0]


# -- 1. BATCH messages ------------------------------------------------------------------------------


def _batch(stream: str, path: Path, *, gzipped: bool) -> dict:
    return {
        "type": "BATCH",
        "stream": stream,
        "encoding": {"format": "jsonl", "compression": "gzip" if gzipped else "none"},
        "manifest": [path.as_uri()],
    }


def _write_batch_file(path: Path, ids: range, *, gzipped: bool) -> Path:
    text = "".join(json.dumps({"id": i, "user_id": f"u{i}"}) + "\n" for i in ids)
    if gzipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@PROCESSES
def test_batch_messages_deliver_their_records_in_order(moto_server, tmp_path, processes):
    kinesis, stream = _stream(moto_server)
    first = _write_batch_file(tmp_path / "part-1.jsonl.gz", range(10, 15), gzipped=True)
    second = _write_batch_file(tmp_path / "part-2.jsonl", range(20, 23), gzipped=False)
    text = singer_lines(
        USERS,
        record("users", {"id": 1, "user_id": "u1"}),
        _batch("users", first, gzipped=True),
        state({"n": 1}),
        _batch("users", second, gzipped=False),
        state({"n": 2}),
    )
    config = base_config(moto_server.url, stream_name=stream, mapping_processes=processes)
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert _ids(kinesis, stream) == [1, 10, 11, 12, 13, 14, 20, 21, 22]
    assert run.states[-1] == {"n": 2}
    assert run.summary(f"kinesis:{stream}")["records_sent"] == 9


@PROCESSES
@pytest.mark.parametrize("problem", ["missing", "not-gzip", "bad-line"])
def test_unreadable_batch_manifest_is_bad_input(moto_server, tmp_path, processes, problem):
    kinesis, stream = _stream(moto_server)
    path = tmp_path / "part.jsonl.gz"
    if problem == "not-gzip":
        path.write_bytes(b"plain text, not gzip")
    elif problem == "bad-line":
        path.write_bytes(gzip.compress(b'{"id": 7, "user_id": "u7"}\nnot json\n'))
    text = singer_lines(
        USERS,
        record("users", {"id": 1, "user_id": "u1"}),
        state({"n": 1}),
        _batch("users", path, gzipped=True),
        record("users", {"id": 2, "user_id": "u2"}),
        state({"n": 2}),
    )
    config = base_config(moto_server.url, stream_name=stream, mapping_processes=processes)
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _error_line(run)
    assert "input line 4" in line and path.as_uri() in line
    assert run.states == [{"n": 1}]
    expected = [1, 7] if problem == "bad-line" else [1]  # what the file held before its bad line
    assert _ids(kinesis, stream) == expected


def test_about_declares_the_batch_capability():
    done = subprocess.run([TARGET, "--about", "--format", "json"], capture_output=True, check=True, timeout=60)
    about = json.loads(done.stdout)
    assert "batch" in about["capabilities"]
    assert "batch_config" in about["settings"]["properties"]


# -- 2. Secrets at DEBUG ----------------------------------------------------------------------------

EXTERNAL_ID = "ext-id-Secret-3141592653"
STATIC_SECRET = "static-Secret-Key-2718281828"


@pytest.mark.parametrize("variable", ["TARGET_KINESIS_LOGLEVEL", "LOGLEVEL"])
def test_debug_logging_shows_no_secret(moto_server, tmp_path, variable):
    kinesis, stream = _stream(moto_server)
    config = base_config(
        moto_server.url,
        stream_name=stream,
        aws_secret_access_key=STATIC_SECRET,
        role_arn="arn:aws:iam::123456789012:role/writer",
        external_id=EXTERNAL_ID,
    )
    text = singer_lines(USERS, record("users", {"id": 1, "user_id": "u1"}))
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path, env={variable: "DEBUG"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| DEBUG " in run.stderr, "DEBUG logging was on"
    assert _ids(kinesis, stream) == [1], "the role was assumed and used"
    for secret in (EXTERNAL_ID, STATIC_SECRET, "SecretAccessKey", "SessionToken", "x-amz-security-token"):
        assert secret not in run.stderr, secret
    assert "FQoGZXIvYXdz" not in run.stderr, "moto's session tokens start so"


# -- 3. A bounded stop ------------------------------------------------------------------------------


def _stalled_run(silent_endpoint, tmp_path, **settings) -> subprocess.Popen:
    """The target writing to an endpoint that never answers, stuck delivering a record, with one
    STATE ({"n": 0}) printed before that record was read."""
    config = {
        **base_config(silent_endpoint.url, stream_name="stalled", preflight_check=False, state_flush_seconds=0),
        **settings,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    held = silent_endpoint.held_requests
    proc = subprocess.Popen(
        [TARGET, "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(silent_endpoint.url),
    )
    assert proc.stdin is not None
    proc.stdin.write(
        singer_lines(state({"n": 0}), USERS, record("users", {"id": 1, "user_id": "u1"}), state({"n": 1})).encode()
    )
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while silent_endpoint.held_requests == held and time.monotonic() < deadline:
        time.sleep(0.05)
    assert silent_endpoint.held_requests > held, "the record was never sent"
    time.sleep(0.3)
    return proc


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[float, list, str]:
    started = time.monotonic()
    out, err = proc.communicate(timeout=timeout)
    states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return time.monotonic() - started, states, err.decode()


@pytest.mark.slow
@PROCESSES
def test_drain_after_sigterm_is_bounded_by_drain_timeout(silent_endpoint, tmp_path, processes):
    proc = _stalled_run(silent_endpoint, tmp_path, drain_timeout_seconds=2, mapping_processes=processes)
    proc.send_signal(signal.SIGTERM)
    elapsed, states, err = _finish(proc, timeout=60)
    assert proc.returncode == 1, err[-2000:]
    assert elapsed < 20, f"took {elapsed:.0f} s"
    assert states == [{"n": 0}], "only the STATE whose records were acknowledged"
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "drain_timeout_seconds (2 s)" in errors[0] and "1 to kinesis:stalled" in errors[0]
    assert "Traceback" not in err


def test_second_signal_stops_at_once(silent_endpoint, tmp_path):
    proc = _stalled_run(silent_endpoint, tmp_path, drain_timeout_seconds=600)
    proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert proc.poll() is None, "still delivering after the first signal"
    proc.send_signal(signal.SIGINT)
    elapsed, states, err = _finish(proc, timeout=60)
    assert proc.returncode == 1, err[-2000:]
    assert elapsed < 10, f"took {elapsed:.0f} s after the second signal"
    assert states == [{"n": 0}]
    assert "signal 2 received again" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_stall_is_logged_while_it_lasts(silent_endpoint, tmp_path):
    """Calls unanswered for 10 s, and retries in progress, each show in the log."""
    proc = _stalled_run(silent_endpoint, tmp_path, drain_timeout_seconds=13)
    proc.send_signal(signal.SIGTERM)
    _, states, err = _finish(proc, timeout=90)
    assert proc.returncode == 1
    assert re.search(r"kinesis:stalled: waiting for 1 call\(s\), the oldest unanswered for 1\d s", err), err[-2000:]

    proc = _stalled_run(silent_endpoint, tmp_path, drain_timeout_seconds=4, read_timeout=1, retry_base_delay=0.01)
    proc.send_signal(signal.SIGTERM)
    _, states, err = _finish(proc, timeout=60)
    assert proc.returncode == 1
    assert re.search(r"kinesis:stalled: retrying 1 record\(s\), attempt 2 of 11: ReadTimeout", err), err[-2000:]
    assert states == [{"n": 0}]


# -- 4. Malformed lines of every kind ---------------------------------------------------------------


def _deep_record(depth: int) -> str:
    """A RECORD line whose `deep` field nests `depth` arrays (as text: json.dumps itself gives up)."""
    return '{"type": "RECORD", "stream": "users", "record": {"id": 2, "deep": ' + "[" * depth + "]" * depth + "}}"


def _other_schema(body: dict, **extra) -> str:
    return json.dumps({"type": "SCHEMA", "stream": "other", "schema": body, "key_properties": [], **extra})


BAD_LINES = {
    "record-is-text": (json.dumps({"type": "RECORD", "stream": "users", "record": "str"}), "needs 'record'"),
    "record-is-number": (json.dumps({"type": "RECORD", "stream": "users", "record": 42}), "needs 'record'"),
    "record-is-null": (json.dumps({"type": "RECORD", "stream": "users", "record": None}), "needs 'record'"),
    "stream-is-list": (json.dumps({"type": "RECORD", "stream": ["users"], "record": {"id": 2}}), "needs 'stream'"),
    "schema-stream-null": (
        json.dumps({"type": "SCHEMA", "stream": None, "schema": {"properties": {}}}),
        "needs 'stream'",
    ),
    "schema-is-text": (json.dumps({"type": "SCHEMA", "stream": "other", "schema": "x"}), "needs 'schema'"),
    "lone-surrogate": (json.dumps(record("users", {"id": 2, "user_id": "\ud800"})), "lone surrogate"),
    "nested-300": (_deep_record(300), "nested more than 254 levels"),
    "nested-5000": (_deep_record(5000), "nested too deeply"),
    "dangling-ref": (
        _other_schema({"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}}),
        "points to nothing",
    ),
    "remote-ref": (
        _other_schema({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}),
        "names another document",
    ),
    "invalid-type": (_other_schema({"type": "objekt", "properties": {}}), "not valid JSON Schema at type"),
    "bad-regex": (
        _other_schema({"type": "object", "properties": {}, "patternProperties": {"(": {"type": "string"}}}),
        "not valid JSON Schema at patternProperties",
    ),
    "key-properties-text": (
        _other_schema({"type": "object", "properties": {"id": {"type": "integer"}}}, key_properties="id"),
        "'key_properties' must be a list of field names",
    ),
}


@PROCESSES
@pytest.mark.parametrize("case", list(BAD_LINES))
def test_every_malformed_line_is_one_error_after_delivering_what_came_before(moto_server, tmp_path, case, processes):
    bad_line, expected = BAD_LINES[case]
    kinesis, stream = _stream(moto_server)
    text = (
        singer_lines(USERS, record("users", {"id": 1, "user_id": "u1"}), state({"n": 1}))
        + bad_line
        + "\n"
        + singer_lines(record("users", {"id": 3, "user_id": "u3"}), state({"n": 3}))
    )
    config = base_config(moto_server.url, stream_name=stream, mapping_processes=processes)
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _error_line(run)
    assert "input line 4" in line and expected in line, line
    assert run.states == [{"n": 1}]
    assert _ids(kinesis, stream) == [1]


# -- 5. Config files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "No such file or directory"),
        ("", "is empty"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object of settings, not a list"),
        ("directory", "Is a directory"),
    ],
    ids=["missing", "empty", "not-json", "array", "directory"],
)
def test_unusable_config_file_is_one_line(tmp_path, content, expected):
    path = tmp_path / "config.json"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    done = subprocess.run(
        [TARGET, "--config", str(path)], input=b"", capture_output=True, timeout=60, env=aws_env("http://127.0.0.1:9")
    )
    err = done.stderr.decode()
    assert done.returncode == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and expected in errors[0] and str(path) in errors[0], err


def test_bad_region_is_a_config_error(moto_server, tmp_path):
    config = base_config(moto_server.url, stream_name="s", region="us-east-1/../x")
    run = run_target(config, "", endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 1
    assert "setting 'region'" in _error_line(run)


# -- 6. Mistyped settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "known"),
    [("hash_feilds", "hash_fields"), ("partiton_key", "partition_key"), ("external_idd", "external_id")],
)
def test_mistyped_setting_stops_before_sending(moto_server, tmp_path, typo, known):
    kinesis, stream = _stream(moto_server)
    config = base_config(moto_server.url, stream_name=stream, **{typo: ["traits.email"]})
    run = run_target(
        config, singer_lines(USERS, record("users", {"id": 1})), endpoint=moto_server.url, tmp_path=tmp_path
    )
    assert run.returncode == 1
    line = _error_line(run)
    assert f"setting '{typo}' is not a target-kinesis setting (did you mean '{known}'?)" in line
    assert _ids(kinesis, stream) == []


def test_mistyped_stream_name_names_the_setting(moto_server, tmp_path):
    config = {**base_config(moto_server.url), "stream_nam": "x", "destinations": [{"event": "*", "stream": "y"}]}
    run = run_target(config, "", endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 1
    assert "did you mean 'stream_name'?" in _error_line(run)


def test_the_sdk_settings_are_still_known(moto_server, tmp_path):
    kinesis, stream = _stream(moto_server)
    config = base_config(
        moto_server.url,
        stream_name=stream,
        validate_records=True,
        batch_size_rows=100,
        add_record_metadata=False,
        flattening_enabled=False,
        load_method="append-only",
        batch_config={"encoding": {"format": "jsonl"}},
    )
    run = run_target(
        config, singer_lines(USERS, record("users", {"id": 1})), endpoint=moto_server.url, tmp_path=tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert _ids(kinesis, stream) == [1]


# -- 7. Dead letters are the owner's alone ----------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "existing-file"])
def test_dead_letter_file_is_readable_by_its_owner_only(moto_server, tmp_path, existing):
    _, stream = _stream(moto_server)
    dead = tmp_path / "letters" / "dead.jsonl"
    if existing:
        dead.parent.mkdir()
        dead.write_text("")
        dead.chmod(0o644)
    config = base_config(
        moto_server.url,
        stream_name=stream,
        max_record_bytes=100,
        on_oversized_record="dead_letter",
        dead_letter_path=str(dead),
    )
    text = singer_lines(USERS, record("users", {"id": 1, "user_id": "x" * 200}))
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert stat.S_IMODE(os.stat(dead).st_mode) == 0o600
    assert json.loads(dead.read_text())["reason"] == "oversized"


# -- 8. The smaller truths --------------------------------------------------------------------------


def test_stdout_closed_early_is_one_line(moto_server, tmp_path):
    _, stream = _stream(moto_server)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(base_config(moto_server.url, stream_name=stream, state_flush_seconds=0)))
    lines = [USERS]
    for i in range(2000):
        lines += [record("users", {"id": i}), state({"n": i, "pad": "x" * 1000})]
    proc = subprocess.Popen(
        [TARGET, "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(moto_server.url),
    )
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None

    def feed() -> None:  # from a thread: the target stops reading once its stdout is full
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(singer_lines(*lines).encode())
            proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    assert proc.stdout.read(10)  # like `| head -c 10`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    feeder.join(timeout=10)
    assert proc.returncode == 1
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "stdout was closed" in errors[0], err[-2000:]
    assert "Traceback" not in err and "Exception ignored" not in err


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_max_batch_bytes_below_the_record_limit_is_refused_at_start(moto_server, tmp_path, policy):
    kinesis, stream = _stream(moto_server)
    config = base_config(moto_server.url, stream_name=stream, max_batch_bytes=100, on_oversized_record=policy)
    run = run_target(
        config, singer_lines(USERS, record("users", {"id": 1})), endpoint=moto_server.url, tmp_path=tmp_path
    )
    assert run.returncode == 1
    line = _error_line(run)
    assert "setting 'max_batch_bytes' (100) is below the largest record" in line
    assert "Destination" in run.stderr and "summary" not in run.stderr, "refused before reading input"
    assert _ids(kinesis, stream) == []


@PROCESSES
def test_partition_key_that_matches_nothing_is_warned_once_and_counted(moto_server, tmp_path, processes):
    kinesis, stream = _stream(moto_server)
    config = base_config(moto_server.url, stream_name=stream, partition_key="traits.plan", mapping_processes=processes)
    text = singer_lines(USERS, *(record("users", {"id": i, "user_id": f"u{i}"}) for i in range(5)))
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    landed = read_kinesis(kinesis, stream)
    assert [r.partition_key for r in landed] == [json.loads(r.data)["messageId"] for r in landed]
    assert run.stderr.count("partition_key 'traits.plan' is missing or empty") == 1
    assert "key_fallbacks=5" in run.stderr


@PROCESSES
def test_timestamp_that_is_not_a_date_time_falls_back_and_is_counted(moto_server, tmp_path, processes):
    kinesis, stream = _stream(moto_server)
    seen = schema("seen", {"id": {"type": "integer"}, "at": {"type": ["string", "boolean", "null"]}}, ["id"])
    extracted = "2026-01-02T03:04:05Z"
    text = singer_lines(
        seen,
        record("seen", {"id": 1, "at": "yesterday"}, time_extracted=extracted),
        record("seen", {"id": 2, "at": "2026-11-05T10:30:00.123+01:00"}, time_extracted=extracted),
        record("seen", {"id": 3, "at": True}, time_extracted=extracted),
        record("seen", {"id": 4, "at": None}, time_extracted=extracted),
    )
    config = base_config(
        moto_server.url, stream_name=stream, events={"seen": {"timestamp_field": "at"}}, mapping_processes=processes
    )
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    events = _landed(kinesis, stream)
    assert [e["timestamp"] for e in events] == [extracted, "2026-11-05T10:30:00.123+01:00", extracted, extracted]
    assert [e["properties"]["at"] for e in events] == ["yesterday", "2026-11-05T10:30:00.123+01:00", True, None]
    assert "timestamp_fallbacks=2" in run.stderr, "a missing value is not a fallback; two invalid ones are"
    assert run.stderr.count("hold a timestamp that is not a date-time") == 1


def test_error_line_and_summary_count_the_same_records(moto_server, tmp_path):
    # A stream whose map cannot be read starts slowly (200 records at once); a known, high cap
    # lets several batches be in flight when the first one fails, the case where the counts differed.
    config = base_config(
        moto_server.url, stream_name=unique_name("absent"), preflight_check=False, max_records_per_second=100_000
    )
    text = singer_lines(USERS, *(record("users", {"id": i}) for i in range(1600)))
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 1
    line = _error_line(run)
    failed = run.summary(f"kinesis:{config['stream_name']}")["failed"]
    assert failed > 500, "more than one batch failed: the case where the counts differed"
    assert f": {failed} record(s) not delivered" in line


def test_numbers_are_written_as_the_readme_says(moto_server, tmp_path):
    kinesis, stream = _stream(moto_server)
    text = (
        singer_lines(schema("n", {"id": {"type": "integer"}}, ["id"]))
        + '{"type": "RECORD", "stream": "n", "record": {"id": 1, "price": 2.50, "count": 1e3, '
        + '"big": 123456789012345678901234567890, "long": 0.12345678901234567890123}}\n'
    )
    run = run_target(
        base_config(moto_server.url, stream_name=stream), text, endpoint=moto_server.url, tmp_path=tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (data,) = [r.data for r in read_kinesis(kinesis, stream)]
    for written in (
        b'"price":2.5,',
        b'"count":1000.0,',
        b'"big":123456789012345678901234567890,',
        b"0.12345678901234567890123",
    ):
        assert written in data, data


@pytest.mark.slow
@PROCESSES
def test_many_streams_all_land(moto_server, tmp_path, processes):
    """2,000 streams, one record each: every one lands (the cost per stream is measured in bench/)."""
    kinesis, stream = _stream(moto_server)
    lines = []
    for i in range(2000):
        lines += [schema(f"s{i}", {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}, ["id"])]
        lines += [record(f"s{i}", {"id": i, "at": "2026-01-01T00:00:00Z"})]
    # moto's server loses records written to one stream over several connections at once (its
    # bug, see SDK-NOTES): paced calls to one shard come close together, so one call at a time.
    config = base_config(moto_server.url, stream_name=stream, mapping_processes=processes, max_concurrent_requests=1)
    run = run_target(config, singer_lines(*lines), endpoint=moto_server.url, tmp_path=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(_ids(kinesis, stream)) == list(range(2000))
