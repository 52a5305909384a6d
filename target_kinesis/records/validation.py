"""Record validation with a compiled validator, and the schema checks before it.

The SDK validates with jsonschema's interpreter, which took about 70% of the run time
in a profile of this target. fastjsonschema compiles the stream's schema to Python once
and checks records several times faster. Schemas it cannot compile (features beyond
draft 7) fall back to jsonschema's Draft 2020-12 validator, as the SDK's default does
(no string formats), so nothing is ever left unvalidated.

A schema that is not valid JSON Schema, or whose `$ref` points nowhere or to another
document, is bad input: it is refused at its SCHEMA line, before any record of the
stream, with a line that says what is wrong (the target fetches nothing from the network).
"""

from __future__ import annotations

import logging
import typing as t
from urllib.parse import unquote

import fastjsonschema
import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from target_kinesis.errors import InputError

logger = logging.getLogger("target-kinesis")

#: How much of a validator's own message an error line quotes.
_MESSAGE_CHARS = 200


class RecordInvalid(Exception):
    """A record does not match its schema; the message says where and how."""


class RecordValidator(t.Protocol):
    def validate(self, record: dict[str, t.Any]) -> None:
        """Raise RecordInvalid when `record` does not match the schema."""


class CompiledValidator:
    """Types and structure, no string formats, no defaults filled in (as the SDK's default)."""

    def __init__(self, schema: dict[str, t.Any]) -> None:
        # use_default=False: a validator must not write default values into the record.
        self._check = fastjsonschema.compile(schema, use_formats=False, use_default=False)

    def validate(self, record: dict[str, t.Any]) -> None:
        try:
            self._check(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise RecordInvalid(exc.message) from None


class InterpretedValidator:
    """jsonschema's Draft 2020-12 validator without format checks: the SDK's default, for the
    schemas fastjsonschema cannot compile."""

    def __init__(self, schema: dict[str, t.Any]) -> None:
        self._validator = Draft202012Validator(schema, format_checker=jsonschema.FormatChecker(formats=()))

    def validate(self, record: dict[str, t.Any]) -> None:
        try:
            self._validator.validate(record)
        except jsonschema.ValidationError as exc:
            raise RecordInvalid(exc.message) from None


class LazyValidator:
    """The stream's exact validator, compiled when a record first needs it.

    Compiling takes a millisecond or two per schema. Most records never need it: the
    precheck (precheck.py) vouches for them, in the mapping processes and in the main
    process alike. A tap that opens thousands of streams would otherwise pay that for each
    stream in every process.
    """

    def __init__(self, schema: dict[str, t.Any], stream: str) -> None:
        self.schema = schema
        self._stream = stream
        self._compiled: RecordValidator | None = None

    def validate(self, record: dict[str, t.Any]) -> None:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _compiled_validator(self.schema, self._stream)
        compiled.validate(record)


def _compiled_validator(schema: dict[str, t.Any], stream: str) -> RecordValidator:
    try:
        return CompiledValidator(schema)
    except Exception as exc:  # fastjsonschema raises several types for schemas it cannot compile
        logger.info("Stream '%s': schema not compilable (%s); using jsonschema's validator", stream, exc)
        return InterpretedValidator(schema)


def build_validator(schema: dict[str, t.Any], stream: str) -> LazyValidator:
    """The stream's validator; InputError now (at the SCHEMA line) when its schema cannot
    validate anything, compiled later (see LazyValidator)."""
    problem = schema_problem(schema)
    if problem is not None:
        raise InputError(f"SCHEMA for stream '{stream}': {problem}")
    return LazyValidator(schema, stream)


def validate_record(validator: RecordValidator, record: dict[str, t.Any], stream: str) -> None:
    """InputError when `record` does not match its stream's schema (or cannot be checked at all)."""
    try:
        validator.validate(record)
    except RecordInvalid as exc:
        raise InputError(f"stream '{stream}': record does not match its schema: {exc}") from None
    except RecursionError:
        raise InputError(f"stream '{stream}': record is nested too deeply to validate") from None
    except Exception as exc:  # a validator's own failure on an odd value: still this record's problem
        detail = str(exc).split("\n", 1)[0][:_MESSAGE_CHARS]
        raise InputError(f"stream '{stream}': record could not be validated ({type(exc).__name__}: {detail})") from None


def schema_problem(schema: dict[str, t.Any]) -> str | None:
    """Why `schema` cannot validate records, or None: not valid JSON Schema, or a `$ref`
    that cannot be resolved here.

    Valid means valid as draft 7 (what the compiled validator reads), checked by a compiled
    copy of draft 7's meta-schema in well under a millisecond; or else valid as the draft
    its `$schema` names (2020-12, the SDK's, when it names none), checked by jsonschema,
    about fifty times slower: a tap with thousands of streams must not wait on that.
    """
    try:
        _draft7_schema_check()(schema)
    except fastjsonschema.JsonSchemaValueException:
        try:
            validator_for(schema, default=Draft202012Validator).check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.absolute_path) or "its root"
            return f"the schema is not valid JSON Schema at {where}: {exc.message[:_MESSAGE_CHARS]}"
    for ref in _refs(schema):
        if not ref.startswith("#"):
            return f"the schema's $ref '{ref[:_MESSAGE_CHARS]}' names another document (schemas are never fetched)"
        if not _resolves(schema, ref):
            return f"the schema's $ref '{ref[:_MESSAGE_CHARS]}' points to nothing in the schema"
    return None


def _draft7_schema_check() -> t.Callable[[t.Any], t.Any]:
    """Draft 7's meta-schema as fastjsonschema's code, generated ahead of time (draft7_check.py,
    by scripts/generate_draft7_check.py): compiling it at the first SCHEMA cost 35 ms of CPU in
    every process of every run. Imported on first use, not at import (start-up time)."""
    from target_kinesis.records.draft7_check import validate

    return t.cast(t.Callable[[t.Any], t.Any], validate)


def _nodes(node: t.Any) -> t.Iterator[t.Any]:
    """Every object, array and value of a schema (iteratively: a schema may nest deeply)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _refs(schema: dict[str, t.Any]) -> t.Iterator[str]:
    for node in _nodes(schema):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            yield node["$ref"]


def _resolves(schema: dict[str, t.Any], ref: str) -> bool:
    """Whether a same-document `$ref` (a JSON pointer or a plain-name anchor) finds its target."""
    fragment = unquote(ref[1:])
    if not fragment.startswith("/"):
        return not fragment or any(
            isinstance(node, dict) and (node.get("$anchor") == fragment or node.get("$id") == f"#{fragment}")
            for node in _nodes(schema)
        )
    node: t.Any = schema
    for raw in fragment[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True
