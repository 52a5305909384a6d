"""Schema checks and the lazily compiled validator (records/validation.py)."""

from __future__ import annotations

import json

import pytest

from target_kinesis.errors import InputError
from target_kinesis.records.validation import LazyValidator, build_validator, schema_problem


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
    import target_kinesis.records.validation as validation

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
