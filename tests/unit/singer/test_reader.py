"""The message reader (singer/reader.py): messages in order, a line number for every error."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest

from target_kinesis.errors import InputError
from target_kinesis.singer.reader import MessageReader


def read(text: str | bytes) -> tuple[list[dict], MessageReader]:
    seen: list[dict] = []
    lr = MessageReader(start=lambda _: None)
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
    lr = MessageReader(start=lambda _: None)
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
    lr = MessageReader(start=lambda _: None)
    stats = lr.process_lines(io.StringIO("\n".join([SCHEMA, RECORD, RECORD, STATE]) + "\n"), {})
    assert stats["RECORD"] == 2
    assert stats["SCHEMA"] == 1
    assert stats["STATE"] == 1
