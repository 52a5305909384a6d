"""Unit tests of target_kinesis.reader: fast parsing, exact numbers, line numbers in errors."""

from __future__ import annotations

import io
import json
import types
from decimal import Decimal

import pytest

from target_kinesis import reader as reader_module
from target_kinesis.errors import InputError
from target_kinesis.reader import LineReader, parse_line


def read(text: str | bytes) -> tuple[list[dict], LineReader]:
    seen: list[dict] = []
    lr = LineReader()
    callbacks = {name: seen.append for name in ("SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION", "BATCH")}
    source = io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)
    lr.process_lines(source, callbacks)
    return seen, lr


def read_error(text: str | bytes) -> str:
    with pytest.raises(InputError) as info:
        read(text)
    return str(info.value)


SCHEMA = '{"type": "SCHEMA", "stream": "s", "schema": {"properties": {}}, "key_properties": []}'
RECORD = '{"type": "RECORD", "stream": "s", "record": {"id": 1}}'
STATE = '{"type": "STATE", "value": {"bookmarks": {"s": 1}}}'


# -- parse_line -------------------------------------------------------------------------------------


def test_ordinary_lines_take_the_orjson_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def stdlib_called(*args: object, **kwargs: object) -> None:
        raise AssertionError("stdlib json used for an ordinary line")

    monkeypatch.setattr(reader_module, "json", types.SimpleNamespace(loads=stdlib_called))
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


# -- LineReader ---------------------------------------------------------------------------------------


def test_reader_passes_messages_to_callbacks_in_order() -> None:
    seen, _ = read("\n".join([SCHEMA, RECORD, STATE]) + "\n")
    assert [m["type"] for m in seen] == ["SCHEMA", "RECORD", "STATE"]
    assert seen[1]["record"] == {"id": 1}


def test_reader_reads_bytes_input_with_exact_numbers() -> None:
    record = b'{"type": "RECORD", "stream": "s", "record": {"n": 12345678901234567890, "d": 0.123456789012345678901}}'
    seen, _ = read(SCHEMA.encode() + b"\n" + record + b"\n")
    assert seen[1]["record"]["n"] == 12345678901234567890
    assert seen[1]["record"]["d"] == Decimal("0.123456789012345678901")


def test_not_json_line_is_an_input_error_naming_the_line_number() -> None:
    message = read_error("\n".join([SCHEMA, RECORD, "this is not json", RECORD]) + "\n")
    assert "line 3" in message
    assert "\n" not in message  # one line


def test_line_numbers_count_blank_lines() -> None:
    message = read_error("\n".join([SCHEMA, "", RECORD, "   ", "{broken"]) + "\n")
    assert "line 5" in message


def test_records_before_the_bad_line_were_delivered() -> None:
    seen: list[dict] = []
    lr = LineReader()
    with pytest.raises(InputError):
        lr.process_lines(io.StringIO(f"{SCHEMA}\n{RECORD}\nnope\n"), {"SCHEMA": seen.append, "RECORD": seen.append})
    assert [m["type"] for m in seen] == ["SCHEMA", "RECORD"]
    assert lr.line_number == 3


def test_json_array_line_is_an_input_error() -> None:
    assert "line 2" in read_error(f"{SCHEMA}\n[1, 2, 3]\n")


def test_unknown_message_type_is_an_input_error() -> None:
    message = read_error(f"{SCHEMA}\n{json.dumps({'type': 'RECORDS', 'stream': 's'})}\n")
    assert "line 2" in message
    assert "RECORDS" in message


@pytest.mark.parametrize("message", [{"stream": "s", "record": {}}, {"type": None}, {"type": 5}, {"type": "x" * 500}])
def test_message_without_a_valid_type_is_an_input_error(message: dict) -> None:
    text = read_error(f"{SCHEMA}\n{json.dumps(message)}\n")
    assert "line 2" in text
    assert "x" * 100 not in text  # a long bogus type is not echoed in full


def test_reader_counts_messages_by_type() -> None:
    lr = LineReader()
    stats = lr.process_lines(io.StringIO("\n".join([SCHEMA, RECORD, RECORD, STATE]) + "\n"), {})
    assert stats["RECORD"] == 2
    assert stats["SCHEMA"] == 1
    assert stats["STATE"] == 1
