"""Reading the SDK's batch files (singer/batch_files.py)."""

from __future__ import annotations

import gzip

import pytest

from target_kinesis.errors import InputError
from target_kinesis.singer.batch_files import batch_records


def test_batch_records_read_plain_and_gzip(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": 1}\n\n{"id": 2, "n": 12345678901234567890.5}\n')
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b'{"id": 3}\n'))
    plain = list(batch_records("s", {"format": "jsonl"}, [(tmp_path / "a.jsonl").as_uri()]))
    assert [(line, rec["id"]) for _, line, rec, _ in plain] == [(1, 1), (3, 2)]
    assert str(plain[1][2]["n"]) == "12345678901234567890.5", "numbers exact, as on RECORD lines"
    zipped = list(batch_records("s", {"format": "jsonl", "compression": "gzip"}, [(tmp_path / "b.jsonl.gz").as_uri()]))
    assert [rec for _, _, rec, _ in zipped] == [{"id": 3}]


def test_batch_records_say_which_hold_nan_or_infinity(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": 1, "x": NaN}\n{"id": 2, "x": 1.5}\n{"id": 3, "x": -Infinity}\n')
    rows = list(batch_records("s", {"format": "jsonl"}, [(tmp_path / "a.jsonl").as_uri()]))
    assert [(rec["id"], flagged) for _, _, rec, flagged in rows] == [(1, True), (2, False), (3, True)]


@pytest.mark.parametrize(
    ("encoding", "problem"),
    [
        ({"format": "parquet"}, "format 'parquet' is not supported"),
        ({"format": "jsonl", "compression": "zstd"}, "zstd"),
    ],
)
def test_batch_records_refuse_what_they_cannot_read(tmp_path, encoding: dict, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        list(batch_records("s", encoding, [(tmp_path / "x").as_uri()]))


def test_batch_record_that_is_not_an_object(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": 1}\n[1]\n')
    with pytest.raises(InputError, match=r"a.jsonl line 2: not a JSON record"):
        list(batch_records("s", {"format": "jsonl"}, [(tmp_path / "a.jsonl").as_uri()]))
