"""Unit tests of target_kinesis.producer.Producer (no network, no subprocess).

Most tests drive the Producer against `FakeAws`: a stand-in for `AwsClients` whose
`json_call(service, target, body)` decodes the request the service layer built, records
it, and answers in the shape AWS uses (PutRecords / PutRecordBatch), refusing records or
raising botocore exceptions as a test scripts it. The last tests run the real
`AwsClients` fast path (signed request, `before-send` hook) against moto's in-process mock
and read the records back.

Every backoff is zero (retry_base_delay=0, retry_max_delay=0) so retries cost nothing.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from target_kinesis.aws.clients import AwsClients
from target_kinesis.aws.services import SERVICES
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.aggregation import members_of
from target_kinesis.delivery.batching import Column
from target_kinesis.delivery.dead_letters import DeadLetters
from target_kinesis.delivery.flow import DestinationFlow
from target_kinesis.delivery.producer import PER_KEY_BACKLOG_BATCHES, OversizedRecordError, Producer, ProducerLimits
from target_kinesis.errors import DeliveryError, InputError

STREAM = "events-stream"
MIB = 1024 * 1024
ENDPOINT = "https://kinesis.us-east-1.amazonaws.com"
TARGETS = {"kinesis": "Kinesis_20131202.PutRecords", "firehose": "Firehose_20150804.PutRecordBatch"}

Rec = tuple[bytes, "str | None"]
#: (call index, records of the call) -> per-record error codes (None = accepted), an
#: exception to raise for the whole call, or None (accept everything).
Decide = Callable[[int, list[Rec]], "list[str | None] | BaseException | None"]


# -- the fake AWS ---------------------------------------------------------------------------------


@dataclass
class Call:
    service: str
    target: str
    stream: str
    records: list[Rec]


class FakeAws:
    """Answers json_call like PutRecords / PutRecordBatch; records every call and every ack.

    Also watches the per-key invariant: `key_overlaps` lists records sent while an earlier,
    different record of the same partition key was sent and not yet acknowledged. After
    `call_budget` calls it answers AccessDenied, so a producer that retries forever fails
    its test instead of hanging it.
    """

    def __init__(
        self, decide: Decide | None = None, gate: threading.Event | None = None, call_budget: int = 2000
    ) -> None:
        self.decide = decide
        self.gate = gate
        self.call_budget = call_budget
        self.calls: list[Call] = []
        self.acked: list[Rec] = []
        self.key_overlaps: list[Rec] = []
        self._outstanding: dict[str | None, bytes] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_call: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)

    def json_call(self, service: str, target: str, body: bytes) -> dict[str, Any]:
        payload = json.loads(body)
        stream = payload.get("StreamName") or payload.get("DeliveryStreamName")
        records = [(base64.b64decode(r["Data"]), r.get("PartitionKey")) for r in payload["Records"]]
        with self._lock:
            index = len(self.calls)
            self.calls.append(Call(service, target, stream, records))
            for data, key in records:
                if key is not None and self._outstanding.setdefault(key, data) != data:
                    self.key_overlaps.append((data, key))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.on_call is not None:
                self.on_call()
            if self.gate is not None and not self.gate.wait(timeout=10):
                raise RuntimeError("test gate never opened")
            if index >= self.call_budget:
                raise client_error("AccessDeniedException", 400, "FakeAws call budget exhausted")
            outcome = self.decide(index, records) if self.decide is not None else None
            if isinstance(outcome, BaseException):
                raise outcome
            codes = list(outcome) if outcome is not None else [None] * len(records)
            assert len(codes) == len(records)
            with self._lock:
                for record, code in zip(records, codes, strict=True):
                    if code is None:
                        self.acked.append(record)
                        if self._outstanding.get(record[1]) == record[0]:
                            del self._outstanding[record[1]]
                return self._answer(service, codes)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, service: str, codes: list[str | None]) -> dict[str, Any]:
        failed = sum(code is not None for code in codes)
        if service == "kinesis":
            return {
                "FailedRecordCount": failed,
                "Records": [
                    {"SequenceNumber": str(next(self._sequence)), "ShardId": "shardId-000000000000"}
                    if code is None
                    else {"ErrorCode": code, "ErrorMessage": f"{code} (fake)"}
                    for code in codes
                ],
            }
        return {
            "FailedPutCount": failed,
            "Encrypted": False,
            "RequestResponses": [
                {"RecordId": f"id-{next(self._sequence)}"}
                if code is None
                else {"ErrorCode": code, "ErrorMessage": f"{code} (fake)"}
                for code in codes
            ],
        }

    def ack_counts(self) -> Counter[Rec]:
        with self._lock:
            return Counter(self.acked)


def client_error(code: str, status: int = 400, message: str | None = None) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message or f"{code} message"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutRecords",
    )


def make_records(n: int, service: str = "kinesis", keys: int = 5) -> list[Rec]:
    """n distinct JSON records; Kinesis ones carry a partition key, Firehose ones do not."""
    out: list[Rec] = []
    for i in range(n):
        data = json.dumps({"messageId": f"m-{i:04d}", "n": i}).encode()
        out.append((data, f"user-{i % keys}") if service == "kinesis" else (data + b"\n", None))
    return out


#: How records reach the producer: one by one (`add`, the one-process path), or as runs
#: cut from a column (`add_run`, as mapping processes hand them over), one or several.
ADDING = pytest.mark.parametrize("adding", ["one_by_one", "one_run", "runs"])


def add_records(producer: Producer, records: list[Rec], adding: str = "one_by_one") -> None:
    if adding == "one_by_one":
        for data, key in records:
            add(producer, data, key)
        return
    service = producer.service
    column = Column.of(
        [service.wire(data, key) for data, key in records],
        [key for _, key in records],
        [service.record_size(data, key) for data, key in records],
    )
    rng = random.Random(len(records))
    start = 0
    while start < len(records):
        end = len(records) if adding == "one_run" else min(len(records), start + rng.randint(1, 17))
        producer.add_run(column.entry(start, end))
        start = end


def call_bytes(service: str, records: list[Rec]) -> int:
    """What a call counts against max_batch_bytes: data, plus the UTF-8 key for Kinesis."""
    if service == "kinesis":
        return sum(len(data) + len((key or "").encode("utf-8")) for data, key in records)
    return sum(len(data) for data, _ in records)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def read_dead_letters(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- fixtures -------------------------------------------------------------------------------------

MakeProducer = Callable[..., Producer]


def unlimited_flow() -> DestinationFlow:
    """No shard map and no caps: nothing paced until AWS refuses for throughput."""
    return DestinationFlow(
        (),
        shard_records_per_second=None,
        shard_bytes_per_second=None,
        records_per_second=None,
        bytes_per_second=None,
        clock=time.monotonic,
    )


def add(producer: Producer, data: bytes, key: str | None) -> None:
    """Queue one record as the encoder would hand it over."""
    service = producer.service
    producer.add_all([(0, key, service.record_size(data, key), service.wire(data, key), 0)])


@pytest.fixture
def make_producer() -> Iterator[MakeProducer]:
    """Factory for Producers with fast test defaults; every producer is closed afterwards."""
    made: list[tuple[Producer, DeadLetters]] = []

    def make(
        aws: Any,
        service: str = "kinesis",
        *,
        stream: str = STREAM,
        dead_letter_path: Path | None = None,
        refresh: Callable[[], bool] = lambda: False,
        flow: DestinationFlow | None = None,
        shard_maps: Any = None,
        **overrides: Any,
    ) -> Producer:
        settings: dict[str, Any] = {
            "max_batch_records": 500,
            "max_batch_bytes": SERVICES[service].limits.default_batch_bytes,
            "max_record_bytes": SERVICES[service].limits.default_record_bytes,
            "max_concurrent_requests": 4,
            "max_retries": 3,
            "retry_base_delay": 0,
            "retry_max_delay": 0,
            "on_oversized_record": "fail",
            "per_key_order": False,
        }
        settings.update(overrides)
        dead_letters = DeadLetters(str(dead_letter_path) if dead_letter_path else None)
        producer = Producer(
            Destination(service, stream),
            SERVICES[service],
            aws,
            ProducerLimits(**settings),
            flow=flow or unlimited_flow(),
            dead_letters=dead_letters,
            refresh_credentials=refresh,
            shard_maps=shard_maps,
        )
        made.append((producer, dead_letters))
        return producer

    yield make
    for producer, dead_letters in made:
        gate = getattr(producer.aws, "gate", None)
        if gate is not None:
            gate.set()  # a failed test must not leave a worker blocked in the fake
        producer.close()
        dead_letters.close()


SERVICE_NAMES = pytest.mark.parametrize("service", ["kinesis", "firehose"])


# -- partial failures -----------------------------------------------------------------------------


@ADDING
@SERVICE_NAMES
def test_partial_failure_resends_only_the_refused_records(
    service: str, make_producer: MakeProducer, adding: str
) -> None:
    records = make_records(6, service)
    script: dict[int, dict[int, str]] = {
        0: {1: "InternalFailure", 3: "InternalFailure", 4: "InternalFailure"},  # call 1: refuse 1, 3, 4
        1: {1: "InternalFailure"},  # call 2 (records 1, 3, 4): refuse record 3 again (position 1)
    }

    def decide(index: int, call: list[Rec]) -> list[str | None]:
        refusals = script.get(index, {})
        return [refusals.get(i) for i in range(len(call))]

    aws = FakeAws(decide)
    producer = make_producer(aws, service)
    add_records(producer, records, adding)
    producer.flush()

    assert [c.records for c in aws.calls] == [records, [records[1], records[3], records[4]], [records[3]]]
    assert {c.target for c in aws.calls} == {TARGETS[service]}
    assert {c.stream for c in aws.calls} == {STREAM}
    # Every record acknowledged exactly once; accepted records were never sent again.
    assert aws.ack_counts() == Counter(records)
    sent = Counter(r for c in aws.calls for r in c.records)
    assert [sent[r] for r in records] == [1, 2, 1, 3, 2, 1]

    stats = producer.stats
    assert stats.records_sent == 6
    assert stats.bytes_sent == call_bytes(service, records)
    assert stats.calls == 3
    assert stats.retried_records == 3 + 1
    assert stats.throttles == 0
    assert stats.failed == 0


@ADDING
@SERVICE_NAMES
def test_records_refused_for_throughput_are_sent_again_without_using_up_retries(
    service: str, make_producer: MakeProducer, adding: str
) -> None:
    """More refusals than max_retries allows, all for throughput: every record lands, nothing fails."""
    records = make_records(6, service)
    capacity = CAPACITY[service]

    def decide(index: int, call: list[Rec]) -> list[str | None]:
        # The first five calls refuse every other record for throughput.
        return [capacity if index < 5 and i % 2 else None for i in range(len(call))]

    aws = FakeAws(decide)
    producer = make_producer(aws, service, max_retries=1)
    add_records(producer, records, adding)
    producer.flush()

    assert aws.ack_counts() == Counter(records)
    assert len(aws.calls) > 2, "more calls than max_retries would allow"
    stats = producer.stats
    assert (stats.records_sent, stats.failed, stats.retried_records) == (6, 0, 0)
    assert stats.throttles >= 2
    assert producer.flow.stats.refused[capacity] >= 3


@pytest.mark.parametrize("service", ["kinesis", "firehose"])
def test_throughput_refusals_for_too_long_fail_the_run(
    service: str, make_producer: MakeProducer, tmp_path: Path
) -> None:
    """Nothing accepted for stall_timeout_seconds while records wait for capacity: undeliverable."""
    capacity = CAPACITY[service]
    records = make_records(3, service)
    dead_path = tmp_path / "dead.jsonl"
    aws = FakeAws(lambda index, call: [capacity] * len(call))
    producer = make_producer(aws, service, stall_timeout_seconds=0.5, dead_letter_path=dead_path)
    started = time.monotonic()
    for data, key in records:
        add(producer, data, key)
    with pytest.raises(DeliveryError) as raised:
        producer.flush()
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert "ThroughputStalled" in message and "stall_timeout_seconds" in message and capacity in message
    # What to do: a Kinesis stream takes more shards; a delivery stream a higher quota.
    assert ("add shards" if service == "kinesis" else "the delivery stream is at its quota") in message
    assert producer.stats.snapshot()["failed"] == 3
    assert len(read_dead_letters(dead_path)) == 3


def test_short_answer_counts_missing_records_as_refused(make_producer: MakeProducer) -> None:
    """An answer listing fewer records than sent must not let the missing ones pass as sent."""
    records = make_records(4)
    aws = FakeAws()
    original = aws._answer

    def truncated(service: str, codes: list[str | None]) -> dict[str, Any]:
        answer = original(service, codes)
        if len(aws.calls) == 1:
            answer["Records"] = answer["Records"][:2]
        return answer

    aws._answer = truncated  # type: ignore[method-assign]
    producer = make_producer(aws)
    for data, key in records:
        add(producer, data, key)
    producer.flush()
    assert [c.records for c in aws.calls] == [records, records[2:]]
    assert producer.stats.records_sent == 4


# -- call-level transient failures ----------------------------------------------------------------

#: What each service answers a record (or a call) beyond its capacity with.
CAPACITY = {"kinesis": "ProvisionedThroughputExceededException", "firehose": "ServiceUnavailableException"}

TRANSIENT = {
    "internal-500": (lambda: client_error("InternalFailure", 500), False),
    "unknown-503": (lambda: client_error("SomethingNew", 503), False),
    "connection": (lambda: EndpointConnectionError(endpoint_url=ENDPOINT), False),
    "read-timeout": (lambda: ReadTimeoutError(endpoint_url=ENDPOINT), False),
}


@ADDING
@pytest.mark.parametrize("fault", TRANSIENT.keys())
@SERVICE_NAMES
def test_call_level_transient_errors_are_retried_then_succeed(
    fault: str, service: str, make_producer: MakeProducer, adding: str
) -> None:
    make_error, is_throttle = TRANSIENT[fault]
    records = make_records(5, service)
    aws = FakeAws(lambda index, call: make_error() if index < 2 else None)
    producer = make_producer(aws, service)
    add_records(producer, records, adding)
    producer.flush()

    assert [c.records for c in aws.calls] == [records] * 3  # the whole call again, twice
    assert aws.ack_counts() == Counter(records)
    stats = producer.stats
    assert (stats.calls, stats.records_sent, stats.retried_records, stats.failed) == (3, 5, 10, 0)
    assert stats.throttles == (2 if is_throttle else 0)


@SERVICE_NAMES
def test_a_call_refused_whole_for_throughput_is_sent_again_whole(service: str, make_producer: MakeProducer) -> None:
    records = make_records(5, service)
    aws = FakeAws(lambda index, call: client_error(CAPACITY[service], 400) if index < 3 else None)
    producer = make_producer(aws, service, max_retries=1)
    for data, key in records:
        add(producer, data, key)
    producer.flush()
    assert aws.ack_counts() == Counter(records)
    assert len(aws.calls) == 4
    assert (producer.stats.retried_records, producer.stats.failed, producer.stats.throttles) == (0, 0, 3)
    assert producer.flow.stats.refused == {CAPACITY[service]: 15}


# -- retries exhausted ----------------------------------------------------------------------------


@ADDING
@pytest.mark.parametrize("level", ["per_record", "call"])
@SERVICE_NAMES
def test_retries_exhausted_raise_and_dead_letter(
    level: str, service: str, make_producer: MakeProducer, adding: str, tmp_path: Path
) -> None:
    code = "InternalFailure"

    def decide(index: int, call: list[Rec]) -> Any:
        if level == "call":
            return client_error(code, 500)
        return [code] * len(call)

    max_retries = 2
    records = make_records(3, service)
    dead_path = tmp_path / "dead" / "letters.jsonl"
    aws = FakeAws(decide)
    producer = make_producer(aws, service, dead_letter_path=dead_path, max_retries=max_retries)
    add_records(producer, records, adding)
    with pytest.raises(DeliveryError) as raised:
        producer.flush()

    message = str(raised.value)
    assert f"stream '{STREAM}'" in message
    assert code in message
    assert f"after {max_retries + 1} attempt(s)" in message
    assert "retries exhausted" in message
    assert len(aws.calls) == max_retries + 1
    assert producer.stats.snapshot()["failed"]

    letters = read_dead_letters(dead_path)
    assert len(letters) == len(records)
    for letter, (data, key) in zip(letters, records, strict=True):
        assert letter["reason"] == "undeliverable"
        assert letter["service"] == service
        assert letter["stream"] == STREAM
        assert letter["error_code"] == code
        assert letter["attempts"] == max_retries + 1
        assert letter["partition_key"] == key
        assert letter["record"] == json.loads(data)
    stats = producer.stats
    assert (stats.failed, stats.dead_lettered, stats.records_sent) == (3, 3, 0)
    # A failed producer refuses more input rather than buffering it.
    with pytest.raises(DeliveryError):
        add(producer, *records[0])


@ADDING
def test_retries_exhausted_fail_only_the_refused_records(
    make_producer: MakeProducer, adding: str, tmp_path: Path
) -> None:
    records = make_records(4)
    dead_path = tmp_path / "letters.jsonl"
    # The first record is refused every time; the others land on the first call.
    aws = FakeAws(lambda index, call: ["InternalFailure" if r == records[0] else None for r in call])
    producer = make_producer(aws, dead_letter_path=dead_path, max_retries=1)
    add_records(producer, records, adding)
    with pytest.raises(DeliveryError, match="1 record"):
        producer.flush()
    assert [c.records for c in aws.calls] == [records, records[:1]]
    assert [letter["record"] for letter in read_dead_letters(dead_path)] == [json.loads(records[0][0])]
    assert (producer.stats.records_sent, producer.stats.failed) == (3, 1)


# -- fatal errors ---------------------------------------------------------------------------------

FATAL = {
    "AccessDeniedException": "IAM policy",
    "ResourceNotFoundException": "does not exist",
    "KMSAccessDeniedException": "KMS key",
    "ValidationException": "rejected the request as invalid",
}


@pytest.mark.parametrize("level", ["per_record", "call"])
@pytest.mark.parametrize("code", FATAL.keys())
def test_fatal_codes_stop_after_one_call(code: str, level: str, make_producer: MakeProducer, tmp_path: Path) -> None:
    def decide(index: int, call: list[Rec]) -> Any:
        return client_error(code, 400) if level == "call" else [code] * len(call)

    records = make_records(4)
    dead_path = tmp_path / "letters.jsonl"
    aws = FakeAws(decide)
    producer = make_producer(aws, dead_letter_path=dead_path, max_retries=5)
    for data, key in records:
        add(producer, data, key)
    with pytest.raises(DeliveryError) as raised:
        producer.flush()

    assert len(aws.calls) == 1  # never retried
    message = str(raised.value)
    assert f"kinesis stream '{STREAM}'" in message
    assert code in message
    assert FATAL[code] in message  # the hint an operator acts on
    assert "after 1 attempt(s)" in message
    assert [letter["error_code"] for letter in read_dead_letters(dead_path)] == [code] * 4
    assert producer.stats.failed == 4


def test_fatal_error_surfaces_at_the_next_add(make_producer: MakeProducer) -> None:
    aws = FakeAws(lambda index, call: client_error("AccessDeniedException", 400))
    producer = make_producer(aws, max_batch_records=1)
    add(producer, b'{"n": 0}', "k")  # a full batch: sent at once
    with pytest.raises(DeliveryError):
        producer.flush()  # returns once the call is over: the producer knows it failed
    with pytest.raises(DeliveryError, match="AccessDeniedException"):
        add(producer, b'{"n": 1}', "k")
    assert len(aws.calls) == 1


# -- expired credentials --------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["per_record", "call"])
def test_expired_token_refreshes_credentials_and_retries(level: str, make_producer: MakeProducer) -> None:
    def decide(index: int, call: list[Rec]) -> Any:
        if index > 0:
            return None
        return client_error("ExpiredTokenException", 400) if level == "call" else ["ExpiredTokenException"] * len(call)

    refreshes: list[int] = []

    def refresh() -> bool:
        refreshes.append(len(aws.calls))
        return True

    records = make_records(3)
    aws = FakeAws(decide)
    producer = make_producer(aws, refresh=refresh)
    for data, key in records:
        add(producer, data, key)
    producer.flush()
    assert refreshes == [1]  # refreshed once, after the first call and before the retry
    assert [c.records for c in aws.calls] == [records, records]
    assert aws.ack_counts() == Counter(records)
    assert producer.stats.failed == 0


def test_expired_static_credentials_fail_with_a_role_arn_hint(make_producer: MakeProducer, tmp_path: Path) -> None:
    refreshes: list[int] = []

    def refresh() -> bool:
        refreshes.append(1)
        return False  # static keys: nothing to refresh

    dead_path = tmp_path / "letters.jsonl"
    aws = FakeAws(lambda index, call: client_error("ExpiredTokenException", 400))
    producer = make_producer(aws, refresh=refresh, dead_letter_path=dead_path)
    for data, key in make_records(2):
        add(producer, data, key)
    with pytest.raises(DeliveryError) as raised:
        producer.flush()
    assert refreshes == [1]
    assert len(aws.calls) == 1
    message = str(raised.value)
    assert "ExpiredTokenException" in message
    assert "role_arn" in message
    assert STREAM in message
    assert [letter["error_code"] for letter in read_dead_letters(dead_path)] == ["ExpiredTokenException"] * 2


def test_expired_static_credentials_after_retries_count_every_attempt(make_producer: MakeProducer) -> None:
    def decide(index: int, call: list[Rec]) -> Any:
        return client_error("InternalFailure" if index < 2 else "ExpiredTokenException", 500 if index < 2 else 400)

    aws = FakeAws(decide)
    producer = make_producer(aws)
    add(producer, b'{"n": 1}', "k")
    with pytest.raises(DeliveryError) as raised:
        producer.flush()
    assert len(aws.calls) == 3
    assert "after 3 attempt(s)" in str(raised.value)


def test_access_denied_hint_has_no_unformatted_placeholder(make_producer: MakeProducer) -> None:
    producer = make_producer(FakeAws(lambda index, call: client_error("AccessDeniedException")))
    add(producer, b'{"n": 1}', "k")
    with pytest.raises(DeliveryError) as raised:
        producer.flush()
    assert "{action}" not in str(raised.value)
    assert "kinesis:PutRecords" in str(raised.value)


# -- limits ---------------------------------------------------------------------------------------


@ADDING
@SERVICE_NAMES
def test_every_call_respects_the_record_and_byte_limits(service: str, make_producer: MakeProducer, adding: str) -> None:
    max_records, max_bytes = 3, 120
    rng = random.Random(7)
    records: list[Rec] = []
    for i in range(200):
        data = f'{{"n":{i},"pad":"{"x" * rng.randint(0, 60)}"}}'.encode()
        # Multi-byte keys: the limit counts UTF-8 bytes, not characters.
        key = f"ключ-{rng.randint(0, 9)}" * rng.randint(1, 3) if service == "kinesis" else None
        records.append((data, key))
    aws = FakeAws()
    producer = make_producer(
        aws, service, max_batch_records=max_records, max_batch_bytes=max_bytes, max_concurrent_requests=3
    )
    add_records(producer, records, adding)
    producer.flush()

    assert aws.calls
    for call in aws.calls:
        assert 1 <= len(call.records) <= max_records
        assert call_bytes(service, call.records) <= max_bytes
    # No record split, lost or duplicated: every call carries whole records from the input.
    assert Counter(r for c in aws.calls for r in c.records) == Counter(records)
    assert aws.ack_counts() == Counter(records)
    assert producer.stats.records_sent == len(records)
    # Each call is a run of consecutive input records, cut only when the next would not fit.
    position = {record: i for i, record in enumerate(records)}
    batches = sorted(([position[r] for r in c.records] for c in aws.calls), key=lambda b: b[0])
    assert [i for batch in batches for i in batch] == list(range(len(records)))
    for batch, following in itertools.pairwise(batches):
        taken = [records[i] for i in batch]
        assert len(taken) == max_records or call_bytes(service, [*taken, records[following[0]]]) > max_bytes


def test_kinesis_byte_limit_counts_the_partition_key(make_producer: MakeProducer) -> None:
    # 6 data bytes + 4 key bytes = 10 a record: two fit in 20 bytes, three would if keys were free.
    records = [(f"data-{i}".encode(), f"ke{i:02d}") for i in range(6)]
    aws = FakeAws()
    producer = make_producer(aws, max_batch_records=3, max_batch_bytes=20, max_concurrent_requests=1)
    for data, key in records:
        add(producer, data, key)
    producer.flush()
    assert [len(c.records) for c in aws.calls] == [2, 2, 2]
    assert [r for c in aws.calls for r in c.records] == records


# -- oversized records ----------------------------------------------------------------------------


@SERVICE_NAMES
def test_oversized_record_fails_by_default(service: str, make_producer: MakeProducer) -> None:
    aws = FakeAws()
    producer = make_producer(aws, service, max_record_bytes=100)
    key = "k" if service == "kinesis" else None
    add(producer, b"x" * 99, key)  # 99 + 1 key byte = 100: at the limit is fine
    with pytest.raises(OversizedRecordError) as raised:
        add(producer, b"x" * 101, key)
    assert isinstance(raised.value, InputError)
    message = str(raised.value)
    assert f"{service} stream '{STREAM}'" in message
    assert "max_record_bytes (100)" in message
    producer.flush()
    assert [r for c in aws.calls for r in c.records] == [(b"x" * 99, key)]


def test_kinesis_record_size_includes_the_partition_key(make_producer: MakeProducer) -> None:
    producer = make_producer(FakeAws(), max_record_bytes=100)
    with pytest.raises(OversizedRecordError):
        add(producer, b"x" * 95, "ten-bytes!")


def test_record_above_the_batch_byte_limit_is_oversized(make_producer: MakeProducer) -> None:
    """max_record_bytes is capped by max_batch_bytes: such a record could never be sent."""
    producer = make_producer(FakeAws(), max_record_bytes=MIB, max_batch_bytes=50)
    with pytest.raises(OversizedRecordError):
        add(producer, b"x" * 60, "k")


@SERVICE_NAMES
def test_oversized_record_skip_counts_and_continues(service: str, make_producer: MakeProducer) -> None:
    aws = FakeAws()
    producer = make_producer(aws, service, max_record_bytes=100, on_oversized_record="skip")
    records = make_records(3, service)
    add(producer, *records[0])
    add(producer, b"y" * 500, "k" if service == "kinesis" else None)
    add(producer, *records[1])
    add(producer, *records[2])
    producer.flush()
    assert producer.stats.skipped == 1
    assert producer.stats.records_sent == 3
    assert [r for c in aws.calls for r in c.records] == records


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_oversized_record_in_a_run_is_refused_alone(policy: str, make_producer: MakeProducer) -> None:
    """The records of a run before an oversized one are queued, as if added one by one;
    `position` tells which record of the run it was (the caller names its input line)."""
    aws = FakeAws()
    producer = make_producer(aws, max_record_bytes=100, on_oversized_record=policy)
    records = make_records(5)
    records[2] = (b"y" * 200, "k")
    if policy == "fail":
        with pytest.raises(OversizedRecordError) as raised:
            add_records(producer, records, "one_run")
        assert raised.value.position == 2
        expected = records[:2]
    else:
        add_records(producer, records, "one_run")
        expected = records[:2] + records[3:]
    producer.flush()
    assert [r for c in aws.calls for r in c.records] == expected
    assert producer.stats.records_sent == len(expected)


@SERVICE_NAMES
def test_oversized_record_dead_letter(service: str, make_producer: MakeProducer, tmp_path: Path) -> None:
    aws = FakeAws()
    dead_path = tmp_path / "letters.jsonl"
    producer = make_producer(
        aws, service, max_record_bytes=100, on_oversized_record="dead_letter", dead_letter_path=dead_path
    )
    big = json.dumps({"messageId": "big", "pad": "z" * 200}).encode()
    key = "user-big" if service == "kinesis" else None
    add(producer, big, key)
    add(producer, *make_records(1, service)[0])
    producer.flush()

    letters = read_dead_letters(dead_path)
    assert len(letters) == 1
    letter = letters[0]
    assert letter["reason"] == "oversized"
    assert letter["stream"] == STREAM
    assert letter["service"] == service
    assert letter["partition_key"] == key
    assert letter["record"] == json.loads(big)
    assert letter["error_code"] == "RecordTooLarge"
    assert producer.stats.dead_lettered == 1
    assert producer.stats.skipped == 0
    assert [r for c in aws.calls for r in c.records] == make_records(1, service)


# -- concurrency and backpressure -----------------------------------------------------------------


def test_concurrency_is_bounded_and_add_blocks_when_the_backlog_is_full(make_producer: MakeProducer) -> None:
    gate = threading.Event()
    aws = FakeAws(gate=gate)
    producer = make_producer(aws, max_concurrent_requests=2, max_batch_records=1)
    records = make_records(40)
    added = 0

    def feed() -> None:
        nonlocal added
        for data, key in records:
            add(producer, data, key)
            added += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    wait_until(lambda: aws.in_flight == 2)
    time.sleep(0.2)
    stalled_at = added
    time.sleep(0.3)
    # Blocked: 2 batches on the wire, at most one more full batch buffered.
    assert added == stalled_at
    assert stalled_at <= 3
    assert feeder.is_alive()
    assert aws.in_flight == 2
    assert len(aws.calls) == 2

    gate.set()
    feeder.join(timeout=5)
    assert not feeder.is_alive()
    producer.flush()
    assert added == len(records)
    assert aws.max_in_flight == 2  # used the concurrency allowed, never more
    assert aws.ack_counts() == Counter(records)


def test_concurrency_bound_holds_under_retries(make_producer: MakeProducer) -> None:
    rng = random.Random(3)
    lock = threading.Lock()

    def decide(index: int, call: list[Rec]) -> list[str | None]:
        time.sleep(0.002)
        with lock:
            return [("InternalFailure" if rng.random() < 0.3 else None) for _ in call]

    aws = FakeAws(decide)
    producer = make_producer(aws, max_concurrent_requests=3, max_batch_records=4, max_retries=40)
    records = make_records(200)
    for data, key in records:
        add(producer, data, key)
    producer.flush()
    assert 1 < aws.max_in_flight <= 3
    assert aws.ack_counts() == Counter(records)


# -- per_key ordering -----------------------------------------------------------------------------


@pytest.mark.slow
@ADDING
def test_per_key_order_survives_partial_failures(make_producer: MakeProducer, adding: str) -> None:
    rng = random.Random(20240611)
    lock = threading.Lock()

    def decide(index: int, call: list[Rec]) -> list[str | None]:
        with lock:
            codes = [("ProvisionedThroughputExceededException" if rng.random() < 0.4 else None) for _ in call]
            pause = rng.random() * 0.001
        time.sleep(pause)  # let concurrent calls overtake each other
        return codes

    keys_rng = random.Random(99)
    records = [(json.dumps({"n": i}).encode(), f"key-{keys_rng.randint(0, 11)}") for i in range(300)]
    aws = FakeAws(decide)
    producer = make_producer(aws, per_key_order=True, max_batch_records=5, max_concurrent_requests=3, max_retries=60)
    add_records(producer, records, adding)
    producer.flush()

    assert aws.ack_counts() == Counter(records)
    assert aws.key_overlaps == [], "a key's next record was sent before the previous one was acknowledged"
    for call in aws.calls:
        keys = [key for _, key in call.records]
        assert len(keys) == len(set(keys)), "a call held two records of one key"
    expected: dict[str | None, list[bytes]] = defaultdict(list)
    for data, key in records:
        expected[key].append(data)
    landed: dict[str | None, list[bytes]] = defaultdict(list)
    for data, key in aws.acked:
        landed[key].append(data)
    assert landed == expected  # per key, acknowledged in input order
    assert producer.flow.stats.refused["ProvisionedThroughputExceededException"] > 0  # the refusals happened


def test_per_key_hot_key_buffer_stays_bounded(make_producer: MakeProducer) -> None:
    max_records = 2
    gate = threading.Event()
    aws = FakeAws(gate=gate)
    producer = make_producer(aws, per_key_order=True, max_batch_records=max_records, max_concurrent_requests=2)
    bound = PER_KEY_BACKLOG_BATCHES * max_records + max_records
    assert bound <= 10 * max_records
    pending_seen: list[int] = []
    aws.on_call = lambda: pending_seen.append(producer.waiting)

    records = [(json.dumps({"n": i}).encode(), "hot") for i in range(120)]
    added = 0

    def feed() -> None:
        nonlocal added
        for data, key in records:
            add(producer, data, key)
            added += 1
            pending_seen.append(producer.waiting)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    wait_until(lambda: aws.in_flight == 1)
    time.sleep(0.2)
    stalled_at = added
    time.sleep(0.3)
    # The key is in flight and the backlog is full: add() waits instead of buffering.
    assert added == stalled_at < len(records)
    assert feeder.is_alive()
    assert aws.in_flight == 1  # one key: one record on the wire at a time
    assert producer.waiting <= bound

    gate.set()
    feeder.join(timeout=5)
    assert not feeder.is_alive()
    producer.flush()
    assert max(pending_seen) <= bound
    assert all(len(c.records) == 1 for c in aws.calls)
    assert aws.max_in_flight == 1
    assert aws.acked == records  # input order


# -- the signed fast path against moto's in-process mock ------------------------------------------

REGION = "us-east-1"
BUCKET = "target-kinesis-producer-test"


@pytest.fixture
def moto_aws() -> Iterator[AwsClients]:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws():
        settings = Settings.from_config(
            {
                "stream_name": "unused",
                "region": REGION,
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
            }
        )
        clients = AwsClients(settings.aws_access())
        for service in ("kinesis", "firehose"):
            # Only moto's before-send hook may answer: the network path must never be used.
            def no_network(*args: Any, **kwargs: Any) -> Any:
                raise AssertionError("json_call went to the network instead of moto's before-send hook")

            clients.client(service)._endpoint.http_session.send = no_network
        yield clients


def test_moto_kinesis_fast_path_delivers_every_record_once(moto_aws: AwsClients, make_producer: MakeProducer) -> None:
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName="moto-events", ShardCount=2)
    records = [(json.dumps({"messageId": f"m-{i}", "n": i}).encode(), f"user-{i % 7}") for i in range(60)]
    # One call at a time: moto loses acknowledged records when one stream is written by concurrent
    # calls (seen here once under load); concurrency is tested against kinesalite and the fault proxy.
    producer = make_producer(moto_aws, stream="moto-events", max_batch_records=7, max_concurrent_requests=1)
    for data, key in records:
        add(producer, data, key)
    producer.flush()

    landed: list[Rec] = []
    for shard in kinesis.list_shards(StreamName="moto-events")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="moto-events", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            landed.extend((r["Data"], r["PartitionKey"]) for r in answer["Records"])
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
    assert Counter(landed) == Counter(records)
    assert producer.stats.records_sent == 60
    assert producer.stats.calls == 9  # ceil(60 / 7)


def test_moto_firehose_fast_path_delivers_newline_framed_records(
    moto_aws: AwsClients, make_producer: MakeProducer
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    firehose = boto3.client("firehose", region_name=REGION)
    firehose.create_delivery_stream(
        DeliveryStreamName="moto-firehose",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
        },
    )
    records = make_records(45, "firehose")
    producer = make_producer(
        moto_aws, "firehose", stream="moto-firehose", max_batch_records=10, max_concurrent_requests=2
    )
    for data, key in records:
        add(producer, data, key)
    producer.flush()

    bodies = [
        s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    ]
    assert len(bodies) == 5  # one object per PutRecordBatch in moto
    assert all(body.endswith(b"\n") for body in bodies)
    lines = [line + b"\n" for body in bodies for line in body.split(b"\n")[:-1]]
    assert Counter(lines) == Counter(data for data, _ in records)
    assert producer.stats.records_sent == 45


def test_moto_missing_stream_is_fatal_through_the_fast_path(moto_aws: AwsClients, make_producer: MakeProducer) -> None:
    producer = make_producer(moto_aws, stream="no-such-stream")
    add(producer, b'{"n": 1}', "k")
    with pytest.raises(DeliveryError) as raised:
        producer.flush()
    message = str(raised.value)
    assert "no-such-stream" in message
    assert "ResourceNotFoundException" in message
    assert producer.stats.calls == 1


# -- aggregation ----------------------------------------------------------------------------------

PACKING = pytest.mark.parametrize(
    ("service", "form", "max_bytes", "max_records"),
    [("kinesis", "kpl", 51_200, None), ("firehose", "lines", 1000 * 1024, 500)],
)


def add_packed(producer: Producer, records: list[Rec]) -> None:
    """Queue events as the encoder hands them to a destination that packs: their bytes as they are."""
    service = producer.service
    producer.add_all([(0, key, service.record_size(data, key), data, 0) for data, key in records])


def unpacked(service: str, calls: list[Call]) -> list[Rec]:
    """The events of every record sent, as a consumer unpacks them."""
    events: list[Rec] = []
    for call in calls:
        for data, key in call.records:
            events.extend(members_of("kpl" if service == "kinesis" else "lines", data, key))
    return events


@PACKING
def test_packed_events_are_sent_in_few_records_and_counted_as_events(
    service: str, form: str, max_bytes: int, max_records: int | None, make_producer: MakeProducer
) -> None:
    aws = FakeAws()
    producer = make_producer(
        aws, service, aggregation=form, aggregation_max_bytes=max_bytes, aggregation_max_records=max_records
    )
    records = make_records(1200, service)
    add_packed(producer, records)
    producer.flush()
    sent = [record for call in aws.calls for record in call.records]
    assert len(sent) < 20, f"{len(sent)} AWS records for 1,200 events"
    assert Counter(unpacked(service, aws.calls)) == Counter(records), "every event once, with its own key"
    stats = producer.stats.snapshot()
    assert stats["records_sent"] == 1200 and stats["aws_records"] == len(sent)
    assert producer.unacknowledged() == 0


@PACKING
def test_a_packed_record_refused_for_throughput_is_sent_again_whole(
    service: str, form: str, max_bytes: int, max_records: int | None, make_producer: MakeProducer
) -> None:
    code = "ProvisionedThroughputExceededException" if service == "kinesis" else "ServiceUnavailableException"
    aws = FakeAws(lambda index, records: [code] * len(records) if index == 0 else None)
    producer = make_producer(
        aws, service, aggregation=form, aggregation_max_bytes=max_bytes, aggregation_max_records=max_records
    )
    records = make_records(300, service)
    add_packed(producer, records)
    producer.flush()
    first = aws.calls[0].records
    assert any(call.records[: len(first)] == first for call in aws.calls[1:]), "the same packed bytes again"
    assert Counter(unpacked(service, aws.calls[1:])) == Counter(records)
    assert producer.stats.snapshot()["records_sent"] == 300


@PACKING
def test_dead_letters_of_a_packed_record_are_its_events(
    service: str, form: str, max_bytes: int, max_records: int | None, make_producer: MakeProducer, tmp_path: Path
) -> None:
    aws = FakeAws(lambda index, records: client_error("AccessDeniedException"))
    dead = tmp_path / "dead.jsonl"
    producer = make_producer(
        aws,
        service,
        dead_letter_path=dead,
        aggregation=form,
        aggregation_max_bytes=max_bytes,
        aggregation_max_records=max_records,
    )
    records = make_records(250, service)
    add_packed(producer, records)
    with pytest.raises(DeliveryError, match="250 record"):
        producer.flush()
    letters = read_dead_letters(dead)
    # The events one by one with their own keys (in order per lane: per key, without a shard map).
    got = sorted((letter["record"]["n"], letter["partition_key"]) for letter in letters)
    assert got == [(json.loads(data)["n"], key) for data, key in records]
    assert producer.stats.snapshot()["failed"] == 250
