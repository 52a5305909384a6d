"""The KPL aggregated record format (`aws/kpl.py`), checked against AWS's own module.

What `pack` writes must be what consumers read: aws-kinesis-agg's deaggregator (what a
Lambda consumer uses) must hand back every user record, in order, with its partition key.
Its deaggregator never raises on a record it cannot read as an aggregate: it hands that
record back whole. So each check also counts the records it got back, and a blob that is
not an aggregate at all fails it. `unpack` (what the tail reads with) must read our
aggregates and AWS's, and refuse anything else with NotAggregated.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from target_kinesis.aws.kpl import MAGIC, NotAggregated, pack, packed_size, unpack

#: A partition key: 1 to 256 characters of any Unicode a string can be encoded from. Long
#: keys and data are drawn on purpose: past 127 bytes a length takes a two-byte varint.
_CHARACTERS = st.characters(blacklist_categories=("Cs",))
KEYS = st.text(_CHARACTERS, min_size=1, max_size=256) | st.text(_CHARACTERS, min_size=100, max_size=256)
DATA = st.binary(max_size=2000) | st.binary(min_size=120, max_size=2000)
#: An explicit hash key: a decimal number below 2**128.
HASH_KEYS = st.integers(0, 2**128 - 1).map(str)
OUTER_KEY = "outer-key-of-the-kinesis-record"

UserRecords = list[tuple[str, bytes]]


@st.composite
def user_records(draw: st.DrawFn, min_size: int = 1) -> UserRecords:
    """Records whose keys are often shared, so the key table is deduplicated for real."""
    shared = draw(st.lists(KEYS, min_size=1, max_size=4), label="shared keys")
    key = st.sampled_from(shared) | KEYS
    return draw(st.lists(st.tuples(key, DATA), min_size=min_size, max_size=20), label="records")


def table(records: UserRecords) -> tuple[list[str], list[tuple[int, bytes]]]:
    """The partition key table (each key once, in first-seen order) and (key index, data)."""
    index: dict[str, int] = {}
    indexed = [(index.setdefault(key, len(index)), data) for key, data in records]
    return list(index), indexed


def pack_records(records: UserRecords) -> bytes:
    return pack(*table(records))


def lambda_record(blob: bytes) -> dict[str, object]:
    """A Kinesis record as Lambda delivers it (the deaggregator's input)."""
    return {
        "eventSource": "aws:kinesis",
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": OUTER_KEY,
            "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
            "approximateArrivalTimestamp": 1_700_000_000.0,
            "data": base64.b64encode(blob).decode("ascii"),
        },
    }


def deaggregated(blob: bytes) -> list[tuple[str, bytes]]:
    """(partition key, data) of each user record AWS's deaggregator reads from `blob`."""
    out = deaggregate_records([lambda_record(blob)])
    return [(r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"])) for r in out]


def reframe(message: bytes) -> bytes:
    """An aggregate around `message` with a digest that matches it."""
    return MAGIC + message + hashlib.md5(message).digest()


# -- pack, read by AWS's deaggregator -------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=user_records())
def test_aws_deaggregator_hands_back_every_packed_record_in_order(records: UserRecords) -> None:
    got = deaggregated(pack_records(records))
    assert len(got) == len(records)  # a blob it could not read comes back as one record
    assert got == records


def test_aws_deaggregator_reads_a_shared_key_table() -> None:
    records = [("a", b"1"), ("b", b"2"), ("a", b"3"), ("ключ 🔑", b""), ("b", b"\x00\xff")]
    keys, indexed = table(records)
    assert keys == ["a", "b", "ключ 🔑"]
    assert deaggregated(pack(keys, indexed)) == records


def test_a_damaged_aggregate_is_not_read_by_aws_either() -> None:
    """The check above can fail: AWS's module gives back a blob it cannot read whole."""
    blob = bytearray(pack_records([("a", b"1"), ("b", b"2")]))
    blob[-1] ^= 0xFF  # the digest no longer matches
    assert deaggregated(bytes(blob)) == [(OUTER_KEY, bytes(blob))]


# -- packed_size ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(records=user_records(min_size=0))
def test_packed_size_is_the_length_of_the_packed_aggregate(records: UserRecords) -> None:
    keys, indexed = table(records)
    assert packed_size(keys, indexed) == len(pack(keys, indexed))


def test_packed_size_counts_multibyte_varints() -> None:
    keys = [f"k{i}" for i in range(200)]  # key indexes past 127 take two bytes
    indexed = [(i, b"x" * 300) for i in range(200)]  # lengths past 127 too
    assert packed_size(keys, indexed) == len(pack(keys, indexed))


# -- unpack ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=user_records())
def test_unpack_reads_back_what_pack_wrote(records: UserRecords) -> None:
    assert unpack(pack_records(records)) == [(key, None, data) for key, data in records]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(st.tuples(KEYS, DATA, st.none() | HASH_KEYS), min_size=1, max_size=20),
)
def test_unpack_reads_an_aggregate_aws_aggregator_wrote(records: list[tuple[str, bytes, str | None]]) -> None:
    aggregator = RecordAggregator()
    for key, data, hash_key in records:
        assert aggregator.add_user_record(key, data, hash_key) is None  # never full: one aggregate
    aggregate = aggregator.clear_and_get()
    assert aggregate is not None
    _, _, blob = aggregate.get_contents()
    assert unpack(blob) == [(key, hash_key, data) for key, data, hash_key in records]


def test_unpack_reads_explicit_hash_keys_shared_between_records() -> None:
    aggregator = RecordAggregator()
    for key, data, hash_key in [("a", b"1", "7"), ("b", b"2", None), ("c", b"3", "7"), ("a", b"4", "99")]:
        aggregator.add_user_record(key, data, hash_key)
    _, _, blob = aggregator.clear_and_get().get_contents()
    assert unpack(blob) == [("a", "7", b"1"), ("b", None, b"2"), ("c", "7", b"3"), ("a", "99", b"4")]


GOOD = pack(["a", "b"], [(0, b'{"n":1}'), (1, b'{"n":2}')])


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(json.dumps({"type": "track", "event": "x"}).encode() + b"\n", id="plain-json"),
        pytest.param(b"", id="empty"),
        pytest.param(MAGIC, id="magic-only"),
        pytest.param(GOOD[:-1] + bytes([GOOD[-1] ^ 1]), id="wrong-digest"),
        pytest.param(MAGIC + b"\x0a\x01a" + bytes(16), id="magic-and-a-zero-digest"),
        pytest.param(b"\xf3\x89\x9a\xc3" + GOOD[4:], id="wrong-magic"),
        pytest.param(GOOD[:-1], id="truncated"),
        pytest.param(reframe(GOOD[4:-16][:-3]), id="truncated-protobuf-with-its-digest"),
        pytest.param(reframe(b"\x0a\x05ab"), id="field-past-the-end"),
        pytest.param(reframe(b"\x0a\x01a" + b"\x1a\x03\x08\x05\x1a"), id="key-index-out-of-range"),
        pytest.param(reframe(b"\x0a\x01a" + b"\x1a\x02\x08\x00"), id="record-without-data"),
        pytest.param(reframe(b"\x0a\x02\xff\xfe"), id="key-not-utf8"),
        pytest.param(reframe(b"\x0f"), id="wire-type-7"),
        pytest.param(reframe(b"\x08" + b"\xff" * 10 + b"\x01"), id="varint-too-long"),
    ],
)
def test_unpack_refuses_what_is_not_an_aggregate(blob: bytes) -> None:
    with pytest.raises(NotAggregated):
        unpack(blob)


def test_every_truncation_of_an_aggregate_is_refused() -> None:
    for end in range(len(GOOD)):
        with pytest.raises(NotAggregated):
            unpack(GOOD[:end])
