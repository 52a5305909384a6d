"""Unit tests of the pieces behind the edge cases: message shapes, schema checks, lazy validators,
log masking, batch files, size limits, timestamps and the error count (no AWS, no subprocess)."""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from target_kinesis import log_safety
from target_kinesis.batch_files import batch_records
from target_kinesis.errors import ConfigError, DeliveryError, InputError
from target_kinesis.mapping import to_iso
from target_kinesis.reader import message_problem
from target_kinesis.routing import Destination
from target_kinesis.settings import Settings, read_config_file
from target_kinesis.target import unknown_setting
from target_kinesis.validation import LazyValidator, build_validator, schema_problem

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"type": "RECORD", "stream": "s", "record": {}}, None),
        ({"type": "RECORD", "stream": "s", "record": []}, "needs 'record'"),
        ({"type": "RECORD", "stream": "", "record": {}}, "needs 'stream'"),
        ({"type": "RECORD", "stream": "s", "record": {}, "time_extracted": 5}, "time_extracted"),
        ({"type": "SCHEMA", "stream": "s", "schema": {"properties": {}}, "key_properties": None}, None),
        ({"type": "SCHEMA", "stream": "s", "schema": {"type": "object"}}, "needs 'properties'"),
        ({"type": "SCHEMA", "stream": "s", "schema": {"properties": {}}, "key_properties": ["a", 1]}, "key_properties"),
        ({"type": "SCHEMA", "stream": "s", "schema": {"properties": {}}, "bookmark_properties": "at"}, None),
        ({"type": "SCHEMA", "stream": "s", "schema": {"properties": {}}, "bookmark_properties": 3}, "bookmark"),
        ({"type": "STATE"}, "needs 'value'"),
        ({"type": "STATE", "value": None}, None),
        ({"type": "ACTIVATE_VERSION", "stream": "s", "version": "1"}, "'version'"),
        ({"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl"}, "manifest": "f"}, "'manifest'"),
        ({"type": "BATCH", "stream": "s", "encoding": "jsonl", "manifest": []}, "'encoding'"),
        ({"type": "NOPE"}, "unknown message type 'NOPE'"),
        ({"stream": "s"}, "no valid 'type'"),
    ],
)
def test_message_problem(message: dict, problem: str | None) -> None:
    found = message_problem(message)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_schema_check_leaves_the_schema_as_it_was() -> None:
    """The meta-schema has defaults; a check that wrote them in would change (and slow) every stream."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    before = json.dumps(schema, sort_keys=True)
    assert schema_problem(schema) is None
    assert json.dumps(schema, sort_keys=True) == before


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object", "properties": {"a": {"$ref": "#/definitions/a"}}, "definitions": {"a": {}}}, None),
        ({"type": "object", "properties": {"a": {"$ref": "#/definitions/b"}}, "definitions": {"a": {}}}, "nothing"),
        ({"type": "object", "properties": {"a~b": {}, "c": {"$ref": "#/properties/a~0b"}}}, None),
        ({"type": "object", "properties": {"a": {"$ref": "#node"}}, "$defs": {"n": {"$anchor": "node"}}}, None),
        ({"type": "object", "properties": {"a": {"$ref": "other.json#/x"}}}, "another document"),
        ({"type": "object", "properties": {"a": {"minimum": "ten"}}}, "not valid JSON Schema at properties/a/minimum"),
        ({"type": "object", "properties": {"a": {"pattern": "("}}}, "not valid JSON Schema"),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{}], "properties": {}}, None),
    ],
)
def test_schema_problem(schema: dict, problem: str | None) -> None:
    found = schema_problem(schema)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_validator_compiles_only_when_a_record_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[dict] = []
    import target_kinesis.validation as validation

    real = validation.CompiledValidator

    def counting(schema: dict) -> object:
        compiled.append(schema)
        return real(schema)

    monkeypatch.setattr(validation, "CompiledValidator", counting)
    validator = build_validator({"type": "object", "properties": {"id": {"type": "integer"}}}, "s")
    assert isinstance(validator, LazyValidator) and compiled == []
    validator.validate({"id": 1})
    validator.validate({"id": 2})
    assert len(compiled) == 1


def test_build_validator_refuses_a_broken_schema_at_once() -> None:
    with pytest.raises(InputError, match="SCHEMA for stream 's': the schema is not valid"):
        build_validator({"type": "objekt", "properties": {}}, "s")


def test_masking_replaces_known_secrets_in_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    log_safety.mask_secrets(["hush-hush-value-1", None, "ab"])
    with caplog.at_level(logging.INFO):
        logging.getLogger("anything.at.all").info("value is %s", "hush-hush-value-1")
        logging.getLogger("x").info("short ab is kept")
    assert "hush-hush-value-1" not in caplog.text
    assert "value is ***" in caplog.text and "short ab is kept" in caplog.text


def test_aws_loggers_never_go_below_info() -> None:
    logging.getLogger("botocore.parsers").setLevel(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.NOTSET)
    log_safety.quiet_aws_loggers()
    assert not logging.getLogger("botocore.parsers").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG)


def test_batch_records_read_plain_and_gzip(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": 1}\n\n{"id": 2, "n": 12345678901234567890.5}\n')
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b'{"id": 3}\n'))
    plain = list(batch_records("s", {"format": "jsonl"}, [(tmp_path / "a.jsonl").as_uri()]))
    assert [(line, rec["id"]) for _, line, rec in plain] == [(1, 1), (3, 2)]
    assert str(plain[1][2]["n"]) == "12345678901234567890.5", "numbers exact, as on RECORD lines"
    zipped = list(batch_records("s", {"format": "jsonl", "compression": "gzip"}, [(tmp_path / "b.jsonl.gz").as_uri()]))
    assert [rec for _, _, rec in zipped] == [{"id": 3}]


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


KINESIS = Destination("kinesis", "k")


def _settings(**config: object) -> Settings:
    return Settings.from_config({"stream_name": "k", **config})


def test_size_limits() -> None:
    assert _settings().size_limits(KINESIS, None) == (MIB, 5 * MIB)
    assert _settings().size_limits(KINESIS, 8 * MIB) == (8 * MIB, 8 * MIB), "a raised stream: calls grow to fit"
    assert _settings(max_record_bytes=100, max_batch_bytes=100).size_limits(KINESIS, None) == (100, 100)
    with pytest.raises(ConfigError, match=r"'max_batch_bytes' \(100\) is below max_record_bytes \(200 bytes\)"):
        _settings(max_record_bytes=200, max_batch_bytes=100).size_limits(KINESIS, None)
    with pytest.raises(ConfigError, match=r"below the largest record kinesis:k accepts \(1048576 bytes\)"):
        _settings(max_batch_bytes=100).size_limits(KINESIS, None)


def test_unknown_setting_names_the_nearest() -> None:
    known = ["hash_fields", "partition_key", "stream_name"]
    assert "did you mean 'hash_fields'?" in unknown_setting("hash_feilds", known)
    assert "--about lists every setting" in unknown_setting("zzz", known)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-05T10:30:00Z", "2026-11-05T10:30:00Z"),
        ("2026-11-05t10:30:00z", "2026-11-05t10:30:00z"),
        ("2026-11-05", "2026-11-05"),
        ("yesterday", None),
        ("2026-13-45", None),
        ("", None),
        (True, None),
        ({"at": 1}, None),
        (1.7e9, "2023-11-14T22:13:20Z"),
        (1e300, None),
        (float("nan"), None),
    ],
)
def test_to_iso(value: object, expected: str | None) -> None:
    assert to_iso(value) == expected


def test_delivery_error_counts_what_failed_later() -> None:
    error = DeliveryError("kinesis stream 's'", 500, "after 1 attempt(s): X (y)")
    error.records = 1500
    assert str(error) == "kinesis stream 's': 1500 record(s) not delivered after 1 attempt(s): X (y)"


def test_config_file_problems(tmp_path) -> None:
    (tmp_path / "bad.json").write_text('{"a": ')
    with pytest.raises(ConfigError, match="is not valid JSON: line 1"):
        read_config_file(str(tmp_path / "bad.json"))
    (tmp_path / "secret.json").write_text('["s3cr3t-value"]')
    with pytest.raises(ConfigError) as info:
        read_config_file(str(tmp_path / "secret.json"))
    assert "s3cr3t" not in str(info.value)
