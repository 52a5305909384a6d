"""target-kinesis-tail: the pure parts, the shard loop against a scripted fake, and the real
console script against moto's server (Kinesis with two shards, Firehose to S3)."""

from __future__ import annotations

import gzip
import json
import subprocess
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from target_kinesis.aws import kpl
from target_kinesis.aws.errors import error_code
from target_kinesis.tools import tail
from target_kinesis.tools.cli import ToolError
from target_kinesis.tools.tail import config_service, tail_config
from target_kinesis.tools.tail_decoding import (
    keyed_events,
    maybe_decompress,
    record_events,
    split_json_lines,
    split_object,
)
from target_kinesis.tools.tail_printing import Output, format_keyed, format_record
from target_kinesis.tools.tail_reading import (
    Caller,
    FirehoseTail,
    KinesisTail,
    bucket_from_arn,
    kinesis_explainer,
    static_prefix,
)

BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
TAIL = str(BIN / "target-kinesis-tail")


# -- format_record -----------------------------------------------------------------------


def test_format_record_keeps_json_as_is_without_trailing_newline() -> None:
    assert format_record(b'{"b": 1, "a": [1.50, "x"]}\n') == '{"b": 1, "a": [1.50, "x"]}'
    assert format_record(b'{"a":1}\r\n') == '{"a":1}'
    assert format_record(b"42") == "42"


def test_format_record_compacts_json_spread_over_lines() -> None:
    line = format_record(b'{\n  "a": 1,\n  "b": "\xc3\xa9"\n}\n')
    assert "\n" not in line
    assert json.loads(line) == {"a": 1, "b": "é"}


def test_format_record_turns_other_data_into_a_json_string() -> None:
    assert format_record(b"plain text\n") == '"plain text"'
    assert format_record(b"") == '""'
    assert format_record(b"NaN") == '"NaN"'  # not strict JSON
    assert format_record(b'{"a": 1} trailing') == '"{\\"a\\": 1} trailing"'
    assert json.loads(format_record(b"\xff\xfeab")) == "\ufffd\ufffdab"
    assert json.loads(format_record(b"line one\nline two")) == "line one\nline two"


def test_format_keyed_wraps_the_plain_line_with_shard_and_partition_key() -> None:
    data = b'{"b": 1, "a": [1.50, "x"]}\n'
    line = format_keyed(data, "shardId-000000000001", "u1")
    assert line == '{"shard":"shardId-000000000001","partition_key":"u1","event":{"b": 1, "a": [1.50, "x"]}}'
    assert line.endswith(f',"event":{format_record(data)}}}')  # the event exactly as printed without keys
    assert json.loads(format_keyed(b"plain\n", "s", '\u00e9 "q"')) == {
        "shard": "s",
        "partition_key": '\u00e9 "q"',
        "event": "plain",
    }
    assert json.loads(format_keyed(b"{\n}", "s", None)) == {"shard": "s", "partition_key": None, "event": {}}
    assert "\n" not in format_keyed(b'{\n  "a": 1\n}\n', "s", "k\nk")  # one line, whatever the data or key


def test_output_shows_keys_only_when_asked_and_only_with_a_shard() -> None:
    buffer = StringIO()
    out = Output(buffer, limit=None, show_keys=True)
    out.emit(b'{"a":1}', "shard-0", "k")
    out.emit(b'{"a":2}')  # an S3 line: no shard to show
    assert buffer.getvalue().splitlines() == ['{"shard":"shard-0","partition_key":"k","event":{"a":1}}', '{"a":2}']
    buffer = StringIO()
    Output(buffer, limit=None).emit(b'{"a":1}', "shard-0", "k")
    assert buffer.getvalue() == '{"a":1}\n'


# -- split_object ----------------------------------------------------------------------


def test_split_object_gives_lines_without_line_ends() -> None:
    body = b'{"a":1}\n{"a":2}\r\n\n  \n{"a":3}'
    assert split_object(body) == [b'{"a":1}', b'{"a":2}', b'{"a":3}']


def test_split_object_splits_objects_written_back_to_back() -> None:
    assert split_object(b'{"a":1}{"b":{"c":"}{"}} {"d":[]}\n') == [b'{"a":1}', b'{"b":{"c":"}{"}}', b'{"d":[]}']


def test_split_object_keeps_lines_that_are_not_a_run_of_objects() -> None:
    assert split_object(b'{"a":1} tail\n') == [b'{"a":1} tail']
    assert split_object(b"[1][2]\nplain\n") == [b"[1][2]", b"plain"]
    assert split_object(b'{"a":1}[2]\n') == [b'{"a":1}[2]']


def test_maybe_decompress_undoes_gzip_members_and_leaves_the_rest() -> None:
    body = gzip.compress(b'{"a":1}\n') + gzip.compress(b'{"a":2}\n')
    assert split_object(maybe_decompress(body)) == [b'{"a":1}', b'{"a":2}']
    assert maybe_decompress(b'{"a":1}\n') == b'{"a":1}\n'
    assert maybe_decompress(b"\x1f\x8bnot gzip") == b"\x1f\x8bnot gzip"


def test_bucket_and_prefix_of_a_firehose_destination() -> None:
    assert bucket_from_arn("arn:aws:s3:::my-bucket") == "my-bucket"
    assert static_prefix("events/!{timestamp:yyyy}/") == "events/"
    assert static_prefix("events/") == "events/"


# -- record_events: the events one stored record holds -----------------------------------

EVENTS = [b'{"id":"e0","userId":"u0"}', b'{"id":"e1","userId":"\xc3\xa9"}', b'{"id":"e2"}']


def test_a_kpl_aggregate_gives_each_user_record_in_order() -> None:
    # three partition keys, one shared: the tail prints no keys, only the events
    blob = kpl.pack(["key-a", "key-b"], [(0, EVENTS[0]), (1, EVENTS[1]), (0, EVENTS[2])])
    assert record_events(blob) == EVENTS
    assert [format_record(event) for event in record_events(blob)] == [e.decode() for e in EVENTS]


def test_a_plain_record_is_one_event() -> None:
    assert record_events(EVENTS[0] + b"\n") == [EVENTS[0] + b"\n"]
    assert record_events(b"\xff\x00 not json") == [b"\xff\x00 not json"]
    assert record_events(b"") == [b""]


def test_a_record_of_json_lines_gives_each_line() -> None:
    assert record_events(b"\n".join(EVENTS) + b"\n") == EVENTS
    assert record_events(EVENTS[0] + b"\r\n\n" + EVENTS[1]) == EVENTS[:2]  # CRLF, blank line, no last newline


def test_lines_that_are_not_each_json_stay_one_event() -> None:
    spread = b'{\n  "a": 1,\n  "b": [1, 2]\n}\n'  # one document over several lines
    assert record_events(spread) == [spread]
    assert record_events(b"line one\nline two\n") == [b"line one\nline two\n"]
    mixed = EVENTS[0] + b"\nnot json\n"
    assert split_json_lines(mixed) == [mixed]
    assert split_json_lines(EVENTS[0] + b"\n\xff\n") == [EVENTS[0] + b"\n\xff\n"]


def test_a_damaged_aggregate_is_the_record_whole() -> None:
    blob = kpl.pack(["k"], [(0, EVENTS[0]), (0, EVENTS[1])])
    damaged = blob[:-1] + bytes([blob[-1] ^ 0xFF])  # the digest no longer matches
    assert record_events(damaged) == [damaged]
    assert record_events(blob[:-5]) == [blob[:-5]]


def test_an_aggregate_of_json_lines_records_gives_every_line() -> None:
    blob = kpl.pack(["k"], [(0, EVENTS[0] + b"\n" + EVENTS[1] + b"\n"), (0, EVENTS[2])])
    assert record_events(blob) == EVENTS


def test_keyed_events_give_each_user_record_its_own_partition_key() -> None:
    blob = kpl.pack(["key-a", "key-b"], [(0, EVENTS[0]), (1, EVENTS[1]), (0, EVENTS[2])])
    # the aggregate's own key ("agg") only chose the shard: each event keeps its user record's
    assert keyed_events(blob, "agg") == [("key-a", EVENTS[0]), ("key-b", EVENTS[1]), ("key-a", EVENTS[2])]
    lines_in_aggregate = kpl.pack(["a", "b"], [(1, EVENTS[0] + b"\n" + EVENTS[1] + b"\n"), (0, EVENTS[2])])
    assert keyed_events(lines_in_aggregate, "agg") == [("b", EVENTS[0]), ("b", EVENTS[1]), ("a", EVENTS[2])]


def test_keyed_events_give_a_plain_or_lines_record_its_own_key() -> None:
    assert keyed_events(EVENTS[0], "u0") == [("u0", EVENTS[0])]
    assert keyed_events(b"\n".join(EVENTS) + b"\n", "batch") == [("batch", event) for event in EVENTS]
    damaged = kpl.pack(["inner"], [(0, EVENTS[0])])[:-1] + b"\x00"
    assert keyed_events(damaged, "outer") == [("outer", damaged)]


# -- config ----------------------------------------------------------------------------


def test_tail_config_puts_flags_over_the_file_and_adds_the_stream_only_when_needed() -> None:
    file_config = {"stream_name": "s", "endpoint_url": "http://a", "region": "eu-west-1", "aws_profile": "p"}
    merged = tail_config(file_config, stream="other", service="kinesis", endpoint_url="http://b", region=None)
    assert merged == {"stream_name": "s", "endpoint_url": "http://b", "region": "eu-west-1", "aws_profile": "p"}
    bare = tail_config({}, stream="f", service="firehose", endpoint_url=None, region="us-west-2")
    assert bare == {"stream_name": "f", "service": "firehose", "region": "us-west-2"}


def test_config_service_follows_the_destination_of_the_stream() -> None:
    config = {"destinations": [{"event": "*", "stream": "k"}, {"event": "x", "stream": "f", "service": "firehose"}]}
    assert config_service(config, "f") == "firehose"
    assert config_service(config, "k") == "kinesis"
    assert config_service(config, "unknown") is None
    assert config_service({"stream_name": "s", "service": "firehose"}, "s") == "firehose"


def test_output_stops_at_the_limit() -> None:
    buffer = StringIO()
    out = Output(buffer, limit=2)
    for data in (b'{"a":1}', b"x", b'{"a":3}'):
        out.emit(data)
    assert buffer.getvalue() == '{"a":1}\n"x"\n'
    assert out.full


# -- the shard loop, against a scripted fake Kinesis -------------------------------------


def _client_error(code: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} (fake)"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@dataclass
class FakeShard:
    records: list[bytes]
    closed: bool = False
    parent: str | None = None
    #: the records' partition keys (default: key-0, key-1, ...)
    keys: list[str] | None = None

    def key(self, index: int) -> str:
        return self.keys[index] if self.keys else f"key-{index}"


@dataclass
class FakeKinesis:
    """Just enough of ListShards/GetShardIterator/GetRecords, with injectable faults."""

    shards: dict[str, FakeShard]
    page_size: int = 2
    #: (shard id, GetRecords call number for that shard) -> error code to raise
    faults: dict[tuple[str, int], str] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    get_calls: dict[str, int] = field(default_factory=dict)

    def list_shards(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list_shards", kwargs))
        return {
            "Shards": [
                {"ShardId": shard_id, **({"ParentShardId": shard.parent} if shard.parent else {})}
                for shard_id, shard in self.shards.items()
            ]
        }

    def get_shard_iterator(
        self, StreamName: str, ShardId: str, ShardIteratorType: str, **kwargs: Any
    ) -> dict[str, str]:
        self.calls.append(("get_shard_iterator", (ShardId, ShardIteratorType, kwargs.get("StartingSequenceNumber"))))
        position = {"TRIM_HORIZON": 0, "LATEST": len(self.shards[ShardId].records)}.get(ShardIteratorType)
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            position = int(kwargs["StartingSequenceNumber"].rsplit("-", 1)[1]) + 1
        return {"ShardIterator": f"{ShardId}|{position}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard_id, position_text = ShardIterator.split("|")
        number = self.get_calls[shard_id] = self.get_calls.get(shard_id, 0) + 1
        self.calls.append(("get_records", (shard_id, number)))
        code = self.faults.get((shard_id, number))
        if code:
            raise _client_error(code, "GetRecords")
        shard, position = self.shards[shard_id], int(position_text)
        end = min(position + self.page_size, len(shard.records))
        records = [
            {"Data": shard.records[i], "PartitionKey": shard.key(i), "SequenceNumber": f"{shard_id}-{i}"}
            for i in range(position, end)
        ]
        at_end = end == len(shard.records)
        page: dict[str, Any] = {"Records": records, "MillisBehindLatest": 0 if at_end else 5000}
        if not (at_end and shard.closed):
            page["NextShardIterator"] = f"{shard_id}|{end}"
        return page


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.now > 3600:  # a loop that never ends must fail the test, not hang it
            raise AssertionError("the tail kept polling for an hour of fake time")


def _run_fake(
    fake: FakeKinesis, limit: int | None = None, *, show_keys: bool = False, **kwargs: Any
) -> tuple[list[str], FakeClock]:
    clock = FakeClock()
    caller = Caller(sleep=clock.sleep)
    buffer = StringIO()
    reader = KinesisTail(
        fake, "s", caller, kinesis_explainer("s", "us-east-1"), sleep=clock.sleep, clock=clock, **kwargs
    )
    reader.run(Output(buffer, limit, show_keys=show_keys))
    return buffer.getvalue().splitlines(), clock


def _data(tag: str, n: int) -> list[bytes]:
    return [json.dumps({"id": f"{tag}{i}"}).encode() for i in range(n)]


def test_every_shard_is_read_to_the_end_and_each_record_once() -> None:
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 5)), "shard-1": FakeShard(_data("b", 3))})
    lines, _ = _run_fake(fake)
    assert sorted(lines) == sorted(d.decode() for d in _data("a", 5) + _data("b", 3))
    # per shard, records come in sequence order
    assert [line for line in lines if '"a' in line] == [d.decode() for d in _data("a", 5)]


def test_an_empty_page_while_behind_is_not_the_end() -> None:
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 4))}, page_size=2)
    original = fake.get_records

    def empty_first(ShardIterator: str, Limit: int) -> dict[str, Any]:
        page = original(ShardIterator, Limit)
        if fake.get_calls["shard-0"] == 1:  # AWS may answer an empty page while behind
            return {"Records": [], "MillisBehindLatest": 86_400_000, "NextShardIterator": ShardIterator}
        return page

    fake.get_records = empty_first  # type: ignore[method-assign]
    lines, _ = _run_fake(fake)
    assert lines == [d.decode() for d in _data("a", 4)]


def test_an_expired_iterator_resumes_after_the_last_record_printed() -> None:
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 6))}, faults={("shard-0", 2): "ExpiredIteratorException"})
    lines, _ = _run_fake(fake)
    assert lines == [d.decode() for d in _data("a", 6)]
    reopened = [args for name, args in fake.calls if name == "get_shard_iterator"]
    assert reopened == [("shard-0", "TRIM_HORIZON", None), ("shard-0", "AFTER_SEQUENCE_NUMBER", "shard-0-1")]


def test_iterators_that_keep_expiring_are_an_error_not_a_loop() -> None:
    faults = {("shard-0", n): "ExpiredIteratorException" for n in range(1, 50)}
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 2))}, faults=faults)
    with pytest.raises(ToolError, match="kinesis stream 's'"):
        _run_fake(fake)


def test_throttled_reads_are_retried_after_a_backoff() -> None:
    faults = {("shard-0", 1): "ProvisionedThroughputExceededException"}
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 3))}, faults=faults)
    lines, clock = _run_fake(fake)
    assert lines == [d.decode() for d in _data("a", 3)]
    assert clock.sleeps  # it waited before trying again


def test_access_denied_is_one_line_naming_the_stream_and_the_actions() -> None:
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 1))}, faults={("shard-0", 1): "AccessDeniedException"})
    with pytest.raises(ToolError) as caught:
        _run_fake(fake)
    message = str(caught.value)
    assert "kinesis stream 's' in region us-east-1" in message
    assert "kinesis:GetRecords" in message
    assert "\n" not in message


def test_a_child_shard_is_read_after_its_parent_is_read_to_its_end() -> None:
    fake = FakeKinesis(
        {
            "shard-child": FakeShard(_data("child", 3), parent="shard-parent"),
            "shard-parent": FakeShard(_data("parent", 3), closed=True),
        }
    )
    lines, _ = _run_fake(fake)
    assert lines == [d.decode() for d in _data("parent", 3) + _data("child", 3)]


def test_the_events_of_an_aggregated_record_are_printed_one_a_line() -> None:
    aggregate = kpl.pack(["a", "b", "c"], [(i, event) for i, event in enumerate(EVENTS)])
    lines_record = b"\n".join(_data("line", 2)) + b"\n"
    fake = FakeKinesis({"shard-0": FakeShard([b'{"id":"before"}', aggregate, lines_record, b'{"id":"after"}'])})
    lines, _ = _run_fake(fake)
    expected = [b'{"id":"before"}', *EVENTS, *_data("line", 2), b'{"id":"after"}']
    assert lines == [e.decode() for e in expected]


def test_show_keys_names_the_shard_and_each_events_own_partition_key() -> None:
    aggregate = kpl.pack(["a", "b"], [(0, EVENTS[0]), (1, EVENTS[1]), (0, EVENTS[2])])
    lines_record = b"\n".join(_data("line", 2)) + b"\n"
    fake = FakeKinesis(
        {
            "shard-0": FakeShard([b'{"id":"plain"}', aggregate], keys=["u1", "aggregate-key"]),
            "shard-1": FakeShard([lines_record, b"not json"], keys=["batch", "u2"]),
        }
    )
    lines, _ = _run_fake(fake, show_keys=True)
    shown: dict[str, list[tuple[str, Any]]] = {}
    for line in lines:
        decoded = json.loads(line)
        assert list(decoded) == ["shard", "partition_key", "event"]
        shown.setdefault(decoded["shard"], []).append((decoded["partition_key"], decoded["event"]))
    # per shard in the order stored, each event with its own key: a user record's, not the aggregate's
    assert shown == {
        "shard-0": [
            ("u1", {"id": "plain"}),
            ("a", json.loads(EVENTS[0])),
            ("b", json.loads(EVENTS[1])),
            ("a", json.loads(EVENTS[2])),
        ],
        "shard-1": [("batch", {"id": "line0"}), ("batch", {"id": "line1"}), ("u2", "not json")],
    }


def test_limit_counts_events_not_records() -> None:
    aggregate = kpl.pack(["a"], [(0, event) for event in EVENTS])
    fake = FakeKinesis({"shard-0": FakeShard([aggregate, b'{"id":"after"}'])})
    lines, _ = _run_fake(fake, limit=2)
    assert lines == [e.decode() for e in EVENTS[:2]]


def test_limit_stops_in_the_middle_of_a_page() -> None:
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 10))}, page_size=10)
    lines, _ = _run_fake(fake, limit=3)
    assert lines == [d.decode() for d in _data("a", 3)]


def test_follow_polls_about_every_second_and_picks_up_new_records() -> None:
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 2))})
    original = fake.get_records

    def grow(ShardIterator: str, Limit: int) -> dict[str, Any]:
        if fake.get_calls.get("shard-0") == 3:  # new records arrive while we wait
            fake.shards["shard-0"].records.extend(_data("late", 2))
        return original(ShardIterator, Limit)

    fake.get_records = grow  # type: ignore[method-assign]
    lines, clock = _run_fake(fake, limit=4, follow=True)
    assert lines == [d.decode() for d in _data("a", 2) + _data("late", 2)]
    assert 1.0 in clock.sleeps


def test_follow_picks_up_a_shard_created_later_from_its_start() -> None:
    fake = FakeKinesis({"shard-0": FakeShard(_data("a", 1), closed=True)})
    original = fake.list_shards

    def reshard(**kwargs: Any) -> dict[str, Any]:
        if len([c for c in fake.calls if c[0] == "list_shards"]) == 1:
            fake.shards["shard-1"] = FakeShard(_data("new", 2), parent="shard-0")
        return original(**kwargs)

    fake.list_shards = reshard  # type: ignore[method-assign]
    lines, _ = _run_fake(fake, limit=2, follow=True, start="LATEST")
    assert lines == [d.decode() for d in _data("new", 2)]  # LATEST skipped the old record
    opened = {args[0]: args[1] for name, args in fake.calls if name == "get_shard_iterator"}
    assert opened == {"shard-0": "LATEST", "shard-1": "TRIM_HORIZON"}


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def list_objects_v2(self, Bucket: str, Prefix: str, **kwargs: Any) -> dict[str, Any]:
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        # unsorted on purpose: the tail must sort
        return {"Contents": [{"Key": k} for k in reversed(keys)], "IsTruncated": False}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise _client_error("NoSuchKey", "GetObject", 404)
        body = self.objects[Key]

        class Body:
            def read(self) -> bytes:
                return body

        return {"Body": Body()}


def test_firehose_objects_are_read_in_key_order_and_latest_skips_existing_ones() -> None:
    s3 = FakeS3({"p/2": b'{"n":3}\n', "p/1": b'{"n":1}\n{"n":2}\n', "other/1": b'{"n":0}\n'})
    clock = FakeClock()
    buffer = StringIO()
    FirehoseTail(s3, "b", "p/", Caller(sleep=clock.sleep), sleep=clock.sleep).run(Output(buffer, None))
    assert buffer.getvalue().splitlines() == ['{"n":1}', '{"n":2}', '{"n":3}']

    buffer = StringIO()
    FirehoseTail(s3, "b", "p/", Caller(sleep=clock.sleep), start="LATEST").run(Output(buffer, None))
    assert buffer.getvalue() == ""


def test_firehose_records_packed_as_lines_are_printed_one_event_a_line() -> None:
    packed = [b"".join(e + b"\n" for e in EVENTS[:2]), EVENTS[2] + b"\n"]  # two records, as Firehose joins them
    s3 = FakeS3({"p/1": gzip.compress(b"".join(packed))})
    buffer = StringIO()
    FirehoseTail(s3, "b", "p/", Caller()).run(Output(buffer, None))
    assert buffer.getvalue().splitlines() == [e.decode() for e in EVENTS]


# -- main() in process -----------------------------------------------------------------


def test_main_reports_an_unreadable_config_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = tail.main(["--config", str(tmp_path / "missing.json"), "--stream", "s"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.strip().count("\n") == 0
    assert "missing.json" in captured.err


def test_main_config_errors_name_the_setting_but_not_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"stream_name": "s", "external_id": "very-secret-id"}))
    assert tail.main(["--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "external_id" in err
    assert "very-secret-id" not in err


@pytest.mark.parametrize(
    "args", [["--service", "firehose", "--show-keys"], ["--show-keys", "--service", "firehose", "--bucket", "b"]]
)
def test_show_keys_with_firehose_is_a_usage_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        tail.main(["--stream", "s", *args])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("target-kinesis-tail: error: --show-keys: Firehose")


def test_show_keys_on_a_stream_the_config_sends_to_firehose_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"stream_name": "fh", "service": "firehose", "region": "us-east-1"}))
    assert tail.main(["--config", str(config), "--show-keys"]) == 2  # found once the config is read: no AWS call
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("target-kinesis-tail: error: --show-keys: Firehose")
    assert captured.err.endswith("(see --help)\n")


def test_main_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        tail.main(["--stream", "s", "--limit", "-1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--limit" in err


# -- end to end: the console script against moto -----------------------------------------


def _tail(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TAIL, *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
    )


def test_connection_failures_name_the_endpoint() -> None:
    from botocore.exceptions import EndpointConnectionError

    error = error_code(EndpointConnectionError(endpoint_url="http://127.0.0.1:1/"))
    assert (error.code, error.status) == ("ConnectionError", None)
    assert "http://127.0.0.1:1/" in tail.kinesis_explainer("s", "us-east-1")(error)
