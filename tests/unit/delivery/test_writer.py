"""The writer: routing to producers, privacy before encoding, progress and summary lines."""

from __future__ import annotations

import logging

import orjson

from target_kinesis.aws.batch_api import payload_of
from target_kinesis.aws.services import SERVICES
from target_kinesis.config.destinations import Destination, Rule
from target_kinesis.delivery.batching import Entry
from target_kinesis.delivery.encoding import Encoder
from target_kinesis.delivery.partition_keys import PartitionKeys
from target_kinesis.delivery.privacy import Privacy
from target_kinesis.delivery.producer import Pacing
from target_kinesis.delivery.routing import Router
from target_kinesis.delivery.stats import DestinationStats
from target_kinesis.delivery.writer import HELD_RECORDS, PROGRESS_SECONDS, EventWriter
from target_kinesis.events.event import Event

K = Destination("kinesis", "k")
F = Destination("firehose", "f")


class FakeProducer:
    def __init__(self, service: str) -> None:
        self.service = SERVICES[service]
        self.stats = DestinationStats()
        self.added: list[tuple[bytes, str | None]] = []
        self.max_record_bytes = 1_000
        #: How records came: ("one", 1) for add_all of one record, ("run", n) for a run of n.
        self.calls: list[tuple[str, int]] = []

    def pacing(self) -> Pacing:
        return Pacing(shards=0, records_per_second=None, bytes_per_second=None, refused={}, waited=0.0, elapsed=0.0)

    def add_all(self, records: list[tuple[int, str | None, int, bytes, int]]) -> None:
        self.calls.append(("one", len(records)))
        self._add(records)

    def add_run(self, run: Entry) -> None:
        self.calls.append(("run", run.count))
        self._add([(0, entry.key, entry.size, entry.wire, entry.shard) for entry in run.split()])

    def _add(self, records: list[tuple[int, str | None, int, bytes, int]]) -> None:
        for _, key, size, wire, _ in records:
            data = payload_of(wire)
            assert size == self.service.record_size(data, key) and wire == self.service.wire(data, key)
            self.added.append((data, key))
            self.stats.add(records_sent=1, bytes_sent=len(data))

    def flush(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _writer(rules, clock=None, **privacy) -> tuple[EventWriter, dict]:
    producers = {K: FakeProducer("kinesis"), F: FakeProducer("firehose")}
    router = Router(rules)
    encoder = Encoder(
        router,
        router.destinations,
        privacy=Privacy(**privacy),
        partition_keys=PartitionKeys("userId"),
        newline=lambda service: SERVICES[service].default_append_newline,
    )
    writer = EventWriter(encoder, producers, clock=clock or Clock())  # type: ignore[arg-type]
    return writer, producers


def _event(i: int, name: str = "Order Completed", user: str | None = "u1") -> Event:
    body = {"type": "track", "event": name, "messageId": f"m{i}", "properties": {"email": "A@x.com "}}
    if user:
        body["userId"] = user
    else:
        body["anonymousId"] = "anon"
    return Event(body, "track", name, f"m{i}", user, None if user else "anon")


def test_fan_out_encodes_once_newline_per_service_and_key_only_for_kinesis():
    writer, producers = _writer([Rule("*", K), Rule("*", F)], hash_fields=["properties.email"])
    writer.write(_event(1))
    writer.flush()
    ((k_data, k_key),) = producers[K].added
    ((f_data, f_key),) = producers[F].added
    assert f_data == k_data + b"\n" and not k_data.endswith(b"\n")
    assert k_key == "u1" and f_key is None
    assert orjson.loads(k_data)["properties"]["email"] != "A@x.com ", "privacy applied before encoding"


def test_unmapped_and_anonymous_are_counted_not_sent():
    writer, producers = _writer([Rule("Order Completed", K)], send_anonymous_users=False)
    writer.write(_event(1, name="Other"))
    writer.write(_event(2, user=None))
    writer.write(_event(3))
    writer.flush()
    assert len(producers[K].added) == 1
    assert (writer.stats.unmapped, writer.stats.dropped_anonymous, writer.stats.records_read) == (1, 1, 3)
    lines = list(writer.summary_lines())
    assert any(line.startswith("summary kinesis:k: records_sent=1 ") for line in lines)
    assert lines[-1] == (
        "summary events: read=3 unmapped=1 dropped_anonymous=1 key_fallbacks=0 timestamp_fallbacks=0 ids_not_text=0 "
        "non_finite_numbers=0 handed_back=0"
        " elapsed_seconds=0.000 records_per_second=0.0"  # no (fake) time passed: no rate
    )


def test_records_are_held_and_handed_over_as_runs_in_input_order():
    writer, producers = _writer([Rule("*", K), Rule("*", F)])
    events = HELD_RECORDS // 2  # two records an event: the last one fills the hold
    for i in range(events):
        writer.write(_event(i))
    assert producers[K].calls == [("run", events)] and producers[F].calls == producers[K].calls
    writer.write(_event(1000))
    assert producers[K].calls == [("run", events)], "held again until something hands them over"
    writer.hand_over([], list)  # a mapping process's records come after those held
    assert producers[K].calls[-1] == ("run", 1) and producers[F].calls[-1] == ("run", 1)
    expected = [f"m{i}" for i in [*range(events), 1000]]
    assert [orjson.loads(data)["messageId"] for data, _ in producers[K].added] == expected


def test_an_oversized_record_is_handed_over_alone_after_those_held():
    writer, producers = _writer([Rule("*", K)])
    writer.write(_event(1))
    big = _event(2)
    big.body["properties"]["notes"] = "x" * 2_000  # above the fake's 1,000 bytes
    writer.write(big)  # (a producer refusing it would raise here, at its own line)
    assert producers[K].calls == [("run", 1), ("one", 1)]
    assert [orjson.loads(data)["messageId"] for data, _ in producers[K].added] == ["m1", "m2"]


def test_records_encoded_already_are_held_and_handed_over_as_write_hands_over_its_own():
    """Dead letters sent again (`write_encoded`): a run of those held, an oversized one alone
    after them, then held again; a full hold goes as one run."""
    writer, producers = _writer([Rule("*", K)])
    big = _event(2)
    big.body["properties"]["notes"] = "x" * 2_000  # above the fake's 1,000 bytes
    encoded = []
    for event in (_event(1), big, _event(3)):
        writer.encoder.encode(event, encoded)
    writer.write_encoded(encoded)
    assert producers[K].calls == [("run", 1), ("one", 1)], "the third is held"
    more = []
    for i in range(HELD_RECORDS - 1):
        writer.encoder.encode(_event(10 + i), more)
    writer.write_encoded(more)
    assert producers[K].calls[-1] == ("run", HELD_RECORDS), "the hold filled: handed over"
    expected = ["m1", "m2", "m3", *(f"m{10 + i}" for i in range(HELD_RECORDS - 1))]
    assert [orjson.loads(data)["messageId"] for data, _ in producers[K].added] == expected


def _fields(line: str) -> dict[str, str]:
    """`key=value` pairs after the `summary NAME:` prefix, as tests/support/target_cli.py reads them."""
    return dict(field.split("=") for field in line.split(": ", 1)[1].split())


def test_summary_ends_with_elapsed_seconds_and_rates_per_destination_and_for_the_run():
    clock = Clock()
    clock.now = 100.0
    # "Order Completed" (one event in three) goes to f, the rest to k; the writer starts at 100 s
    writer, producers = _writer([Rule("*", K), Rule("Order Completed", F)], clock=clock)
    for i in range(30):
        writer.write(_event(i, name="Order Completed" if i % 3 == 0 else "Other"))
    writer.flush()
    clock.now = 104.0  # the summary comes 4 s after the start
    lines = list(writer.summary_lines())
    k_line = next(line for line in lines if line.startswith("summary kinesis:k: "))
    f_line = next(line for line in lines if line.startswith("summary firehose:f: "))
    k, f, events = _fields(k_line), _fields(f_line), _fields(lines[-1])
    assert k_line.endswith(" elapsed_seconds=4.000 records_per_second=5.0")  # 20 acknowledged / 4 s
    assert (f["records_sent"], f["elapsed_seconds"], f["records_per_second"]) == ("10", "4.000", "2.5")
    assert lines[-1].endswith(" handed_back=0 elapsed_seconds=4.000 records_per_second=7.5")  # 30 read / 4 s
    # the existing fields keep their order; the new ones come last
    assert list(k)[:12] == [
        "records_sent", "aws_records", "billed_units", "bytes", "calls", "retried_records", "throttles",
        "refused", "waited_seconds", "skipped", "dead_lettered", "failed",
    ]  # fmt: skip
    assert list(k)[-2:] == list(events)[-2:] == ["elapsed_seconds", "records_per_second"]
    producers[K].stats.add(resent=2)  # the optional field stays where it was, before the new ones
    k_line = next(line for line in writer.summary_lines() if line.startswith("summary kinesis:k: "))
    assert " failed=0 resent_after_reshard=2 elapsed_seconds=4.000 records_per_second=5.0" in k_line
    # what the e2e helper parses: counts as int, seconds and rates as float
    parsed = {key: float(v) if "." in v else int(v) for key, v in k.items()}
    assert parsed["elapsed_seconds"] == 4.0 and parsed["records_per_second"] == 5.0 and parsed["records_sent"] == 20


def test_progress_line_at_most_every_ten_seconds(caplog):
    clock = Clock()
    writer, _ = _writer([Rule("*", K)], clock=clock)
    caplog.set_level(logging.INFO, logger="target-kinesis")
    for i in range(3000):
        clock.now = i * (PROGRESS_SECONDS / 1000)  # 1,000 records per 10 s
        writer.write(_event(i))
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    # Checked every 1,000 records; logged only once 10 s of (fake) time have passed since the
    # last line: at 19.99 s and 29.99 s, not at 9.99 s.
    assert len(progress) == 2, progress
    assert "read=2000" in progress[0] and "read=3000" in progress[1]
    assert "kinesis:k" in progress[0] and "sent=2000" in progress[0] and "records/s" in progress[0]
