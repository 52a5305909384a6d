"""A fast, accept-only schema check of a RECORD line, before its record is validated.

Validation was the largest single cost of mapping a record (about a quarter of a mapping
process's time with the compiled validator). msgspec checks the types of a JSON document
against a typed structure in C while it reads it, about 4x faster on Singer records. It
is used here only to say "valid": a line it accepts would pass the exact validator
(`validation.py`), so that validator is skipped; a line it refuses, or a schema it cannot
express exactly, goes through the exact validator as before, which decides and words
the error. The check may therefore be stricter than JSON Schema (it refuses 1.0 for an
integer, which JSON Schema accepts), never more permissive. A mapping process, whose
record orjson has already read from its line, checks the record itself with the same typed
structure (`build_record_precheck`, msgspec.convert) rather than reading the line twice.

Translated exactly: `type` (one or a list), `properties`, `required`,
`additionalProperties` (true, false or {}), `items` (one schema), `enum` of strings and
null, `anyOf`, and the annotations the compiled validator ignores (`format` included:
it does not check formats, like the SDK's default). Any other keyword (`$ref`,
`pattern`, `minimum`, `oneOf`, ...) anywhere in a schema leaves the stream without a
precheck.
"""

from __future__ import annotations

import itertools
import typing as t
from collections.abc import Callable, Collection

import msgspec

#: Keywords that never change whether a record is valid (for a validator that checks no formats).
_ANNOTATIONS = frozenset(
    {"title", "description", "format", "default", "examples", "$comment", "readOnly", "writeOnly", "deprecated"}
)
_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf"})
_SCALARS: dict[str, t.Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}
_struct_names = itertools.count()


class _Unsupported(Exception):
    """The schema uses something this check cannot express exactly."""


def build_precheck(schema: t.Any, stripped_fields: Collection[str] = ()) -> Callable[[bytes], bool] | None:
    """A function telling whether a RECORD line's record certainly matches `schema`; None
    when the schema is beyond what the check expresses exactly.

    `stripped_fields`: top-level fields removed from a record before it is validated (the
    SDK's `_sdc_*` metadata). The check reads the line as the tap wrote it, so a schema
    that requires one of them gets no precheck: the line may hold it, the validated record
    does not.
    """
    return build_prechecks(schema, stripped_fields)[0]


def build_record_precheck(
    schema: t.Any, stripped_fields: Collection[str] = ()
) -> Callable[[dict[str, t.Any]], bool] | None:
    """As `build_precheck`, for a record already read by orjson, its `stripped_fields`
    removed: it holds JSON values alone (no Decimal, no NaN, no integer beyond 64 bits), on
    which msgspec checks a Python value exactly as it checks the JSON text of it. Checking
    the record costs less than reading its line a second time; and it is the very record
    the exact validator would see."""
    return build_prechecks(schema, stripped_fields)[1]


def build_prechecks(
    schema: t.Any, stripped_fields: Collection[str] = ()
) -> tuple[Callable[[bytes], bool] | None, Callable[[dict[str, t.Any]], bool] | None]:
    """`build_precheck` and `build_record_precheck` of one schema, from one msgspec type (a
    stream's pipeline holds both: the schema's structs are made once)."""
    try:
        if not isinstance(schema, dict) or set(schema.get("required") or ()) & set(stripped_fields):
            return None, None
        record_type = _type_of(schema)
        envelope = msgspec.defstruct(f"RecordMessage{next(_struct_names)}", [("record", record_type)])
        decode = msgspec.json.Decoder(envelope).decode
    except (_Unsupported, TypeError, ValueError):
        return None, None
    convert = msgspec.convert

    def accepts_line(line: bytes) -> bool:
        try:
            decode(line)
        except Exception:  # a refusal (or anything unusual) only means "ask the exact validator"
            return False
        return True

    def accepts_record(record: dict[str, t.Any]) -> bool:
        try:
            convert(record, record_type)
        except Exception:  # as accepts_line
            return False
        return True

    return accepts_line, accepts_record


def _type_of(schema: t.Any) -> t.Any:
    """The msgspec type accepting exactly the values `schema` accepts, or fewer."""
    if schema is True or schema == {}:
        return t.Any
    if not isinstance(schema, dict):
        raise _Unsupported
    keywords = set(schema) - _ANNOTATIONS
    if keywords - _KEYWORDS:
        raise _Unsupported
    if "anyOf" in keywords:
        if keywords != {"anyOf"} or not isinstance(schema["anyOf"], list) or not schema["anyOf"]:
            raise _Unsupported
        return _union([_type_of(option) for option in schema["anyOf"]])
    names = _type_names(schema, keywords)
    if "enum" in keywords:
        return _enum_type(schema["enum"], names)
    if names is None:
        return t.Any
    return _union([_named_type(name, schema) for name in names])


def _type_names(schema: dict[str, t.Any], keywords: set[str]) -> list[str] | None:
    declared = schema.get("type")
    if declared is None:
        # Without "type", JSON Schema applies object keywords to objects only and lets
        # anything else through; requiring an object is stricter, so still exact enough.
        if keywords & {"properties", "required", "additionalProperties"}:
            if "items" in keywords:
                raise _Unsupported
            return ["object"]
        return ["array"] if "items" in keywords else None
    names = [declared] if isinstance(declared, str) else declared
    if (
        not isinstance(names, list)
        or not names
        or any(n not in _SCALARS and n not in ("object", "array") for n in names)
    ):
        raise _Unsupported
    return names


def _named_type(name: str, schema: dict[str, t.Any]) -> t.Any:
    if name == "object":
        return _object_type(schema)
    if name == "array":
        items = schema.get("items", True)
        return list if items is True or items == {} else list[_type_of(items)]  # type: ignore[misc]
    return _SCALARS[name]


def _object_type(schema: dict[str, t.Any]) -> t.Any:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    if (
        not isinstance(properties, dict)
        or not isinstance(required, list)
        or not all(isinstance(name, str) for name in required)
        or additional not in (True, False, {})
    ):
        raise _Unsupported
    forbid = additional is False
    if forbid and not set(required) <= set(properties):
        raise _Unsupported  # a field both required and not allowed: no record is valid
    if not properties and not required and not forbid:
        return dict
    fields: list[tuple[t.Any, ...]] = []
    rename: dict[str, str] = {}
    for index, name in enumerate(dict.fromkeys([*properties, *required])):
        attribute = f"f{index}"
        rename[attribute] = name
        value_type = _type_of(properties[name]) if name in properties else t.Any
        if name in required:
            fields.append((attribute, value_type))
        elif value_type is t.Any:
            fields.append((attribute, t.Any, msgspec.UNSET))
        else:
            fields.append((attribute, t.Union[value_type, msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007
    return msgspec.defstruct(
        f"Object{next(_struct_names)}", fields, rename=rename, kw_only=True, forbid_unknown_fields=forbid
    )


def _enum_type(members: t.Any, names: list[str] | None) -> t.Any:
    """Strings and null only: their equality in JSON Schema and in msgspec is the same."""
    if not isinstance(members, list) or not all(m is None or isinstance(m, str) for m in members):
        raise _Unsupported
    allowed: list[t.Any] = []
    texts = tuple(m for m in members if m is not None)
    if texts and (names is None or "string" in names):
        allowed.append(t.Literal[texts])
    if None in members and (names is None or "null" in names):
        allowed.append(type(None))
    if not allowed:
        raise _Unsupported
    return _union(allowed)


def _union(types: list[t.Any]) -> t.Any:
    if any(member is t.Any for member in types):
        return t.Any
    return t.Union[tuple(types)]  # noqa: UP007 - built at run time from a list


__all__ = ["build_precheck", "build_prechecks", "build_record_precheck"]
