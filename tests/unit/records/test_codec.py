"""Singer message lines (records/codec.py): fast parsing, exact numbers, the shapes messages must have."""

from __future__ import annotations

import sys
import types
from decimal import Decimal

import pytest

from target_kinesis.records import codec as codec_module
from target_kinesis.records.codec import (
    MAX_INTEGER_DIGITS,
    keep_long_integers,
    message_problem,
    non_finite_paths,
    parse_line,
)

# -- parse_line -------------------------------------------------------------------------------------


def test_ordinary_lines_take_the_orjson_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def stdlib_called(*args: object, **kwargs: object) -> None:
        raise AssertionError("stdlib json used for an ordinary line")

    monkeypatch.setattr(codec_module, "json", types.SimpleNamespace(loads=stdlib_called))
    line = b'{"type": "RECORD", "stream": "s", "record": {"id": 12345, "price": 9.99, "name": "\\u00e9", "ok": true}}'
    message = parse_line(line)
    assert message["record"] == {"id": 12345, "price": 9.99, "name": "é", "ok": True}
    assert parse_line(line.decode()) == message  # str input too


@pytest.mark.parametrize(
    "number",
    ["12345678901234567890", "-98765432109876543210", "123456789012345678901234567890"],
)
def test_long_integers_stay_exact_ints(number: str) -> None:
    message = parse_line(f'{{"type": "RECORD", "stream": "s", "record": {{"n": {number}}}}}')
    value = message["record"]["n"]
    assert type(value) is int
    assert value == int(number)


@pytest.mark.parametrize(
    "number",
    [
        "0.12345678901234567890",
        "12345678901234567890.123456789",
        "3.141592653589793238462643383279",
        "-0.000000000000000000001",
        "1.00000000000000000001",
    ],
)
def test_long_decimals_stay_exact_decimals(number: str) -> None:
    message = parse_line(f'{{"type": "RECORD", "stream": "s", "record": {{"x": {number}}}}}')
    value = message["record"]["x"]
    assert isinstance(value, Decimal)
    assert value == Decimal(number)


@pytest.mark.parametrize("number", ["123456789.123456789", "12345678.9012345678", "0.1000000000000000055"])
def test_long_decimals_split_by_the_point_stay_exact(number: str) -> None:
    value = parse_line(f'{{"x": {number}}}')["x"]
    assert Decimal(str(value)) == Decimal(number)


def test_1e400_is_not_infinity() -> None:
    value = parse_line('{"type": "RECORD", "stream": "s", "record": {"big": 1e400}}')["record"]["big"]
    assert isinstance(value, Decimal)
    assert value == Decimal("1e400")
    assert value.is_finite()


def test_long_number_inside_a_string_is_only_text() -> None:
    message = parse_line('{"id": "12345678901234567890", "n": 1.5}')
    assert message == {"id": "12345678901234567890", "n": 1.5}


@pytest.mark.parametrize("line", ["not json", "{", '{"a": }', "[1, 2]", '"text"', "42", "null"])
def test_parse_line_rejects_what_is_not_a_json_object(line: str) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


# -- MessageReader ---------------------------------------------------------------------------------------


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


# -- numbers JSON has no words for, and integers longer than Python reads by default -------------------


def test_nan_and_infinities_are_read_and_reported() -> None:
    seen: list[str] = []
    message = parse_line(
        b'{"type":"RECORD","stream":"s","record":{"a":NaN,"b":[1,Infinity],"c":{"d":-Infinity}}}', seen.append
    )
    assert seen == ["NaN", "Infinity", "-Infinity"]
    assert list(non_finite_paths(message["record"])) == [("a", "NaN"), ("b[1]", "Infinity"), ("c.d", "-Infinity")]


def test_a_non_finite_hook_may_refuse_the_line() -> None:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} refused")

    with pytest.raises(ValueError, match="NaN refused"):
        parse_line(b'{"x":NaN}', refuse)
    assert parse_line(b'{"x":1.5}', refuse) == {"x": 1.5}, "an ordinary line never calls it"


def test_integers_are_kept_exactly_up_to_the_documented_limit() -> None:
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)  # Python's default (a target made earlier in this process raised it)
    digits = "7" * 5000
    try:
        with pytest.raises(ValueError, match="4,300 digits, the most target-kinesis keeps exactly"):
            parse_line(f'{{"n":{digits}}}'.encode())  # Python's own limit, until the target raises it
        keep_long_integers()
        assert parse_line(f'{{"n":{digits}}}'.encode())["n"] == int(digits)
        too_long = "7" * (MAX_INTEGER_DIGITS + 1)
        with pytest.raises(ValueError) as refused:
            parse_line(f'{{"n":{too_long}}}'.encode())
        assert str(refused.value) == (
            f"an integer has more than {MAX_INTEGER_DIGITS:,} digits, the most target-kinesis keeps exactly"
        )
    finally:
        sys.set_int_max_str_digits(before)
