"""The benchmark's null endpoint reads a PutRecords body by splitting it on quotes; it must
place and count every record exactly as parsing the body as JSON does, or fall back to that."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from bench import null_endpoint as endpoint


def _body(records: list[dict], compact: bool = True) -> bytes:
    separators = (",", ":") if compact else (", ", ": ")  # orjson's layout, boto3's
    return json.dumps({"StreamName": "bench", "Records": records}, separators=separators).encode()


def _parsed(body: bytes) -> tuple[list[int], int]:
    return endpoint._placements(body, len(json.loads(body)["Records"]))


def _record(key: str, data: bytes = b'{"event":"Order Completed"}') -> dict:
    return {"Data": base64.b64encode(data).decode(), "PartitionKey": key}


@pytest.mark.parametrize("compact", [True, False])
def test_placements_match_the_parsed_body(compact: bool) -> None:
    records = [_record(f"user-{i % 37}") for i in range(500)]
    body = _body(records, compact)
    placements, events = endpoint._put_records(body)
    assert (placements, events) == _parsed(body)
    assert len(set(placements)) > 20  # the keys land on many shards, not one


@pytest.mark.parametrize(
    "record",
    [
        {"Data": "eyJh", "PartitionKey": 'a"b'},  # an escape
        {"Data": "eyJh", "PartitionKey": "PartitionKey"},  # a key named like the field
        {"Data": "eyJh", "PartitionKey": "k", "ExplicitHashKey": str(2**127)},
        {"Data": "Data", "PartitionKey": "k"},  # a blob that reads like the field's name
    ],
)
def test_unusual_bodies_read_as_parsed(record: dict) -> None:
    body = _body([_record("first"), record, _record("last")])
    assert endpoint._put_records(body) == _parsed(body)


def test_kpl_aggregates_are_counted_by_their_user_records() -> None:
    message = b"\x1a\x02\x08\x00" * 3  # three Record fields (field 3, 2 bytes each)
    blob = endpoint._KPL_MAGIC + message + hashlib.md5(message).digest()
    body = _body([_record("k", blob), _record("j")])
    placements, events = endpoint._put_records(body)
    assert len(placements) == 2
    assert events == 4  # 3 user records in the aggregate, 1 plain record
