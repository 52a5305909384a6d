"""records/draft7_check.py: draft 7's meta-schema as generated code, kept fresh and equal to compiling it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from jsonschema import Draft7Validator

from target_kinesis.records import draft7_check
from target_kinesis.records.validation import schema_problem

REPO_ROOT = Path(__file__).resolve().parents[3]

SCHEMAS: list[Any] = [
    {"type": "object", "properties": {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}},
    {"type": ["string", "null"], "enum": ["a", None]},
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "number"}}]},
    {"$ref": "#/definitions/x", "definitions": {"x": {"type": "boolean"}}},
    True,
    {"type": "strng"},  # not a type
    {"type": "object", "properties": []},  # properties must be an object
    {"required": "id"},  # required must be an array
    {"minimum": "3"},  # must be a number
    {"$id": "not a uri reference \\"},  # format uri-reference
    {"items": [{"type": "string"}, 5]},
    7,
]


def _verdict(check: Any, schema: Any) -> bool:
    try:
        check(schema)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def test_the_generated_file_is_what_the_script_writes() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate_draft7_check.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_generated_check_decides_as_the_compiled_meta_schema(schema: Any) -> None:
    compiled = fastjsonschema.compile(Draft7Validator.META_SCHEMA, use_formats=True, use_default=False)
    assert _verdict(draft7_check.validate, schema) == _verdict(compiled, schema)


def test_an_invalid_schema_is_still_named_at_its_place() -> None:
    problem = schema_problem({"type": "object", "properties": {"id": {"type": "strng"}}})
    assert problem is not None and "not valid JSON Schema at properties/id/type" in problem
    assert schema_problem({"type": "object", "properties": {"id": {"type": "string"}}}) is None


def test_checking_a_schema_writes_no_defaults_into_it() -> None:
    schema: dict[str, Any] = {"properties": {"a": {}}}
    draft7_check.validate(schema)
    assert schema == {"properties": {"a": {}}}
