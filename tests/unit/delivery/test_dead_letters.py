"""Dead letters (`delivery/dead_letters.py`): the pure parts of the S3 form (object names,
batches, retries, the failure line) with a stand-in PutObject, the same lines as the file
form, and the start-up check of `dead_letter_path`."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from target_kinesis.aws.errors import AwsCallFailed, AwsError
from target_kinesis.aws.s3 import S3Location
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.dead_letters import (
    DeadLetterError,
    DeadLetters,
    LineBatch,
    PutRetries,
    S3Sink,
    object_key,
)
from target_kinesis.errors import ConfigError

STARTED = dt.datetime(2026, 11, 30, 4, 12, 0, 123456, tzinfo=dt.timezone.utc)
LOCATION = S3Location("dlq", "target/")
NO_WAIT = PutRetries(max_retries=3, base_delay=0, max_delay=0)


class FakeS3:
    """A stand-in PutObject: keeps the objects, or fails with the errors queued."""

    def __init__(self, *errors: AwsError) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: list[str] = []
        self._errors = list(errors)
        self._lock = threading.Lock()

    def __call__(self, bucket: str, key: str, body: bytes) -> None:
        with self._lock:
            self.calls.append(key)
            if self._errors:
                raise AwsCallFailed(self._errors.pop(0))
            assert key not in self.objects, "an object was written twice"
            self.objects[f"{bucket}/{key}"] = body

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for body in self.objects.values() for line in body.splitlines()]


def _letter(letters: DeadLetters, i: int, **extra: Any) -> None:
    letters.write(
        reason="undeliverable",
        service="kinesis",
        stream="events",
        data=json.dumps({"messageId": f"m{i}", "properties": {"id": i}}).encode() + b"\n",
        partition_key=f"u{i}",
        error_code="ResourceNotFoundException",
        error_message="Stream events not found",
        attempts=3,
        **extra,
    )


# -- object names -----------------------------------------------------------------------------


def test_object_names_carry_the_run_start_in_utc_the_run_id_and_a_number() -> None:
    assert object_key(LOCATION, STARTED, "1a2b3c4d", 1) == "target/2026-11-30T04-12-00Z-1a2b3c4d-000001.jsonl"
    in_paris = STARTED.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert object_key(LOCATION, in_paris, "1a2b3c4d", 12) == "target/2026-11-30T04-12-00Z-1a2b3c4d-000012.jsonl"
    assert object_key(S3Location("dlq", ""), STARTED, "1a2b3c4d", 1).startswith("2026-11-30T04-12-00Z-")


def test_object_names_sort_by_run_then_by_order_written() -> None:
    later = STARTED + dt.timedelta(hours=11)
    keys = [
        object_key(LOCATION, STARTED, "ffffffff", 2),
        object_key(LOCATION, later, "00000000", 1),
        object_key(LOCATION, STARTED, "ffffffff", 10),
        object_key(LOCATION, STARTED, "ffffffff", 1),
    ]
    assert sorted(keys) == [keys[3], keys[0], keys[2], keys[1]]


# -- batches ----------------------------------------------------------------------------------


def test_a_batch_is_full_at_its_line_count_or_its_bytes() -> None:
    batch = LineBatch(max_lines=3, max_bytes=1000)
    assert [batch.add(b"a\n"), batch.add(b"b\n"), batch.add(b"c\n")] == [False, False, True]
    assert batch.take() == b"a\nb\nc\n"
    assert len(batch) == 0 and batch.take() == b""

    by_size = LineBatch(max_lines=100, max_bytes=10)
    assert [by_size.add(b"12345\n"), by_size.add(b"6789\n")] == [False, True]
    assert by_size.take() == b"12345\n6789\n"


def test_an_object_per_batch_and_the_rest_on_flush_without_empty_objects() -> None:
    s3 = FakeS3()
    sink = S3Sink(LOCATION, s3, started=STARTED, run_id="1a2b3c4d", batch=LineBatch(max_lines=3), retries=NO_WAIT)
    for i in range(7):
        sink.append(b'{"n":%d}\n' % i)
    assert s3.calls == [
        "target/2026-11-30T04-12-00Z-1a2b3c4d-000001.jsonl",
        "target/2026-11-30T04-12-00Z-1a2b3c4d-000002.jsonl",
    ]
    sink.flush()
    sink.flush()  # nothing buffered: no empty object
    sink.close()
    assert len(s3.calls) == 3 and s3.calls[-1].endswith("-000003.jsonl")
    assert [line["n"] for line in s3.lines()] == list(range(7))
    assert sink.written == s3.calls


def test_two_runs_never_share_an_object_name() -> None:
    s3 = FakeS3()
    for _ in range(2):
        letters = DeadLetters("s3://dlq/target/", put_object=s3, started=STARTED)
        _letter(letters, 1)
        letters.close()
    assert len(s3.objects) == 2


# -- retries and failures ---------------------------------------------------------------------


def test_a_throttled_or_failing_put_is_retried_with_backoff() -> None:
    s3 = FakeS3(AwsError("SlowDown", "Please reduce your request rate.", 503), AwsError("InternalError", "", 500))
    waits: list[float] = []
    sink = S3Sink(LOCATION, s3, started=STARTED, retries=PutRetries(3, 0.1, 1.0), sleep=waits.append)
    sink.append(b"{}\n")
    sink.close()
    assert len(s3.calls) == 3 and len(s3.objects) == 1
    assert len(waits) == 2 and all(0 <= wait <= 1.0 for wait in waits)


def test_an_expired_token_refreshes_the_credentials_then_retries() -> None:
    s3 = FakeS3(AwsError("ExpiredToken", "The provided token has expired.", 400))
    refreshed: list[bool] = []
    sink = S3Sink(
        LOCATION, s3, started=STARTED, retries=NO_WAIT, refresh_credentials=lambda: refreshed.append(True) or True
    )
    sink.append(b"{}\n")
    sink.close()
    assert refreshed == [True] and len(s3.objects) == 1


def test_retries_end_at_max_retries() -> None:
    s3 = FakeS3(*[AwsError("SlowDown", "", 503)] * 10)
    sink = S3Sink(LOCATION, s3, started=STARTED, retries=PutRetries(2, 0, 0), sleep=lambda _: None)
    sink.append(b"{}\n")
    with pytest.raises(DeadLetterError, match=r"SlowDown"):
        sink.close()
    assert len(s3.calls) == 3


def test_a_missing_bucket_is_not_retried_and_every_flush_reports_it_with_the_count() -> None:
    s3 = FakeS3(AwsError("NoSuchBucket", "The specified bucket does not exist", 404))
    letters = DeadLetters("s3://dlq/target/", put_object=s3, retries=NO_WAIT, started=STARTED)
    _letter(letters, 1)
    _letter(letters, 2)
    with pytest.raises(DeadLetterError) as raised:
        letters.flush()
    line = str(raised.value)
    assert line.startswith("dead letters: s3 bucket 'dlq' (writing s3://dlq/target/2026-11-30T04-12-00Z-")
    assert "[NoSuchBucket]" in line and line.endswith("2 dead letter(s) not written")
    assert "\n" not in line

    _letter(letters, 3)  # never raises in a producer thread, and is not sent again
    with pytest.raises(DeadLetterError, match=r"3 dead letter\(s\) not written"):
        letters.close()
    assert len(s3.calls) == 1
    letters.close()  # only the first close can raise


def test_a_full_batch_that_fails_is_reported_by_the_next_flush() -> None:
    s3 = FakeS3(AwsError("AccessDenied", "Access Denied", 403))
    sink = S3Sink(LOCATION, s3, started=STARTED, batch=LineBatch(max_lines=2), retries=NO_WAIT)
    sink.append(b"{}\n")
    sink.append(b"{}\n")  # full: written now, and it fails; append itself does not raise
    with pytest.raises(DeadLetterError, match=r"not permitted to write s3://dlq/target/.*\[AccessDenied\]"):
        sink.flush()


# -- one interface, two sinks -----------------------------------------------------------------


def test_s3_objects_hold_exactly_the_lines_of_the_file(tmp_path: Path) -> None:
    s3 = FakeS3()
    path = tmp_path / "dead.jsonl"
    sinks = [DeadLetters(str(path)), DeadLetters("s3://dlq/target/", put_object=s3, started=STARTED)]
    for letters in sinks:
        _letter(letters, 1)
        letters.write(
            reason="oversized",
            service="firehose",
            stream="archive",
            data=b"not json\n",
            partition_key=None,
            error_code="RecordTooLarge",
            error_message="2000 bytes > max_record_bytes 1000",
        )
        letters.close()
    from_file = [json.loads(line) for line in path.read_text().splitlines()]
    from_s3 = s3.lines()
    assert [list(line) for line in from_s3] == [list(line) for line in from_file]
    assert [{**line, "at": None} for line in from_s3] == [{**line, "at": None} for line in from_file]
    assert from_s3[1]["record"] == "not json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_letters_written_from_many_threads_are_each_in_one_object_once() -> None:
    s3 = FakeS3()
    letters = DeadLetters("s3://dlq/target/", put_object=s3, started=STARTED)
    sink = letters._sink
    assert isinstance(sink, S3Sink)
    sink._batch = LineBatch(max_lines=7)

    def write(first: int) -> None:
        for i in range(first, first + 50):
            _letter(letters, i)

    threads = [threading.Thread(target=write, args=(n * 50,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    letters.close()
    assert sorted(line["record"]["properties"]["id"] for line in s3.lines()) == list(range(400))
    assert len(s3.objects) == -(-400 // 7)


def test_an_s3_path_needs_a_put_object() -> None:
    with pytest.raises(ValueError, match="put_object"):
        DeadLetters("s3://dlq/target/")


def test_no_path_no_dead_letters() -> None:
    letters = DeadLetters(None)
    assert not letters.enabled
    _letter(letters, 1)
    letters.flush()
    letters.close()


# -- the setting, checked at start-up ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("s3://", "setting 'dead_letter_path' is an s3:// URL without a bucket"),
        ("s3:///x/", "setting 'dead_letter_path' is an s3:// URL without a bucket"),
        ("s3://x/y/", "setting 'dead_letter_path' does not name a valid S3 bucket"),
        ("ftp://host/dead/", "setting 'dead_letter_path' is a ftp:// URL"),
    ],
)
def test_a_bad_s3_url_is_a_config_error(path: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_config({"stream_name": "s", "dead_letter_path": path})
    assert str(raised.value).startswith(expected)
    with pytest.raises(ConfigError):
        DeadLetters(path, put_object=FakeS3())


def test_an_s3_url_setting_gives_its_location() -> None:
    settings = Settings.from_config({"stream_name": "s", "dead_letter_path": "s3://dlq/a/b"})
    assert settings.dead_letter_location == S3Location("dlq", "a/b/")
    assert Settings.from_config({"stream_name": "s", "dead_letter_path": "/tmp/d.jsonl"}).dead_letter_location is None


def test_letters_read_back_hold_the_bytes_written(tmp_path: Path) -> None:
    """What a redrive sends: each event's bytes exactly as they were to be sent, key and code kept."""
    from target_kinesis.delivery.dead_letters import read_letters

    path = tmp_path / "dead.jsonl"
    letters = DeadLetters(str(path))
    event = b'{"messageId":"m-1","n":1.50,"big":123456789012345678901234567890,"s":"\\u00e9 \\"q\\""}'
    letters.write(
        reason="undeliverable",
        service="kinesis",
        stream="s",
        data=event + b"\n",
        partition_key="k",
        error_code="InternalFailure",
        error_message='a "quoted" ,"record": message',
    )
    letters.write(reason="oversized", service="firehose", stream="f", data=b"plain text", partition_key=None)
    letters.close()

    first, second = read_letters(path.read_bytes(), str(path))
    assert (first.service, first.stream, first.partition_key, first.error_code) == (
        "kinesis",
        "s",
        "k",
        "InternalFailure",
    )
    assert first.data == event
    assert (second.service, second.stream, second.data, second.partition_key) == ("firehose", "f", b"plain text", None)


def test_a_line_that_is_no_dead_letter_is_named_by_its_number() -> None:
    from target_kinesis.delivery.dead_letters import read_letters

    with pytest.raises(DeadLetterError, match=r"^f line 2 is not a dead letter"):
        read_letters(b'{"service":"kinesis","stream":"s","record":{}}\n{"x":1}\n', "f")
