"""Singer message lines: parsed fast with exact numbers, and checked for the shape the spec gives them.

orjson parses most lines several times faster than the stdlib; but it turns integers
beyond 64 bits and long decimals into floats, silently changing them. A line with 16 or
more digits in a row (a decimal point among them) therefore takes the stdlib path with `Decimal`, which keeps the number
exactly as the tap wrote it.

Two kinds of number need words of their own:

* `NaN`, `Infinity` and `-Infinity` are not JSON, but Python's `json.dumps` writes them, so
  a tap over a numeric column holding NaN does. A stream carries JSON, which has no such
  numbers: the value is written as null, and never silently: the caller is told
  (`on_non_finite`), warns naming the line and field, and counts it.
* Integers are kept exactly up to MAX_INTEGER_DIGITS digits. Python refuses to turn longer
  digit strings into integers (4,300 digits by default: the conversion takes time that grows
  with the square of the length); `keep_long_integers` raises that limit for the process,
  and a longer integer is refused in our words.
"""

from __future__ import annotations

import json
import math
import re
import sys
import typing as t
from collections.abc import Callable, Iterator
from decimal import Decimal

import orjson

# 16+ significant digits, a decimal point allowed among them: what a double may not hold.
# Finding candidates with a regex scan cost more than parsing the line; instead every
# digit and '.' becomes "d", everything else "x" (bytes.translate, in C), and a plain
# substring search finds a run of 16. The exact pattern then confirms the rare hit.
_DIGIT_MAP = bytes(ord("d") if chr(b) in "0123456789." else ord("x") for b in range(256))
_DIGIT_RUN = b"d" * 16
_LONG_NUMBER = re.compile(rb"\d(?:\.?\d){15,}")
#: The Singer message types (the spec's, and the SDK's BATCH).
MESSAGE_TYPES = frozenset({"SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION", "BATCH"})


#: The longest integer kept exactly: 100,000 digits parse in about 50 ms and are written back in
#: about 150 ms (a million digits would take 20 s); no database column holds a longer one.
MAX_INTEGER_DIGITS = 100_000
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def keep_long_integers() -> None:
    """Let this process read and write integers of up to MAX_INTEGER_DIGITS digits (once, at
    start-up: the setting is the interpreter's, and forked mapping processes inherit it)."""
    limit = sys.get_int_max_str_digits()
    if limit and limit < MAX_INTEGER_DIGITS:
        sys.set_int_max_str_digits(MAX_INTEGER_DIGITS)


def may_hold_long_numbers(raw: bytes) -> bool:
    """Whether `raw` (a line, or many) may hold a number a double cannot represent."""
    return _DIGIT_RUN in raw.translate(_DIGIT_MAP) and _LONG_NUMBER.search(raw) is not None


def parse_line(line: bytes | str, on_non_finite: Callable[[str], t.Any] | None = None) -> dict[str, t.Any]:
    """One Singer message; raises ValueError when the line is not a JSON object.
    `on_non_finite`: see `parse_object`."""
    return parse_object(line, "a Singer message must be a JSON object", on_non_finite)


def parse_object(
    line: bytes | str, not_object: str = "not a JSON object", on_non_finite: Callable[[str], t.Any] | None = None
) -> dict[str, t.Any]:
    """A JSON object, numbers exact; ValueError (saying why) for anything else.

    `NaN`, `Infinity` and `-Infinity` are read as floats, and `on_non_finite` is called with
    each one's text (it may raise, to refuse the line)."""
    raw = line.encode() if isinstance(line, str) else line
    try:
        if may_hold_long_numbers(raw):
            message = _parse_exact(raw, on_non_finite)
        else:
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                message = _parse_exact(raw, on_non_finite)  # e.g. 1e400: exact as Decimal
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason})") from None
    if not isinstance(message, dict):
        raise ValueError(not_object)
    return message


def _parse_exact(raw: bytes, on_non_finite: Callable[[str], t.Any] | None) -> t.Any:
    def constant(name: str) -> float:
        if on_non_finite is not None:
            on_non_finite(name)
        return _NON_FINITE[name]

    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=constant)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        limit = sys.get_int_max_str_digits()
        raise ValueError(f"an integer has more than {limit:,} digits, the most target-kinesis keeps exactly") from None


def non_finite_paths(value: t.Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, `NaN` / `Infinity` / `-Infinity`) of each non-finite float in a record,
    `items[2].price` style."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield path, "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from non_finite_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from non_finite_paths(item, f"{path}[{index}]")


def _is_name(value: t.Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_names(value: t.Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def message_problem(message: dict[str, t.Any]) -> str | None:
    """What makes a parsed message unusable, or None: the shape the Singer spec gives it.

    Checked before a message reaches the SDK or a sink, so that a `record` that is a
    string, a `stream` that is a list or `key_properties` that is a string ends as one
    line naming the problem, never as an AttributeError somewhere downstream.
    """
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        shown = kind if isinstance(kind, str) and len(kind) < 40 else None
        return f"unknown message type '{shown}'" if shown else "message has no valid 'type'"
    if kind != "STATE" and not _is_name(message.get("stream")):
        return f"{kind} message needs 'stream', a non-empty string"
    if kind == "RECORD":
        if not isinstance(message.get("record"), dict):
            return f"RECORD for stream '{message['stream']}' needs 'record', a JSON object"
        if message.get("time_extracted") is not None and not isinstance(message["time_extracted"], str):
            return f"RECORD for stream '{message['stream']}': 'time_extracted' must be a date-time string"
    elif kind == "SCHEMA":
        where = f"SCHEMA for stream '{message['stream']}'"
        schema = message.get("schema")
        if not isinstance(schema, dict):
            return f"{where} needs 'schema', a JSON object"
        if not isinstance(schema.get("properties"), dict):
            return f"{where}: the schema needs 'properties', a JSON object"
        if message.get("key_properties") is not None and not _is_names(message["key_properties"]):
            return f"{where}: 'key_properties' must be a list of field names"
        bookmarks = message.get("bookmark_properties")
        if bookmarks is not None and not isinstance(bookmarks, str) and not _is_names(bookmarks):
            return f"{where}: 'bookmark_properties' must be a list of field names"
    elif kind == "STATE":
        if "value" not in message:
            return "STATE message needs 'value'"
    elif kind == "ACTIVATE_VERSION":
        if type(message.get("version")) is not int:
            return f"ACTIVATE_VERSION for stream '{message['stream']}' needs 'version', an integer"
    elif kind == "BATCH":
        where = f"BATCH for stream '{message['stream']}'"
        encoding = message.get("encoding")
        if not isinstance(encoding, dict) or not _is_name(encoding.get("format")):
            return f"{where} needs 'encoding', an object with 'format'"
        if not _is_names(message.get("manifest")):
            return f"{where} needs 'manifest', a list of file URLs"
    return None
