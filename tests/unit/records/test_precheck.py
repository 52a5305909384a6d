"""Tests of target_kinesis.precheck: an accept-only check that must never be more permissive
than the exact validator (fastjsonschema, formats unchecked, as validation.py uses it).

The property test draws schemas from the subset the precheck translates and values of
every JSON kind, and checks: whatever the precheck accepts, the exact validator accepts
(after the SDK's `_sdc_*` fields are removed, as the target validates records). The other
tests pin down that the check is used where it should be (else it would buy nothing) and
refused where it cannot be exact.
"""

from __future__ import annotations

import functools
import json
import typing as t

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from target_kinesis.records.pipeline import SDC_METADATA_FIELDS, strip_sdc_metadata
from target_kinesis.records.precheck import build_precheck, build_record_precheck
from target_kinesis.records.validation import RecordInvalid, build_validator

NAMES = ["id", "name", "total", "items", "a b", "_sdc_extracted_at"]
TEXTS = ["", "placed", "paid", "x"]


def message(record: t.Any) -> bytes:
    """A RECORD line as a tap writes it (stdlib json: integers beyond 64 bits included)."""
    return json.dumps(
        {"type": "RECORD", "stream": "s", "record": record, "time_extracted": "2026-01-01T00:00:00Z"}
    ).encode()


def exact_accepts(schema: dict[str, t.Any], record: dict[str, t.Any]) -> bool:
    """The target's own exact validation: `_sdc_*` fields removed, then its validator."""
    record = dict(record)
    strip_sdc_metadata(record)
    try:
        build_validator(schema, "s").validate(record)
    except RecordInvalid:
        return False
    return True


# -- schemas of the translated subset, and values of every kind -----------------------------------

SCALAR_TYPES = st.sampled_from(["string", "integer", "number", "boolean", "null"])
ANNOTATIONS = st.fixed_dictionaries({}, optional={"format": st.just("date-time"), "description": st.just("d")})


def _typed(children: st.SearchStrategy[dict[str, t.Any]]) -> st.SearchStrategy[dict[str, t.Any]]:
    objects = st.builds(
        lambda props, required, additional, nullable: {
            "type": ["object", "null"] if nullable else "object",
            "properties": props,
            **({"required": required} if required else {}),
            **({"additionalProperties": additional} if additional is not None else {}),
        },
        st.dictionaries(st.sampled_from(NAMES), children, max_size=4),
        st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
        st.sampled_from([None, True, False, {}]),
        st.booleans(),
    )
    arrays = st.builds(lambda items: {"type": "array", "items": items}, children) | st.just({"type": "array"})
    any_of = st.lists(children, min_size=1, max_size=3).map(lambda options: {"anyOf": options})
    return objects | arrays | any_of


LEAVES = (
    st.builds(lambda kind, extra: {"type": kind, **extra}, SCALAR_TYPES, ANNOTATIONS)
    | st.lists(SCALAR_TYPES, min_size=1, max_size=3, unique=True).map(lambda kinds: {"type": kinds})
    | st.just({})
    | st.builds(
        lambda members, kinds: {"enum": members, **({"type": kinds} if kinds else {})},
        st.lists(st.sampled_from([*TEXTS, None]), min_size=1, max_size=3, unique=True),
        st.sampled_from([None, "string", ["string", "null"]]),
    )
)
SCHEMAS = st.recursive(LEAVES, _typed, max_leaves=8)
TOP_SCHEMAS = st.builds(
    lambda props, required, additional: {
        "type": "object",
        "properties": props,
        **({"required": required} if required else {}),
        **({"additionalProperties": additional} if additional is not None else {}),
    },
    st.dictionaries(st.sampled_from(NAMES), SCHEMAS, max_size=5),
    st.lists(st.sampled_from([n for n in NAMES if not n.startswith("_sdc_")]), max_size=2, unique=True),
    st.sampled_from([None, True, False]),
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([1.0, 0.5, -2.0, 1e300])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(TEXTS)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(NAMES), children, max_size=4),
    max_leaves=12,
)
RECORDS = st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=6)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=TOP_SCHEMAS, data=st.data())
def test_whatever_the_precheck_accepts_the_exact_validator_accepts(
    schema: dict[str, t.Any], data: st.DataObject
) -> None:
    precheck = build_precheck(schema, SDC_METADATA_FIELDS)
    # A few drawn schemas are beyond it (unions msgspec cannot decode, a field both
    # required and forbidden); too many would fail hypothesis's health check.
    assume(precheck is not None)
    records = RECORDS | _near(schema)  # built once: building strategies, not drawing, was the cost
    for _ in range(5):
        record = data.draw(records, label="record")
        if isinstance(record, dict) and precheck(message(record)):
            assert exact_accepts(schema, record), (schema, record)


def as_orjson_reads_it(record: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """The record as a mapping process holds it (orjson read its line, `_sdc_*` fields
    removed); None for one orjson cannot read (an integer beyond 64 bits: its line goes
    the exact parser's way, and the line precheck's)."""
    try:
        native: dict[str, t.Any] = orjson.loads(orjson.dumps(record))
    except orjson.JSONEncodeError:
        return None
    strip_sdc_metadata(native)
    return native


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=TOP_SCHEMAS, data=st.data())
def test_whatever_the_record_precheck_accepts_the_exact_validator_accepts(
    schema: dict[str, t.Any], data: st.DataObject
) -> None:
    precheck = build_record_precheck(schema, SDC_METADATA_FIELDS)
    assume(precheck is not None)
    records = RECORDS | _near(schema)
    for _ in range(5):
        record = data.draw(records, label="record")
        native = as_orjson_reads_it(record) if isinstance(record, dict) else None
        if native is not None and precheck(native):
            assert exact_accepts(schema, native), (schema, native)


def _near(schema: t.Any) -> st.SearchStrategy[t.Any]:
    """Values shaped by `schema`, each part now and then replaced by any value at all: most
    are valid or nearly so, which is where a too permissive check would show."""
    return _near_cached(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _near_cached(schema_text: str) -> st.SearchStrategy[t.Any]:
    """One strategy object per distinct (sub)schema: hypothesis computes a strategy's
    properties on first use, so rebuilding the same strategy for every draw cost most of
    this test's time. Three distinct `_shaped` objects, not one thrice: `one_of` drops
    repeats of one object, and the 3:1 weighting towards shaped values is the point."""
    schema = json.loads(schema_text)
    return st.one_of(_shaped(schema), _shaped(schema), _shaped(schema), VALUES)


_SCALAR_SHAPES: dict[str, st.SearchStrategy[t.Any]] = {
    "string": st.sampled_from(TEXTS),
    "integer": st.integers(-(2**70), 2**70) | st.sampled_from([1.0, 0.5]),
    "number": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "null": st.none(),
}


def _shaped(schema: t.Any) -> st.SearchStrategy[t.Any]:
    if not isinstance(schema, dict) or not schema:
        return VALUES
    if "anyOf" in schema:
        return st.one_of([_near(option) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or ["object"]
    options: list[st.SearchStrategy[t.Any]] = []
    for kind in kinds:
        if kind == "object":
            properties = schema.get("properties", {})
            options.append(
                st.fixed_dictionaries(
                    {name: _near(properties.get(name)) for name in schema.get("required", [])},
                    optional={
                        name: _near(sub) for name, sub in properties.items() if name not in schema.get("required", [])
                    },
                )
            )
        elif kind == "array":
            options.append(st.lists(_near(schema.get("items")), max_size=3))
        else:
            options.append(_SCALAR_SHAPES[kind])
    return st.one_of(options)


# -- where it is used, and where it is not ---------------------------------------------------------

ORDER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["order_id", "total"],
    "properties": {
        "order_id": {"type": "string"},
        "user_id": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
        "status": {"type": "string", "enum": ["placed", "paid"]},
        "total": {"type": "number"},
        "qty": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}},
        "meta": {"type": "object"},
    },
}
ORDER = {
    "order_id": "o1",
    "user_id": None,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": None,
    "status": "paid",
    "total": 12,
    "qty": 2,
    "items": [{"sku": "a", "extra": [1, {"x": None}]}],
    "meta": {"anything": [1, 2]},
}


def test_a_typical_singer_record_is_accepted_without_the_exact_validator() -> None:
    precheck = build_precheck(ORDER_SCHEMA, SDC_METADATA_FIELDS)
    assert precheck is not None
    assert precheck(message(ORDER))
    assert exact_accepts(ORDER_SCHEMA, ORDER)


@pytest.mark.parametrize(
    "change",
    [
        {"total": "12"},  # wrong type
        {"qty": True},  # a boolean is not an integer
        {"status": "lost"},  # not in the enum
        {"surprise": 1},  # additionalProperties: false
        {"items": [{"sku": 5}]},  # nested type
        {"order_id": None},  # not nullable
    ],
)
def test_invalid_records_are_refused(change: dict[str, t.Any]) -> None:
    precheck = build_precheck(ORDER_SCHEMA, SDC_METADATA_FIELDS)
    assert precheck is not None
    record = {**ORDER, **change}
    assert not precheck(message(record))
    assert not exact_accepts(ORDER_SCHEMA, record)


def test_the_record_precheck_accepts_a_typical_record_and_refuses_invalid_ones() -> None:
    precheck = build_record_precheck(ORDER_SCHEMA, SDC_METADATA_FIELDS)
    assert precheck is not None
    assert precheck(dict(ORDER))
    for change in ({"total": "12"}, {"qty": True}, {"status": "lost"}, {"surprise": 1}, {"items": [{"sku": 5}]}):
        assert not precheck({**ORDER, **change}), change
    assert not precheck({k: v for k, v in ORDER.items() if k != "total"})
    assert build_record_precheck({"type": "object", "required": ["_sdc_extracted_at"]}, SDC_METADATA_FIELDS) is None


def test_a_missing_required_field_is_refused() -> None:
    precheck = build_precheck(ORDER_SCHEMA, SDC_METADATA_FIELDS)
    assert precheck is not None
    record = {k: v for k, v in ORDER.items() if k != "total"}
    assert not precheck(message(record)) and not exact_accepts(ORDER_SCHEMA, record)


def test_stricter_than_json_schema_is_allowed_it_only_costs_the_exact_check() -> None:
    """1.0 is an integer to JSON Schema, not to msgspec: refused here, accepted by the validator."""
    precheck = build_precheck(ORDER_SCHEMA, SDC_METADATA_FIELDS)
    assert precheck is not None
    record = {**ORDER, "qty": 1.0}
    assert not precheck(message(record))
    assert exact_accepts(ORDER_SCHEMA, record)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"id": {"type": "string", "pattern": "^a"}}},
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}},
        {"type": "object", "properties": {"n": {"$ref": "#/definitions/n"}}, "definitions": {"n": {}}},
        {"type": "object", "properties": {"n": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "object", "properties": {"t": {"type": "array", "items": [{"type": "string"}]}}},
        {"type": "object", "properties": {"e": {"enum": [1, 2]}}},
        {"type": "object", "properties": {"x": {"type": "date"}}},
        {"type": "object", "required": ["_sdc_extracted_at"]},  # the validated record never has it
    ],
)
def test_schemas_it_cannot_check_exactly_get_no_precheck(schema: dict[str, t.Any]) -> None:
    assert build_precheck(schema, SDC_METADATA_FIELDS) is None


def test_union_msgspec_cannot_decode_gets_no_precheck() -> None:
    two_objects = {
        "type": "object",
        "properties": {"v": {"anyOf": [{"type": "object"}, {"type": "object", "properties": {"a": {}}}]}},
    }
    assert build_precheck(two_objects, ()) is None


@pytest.mark.parametrize("kinds", [None, "string", "null", ["string", "null"], ["integer", "null"]])
@pytest.mark.parametrize("value", ["x", None, "y", 1])
def test_an_enum_accepts_only_members_its_type_allows_too(kinds: t.Any, value: t.Any) -> None:
    field = {"enum": ["x", None], **({"type": kinds} if kinds else {})}
    schema = {"type": "object", "properties": {"e": field}}
    precheck = build_precheck(schema, ())
    record = {"e": value}
    if precheck is not None and precheck(message(record)):
        assert exact_accepts(schema, record)
    if kinds in (None, ["string", "null"]):
        assert precheck is not None and precheck(message(record)) == exact_accepts(schema, record)
