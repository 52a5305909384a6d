"""What a record or an S3 object read back holds: its events, for `target-kinesis-tail`.

Pure: no AWS call and no output. A Kinesis record may pack several events (the target's
`aggregation`): a KPL aggregate holds user records with their own keys, a record of JSON lines
one event a line. A Firehose object is gzip or not, lines, and JSON objects written back to
back without a newline.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any, NoReturn

from target_kinesis.aws import kpl


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` is one strict JSON document (no NaN/Infinity); else (False, None)."""
    try:
        return True, json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None


def _split_concatenated(line: bytes) -> list[bytes]:
    """`{..}{..}` (records written without a newline) as separate objects; else the line."""
    if not line.lstrip().startswith(b"{"):
        return [line]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return [line]
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    parts: list[bytes] = []
    position = 0
    while position < len(text):
        while position < len(text) and text[position] in " \t\r":
            position += 1
        if position == len(text):
            break
        try:
            value, end = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return [line]
        if not isinstance(value, dict):
            return [line]
        parts.append(text[position:end].encode("utf-8"))
        position = end
    return parts if len(parts) > 1 else [line]


def _lines(body: bytes) -> list[bytes]:
    """The lines of `body` that are not blank, without line ends."""
    lines: list[bytes] = []
    for raw in body.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line.strip():
            lines.append(line)
    return lines


def split_object(body: bytes) -> list[bytes]:
    """The records of one object Firehose delivered: its lines, without line ends.

    Blank lines are skipped; a line holding several JSON objects back to back (records
    sent without append_newline) gives one record per object.
    """
    return [record for line in _lines(body) for record in _split_concatenated(line)]


def _is_json(line: bytes) -> bool:
    """Whether format_record would print `line` as JSON (strict, UTF-8)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return parse_json(text)[0]


def split_json_lines(data: bytes) -> list[bytes]:
    """The events of a record the target packed as JSON lines (`aggregation: lines`).

    Only when every line is a JSON document of its own: one document spread over several
    lines, or text, is one event (as format_record prints it), not a line each.
    """
    if b"\n" not in data.rstrip(b"\r\n"):
        return [data]  # one line: nothing to split, and nothing to parse twice
    lines = _lines(data)
    return lines if all(_is_json(line) for line in lines) else [data]


def keyed_events(data: bytes, partition_key: str | None) -> list[tuple[str | None, bytes]]:
    """(partition key, event) for each event one Kinesis record holds, in order: a KPL
    aggregate's user records with their own keys, a JSON lines record's lines, or else the
    record itself; `partition_key` is the record's.

    Data that is not an aggregate, or is a damaged one (its digest does not match), is one
    plain record: the KCL hands such a record out whole too.
    """
    pieces: list[tuple[str | None, bytes]]
    try:
        pieces = [(key, user_data) for key, _hash_key, user_data in kpl.unpack(data)]
    except kpl.NotAggregated:
        pieces = [(partition_key, data)]
    return [(key, event) for key, piece in pieces for event in split_json_lines(piece)]


def record_events(data: bytes) -> list[bytes]:
    """The events one Kinesis record holds, in order (keyed_events without the keys)."""
    return [event for _key, event in keyed_events(data, None)]


def maybe_decompress(body: bytes) -> bytes:
    """Undo the GZIP compression Firehose can apply; other bodies are returned unchanged."""
    if body[:2] != b"\x1f\x8b":
        return body
    try:
        return gzip.decompress(body)
    except (OSError, EOFError, zlib.error):
        return body


__all__ = [
    "keyed_events",
    "maybe_decompress",
    "parse_json",
    "record_events",
    "split_json_lines",
    "split_object",
]
