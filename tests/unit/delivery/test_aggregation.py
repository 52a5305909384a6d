"""Packing events into records (delivery/aggregation.py): lanes, limits, order, what comes out."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_kinesis.aws import kpl
from target_kinesis.delivery.aggregation import Aggregator, Packed, repack


def _events(packed: list[Packed]) -> list[tuple[bytes, str | None]]:
    """The events of packed records, as a consumer unpacks them."""
    out: list[tuple[bytes, str | None]] = []
    for record in packed:
        if record.key is not None:  # Kinesis: an aggregate, else a plain record (as consumers tell them apart)
            try:
                out.extend((data, key) for key, _, data in kpl.unpack(record.data))
            except kpl.NotAggregated:
                out.append((record.data, record.key))
        else:
            out.extend((line + b"\n", None) for line in record.data.split(b"\n")[:-1])
    return out


def test_kpl_packs_only_events_of_one_shard_together() -> None:
    aggregator = Aggregator("kpl", 51_200, None)
    out: list[Packed] = []
    for i in range(30):
        aggregator.add(b"e%d" % i, f"k{i}", i % 3, out)
    assert out == [], "nothing full yet"
    aggregator.flush(out)
    assert sorted(record.shard for record in out) == [0, 1, 2]
    for record in out:
        keys = {key for _, key in record.members}
        assert keys == {f"k{i}" for i in range(30) if i % 3 == record.shard}
        # The aggregate's ExplicitHashKey is its first event's hash key: it lands on that event's shard.
        first = record.members[0][1]
        assert first is not None
        assert record.explicit_hash_key == str(int.from_bytes(hashlib.md5(first.encode()).digest(), "big"))
        assert _events([record]) == record.members


def test_without_a_map_only_events_of_one_key_share_an_aggregate() -> None:
    aggregator = Aggregator("kpl", 51_200, None)
    out: list[Packed] = []
    for i in range(20):
        aggregator.add(b"e", f"k{i % 4}", None, out)
    aggregator.flush(out)
    assert len(out) == 4
    assert all(len({key for _, key in record.members}) == 1 for record in out)


@given(
    st.lists(st.tuples(st.binary(max_size=3000), st.text(min_size=1, max_size=40), st.integers(0, 2)), max_size=200),
    st.integers(1024, 20_000),
    st.one_of(st.none(), st.integers(1, 50)),
)
def test_kpl_never_exceeds_its_limits_and_loses_nothing(events, max_bytes, max_records) -> None:
    aggregator = Aggregator("kpl", max_bytes, max_records)
    out: list[Packed] = []
    for data, key, shard in events:
        aggregator.add(data, key, shard, out)
    aggregator.flush(out)
    for record in out:
        if len(record.members) > 1:
            assert len(record.data) <= max_bytes
            assert max_records is None or len(record.members) <= max_records
    by_shard = {s: [(d, k) for d, k, sh in events if sh == s] for s in range(3)}
    for shard, expected in by_shard.items():
        got = _events([record for record in out if record.shard == shard])
        assert got == expected, "every event once, in order, per shard"


def test_an_event_too_large_to_share_goes_alone_after_its_lanes_open_record() -> None:
    aggregator = Aggregator("kpl", 2048, None)
    out: list[Packed] = []
    aggregator.add(b"small-1", "k", 0, out)
    aggregator.add(b"x" * 5000, "k", 0, out)
    aggregator.add(b"small-2", "k", 0, out)
    aggregator.flush(out)
    assert [record.data for record in out] == [b"small-1", b"x" * 5000, b"small-2"], "in order; alone ones plain"
    assert all(record.explicit_hash_key is None for record in out)


def test_lines_join_newline_terminated_events_up_to_500() -> None:
    aggregator = Aggregator("lines", 1_024_000, 500)
    out: list[Packed] = []
    for i in range(1200):
        aggregator.add(b'{"i":%d}\n' % i, None, 0, out)
    aggregator.flush(out)
    assert [len(record.members) for record in out] == [500, 500, 200]
    assert b"".join(record.data for record in out) == b"".join(b'{"i":%d}\n' % i for i in range(1200))


def test_lines_end_each_event_with_a_newline_when_it_lacks_one() -> None:
    aggregator = Aggregator("lines", 1_024_000, 500)
    out: list[Packed] = []
    aggregator.add(b"a", None, 0, out)
    aggregator.add(b"b\n", None, 0, out)
    aggregator.flush(out)
    assert out[0].data == b"a\nb\n"


def test_lines_respect_the_byte_limit() -> None:
    aggregator = Aggregator("lines", 2000, None)
    out: list[Packed] = []
    for _ in range(100):
        aggregator.add(b"y" * 99 + b"\n", None, 0, out)
    aggregator.flush(out)
    assert all(len(record.data) <= 2000 for record in out)
    assert sum(len(record.members) for record in out) == 100


def test_take_members_and_repack_by_a_new_map() -> None:
    aggregator = Aggregator("kpl", 51_200, None)
    out: list[Packed] = []
    for i in range(10):
        aggregator.add(b"e%d" % i, f"k{i}", 0, out)
    members = aggregator.take_members()
    assert aggregator.pending == 0 and len(members) == 10
    again = repack("kpl", 51_200, None, [(m, int(m[1][1:]) % 2) for m in members if m[1]])
    assert sorted(record.shard for record in again) == [0, 1]
    assert sum(len(record.members) for record in again) == 10


def test_an_unknown_form_is_refused() -> None:
    with pytest.raises(ValueError, match="no aggregation called zip"):
        Aggregator("zip", 1000, None)
