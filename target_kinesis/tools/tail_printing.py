"""What `target-kinesis-tail` prints: one JSON line per event on stdout, and nothing else.

An event that is JSON is printed as it is (compacted to one line), anything else as a JSON
string; with `--show-keys`, each line names the shard and partition key it was read with.
"""

from __future__ import annotations

import json
from typing import TextIO

from target_kinesis.tools.tail_decoding import parse_json


def format_keyed(data: bytes, shard: str, partition_key: str | None) -> str:
    """The ``--show-keys`` line of one event: ``{"shard":..,"partition_key":..,"event":..}``.

    The event is format_record's line, unchanged, so it reads the same with and without keys.
    """
    where = json.dumps({"shard": shard, "partition_key": partition_key}, ensure_ascii=False, separators=(",", ":"))
    return f'{where[:-1]},"event":{format_record(data)}}}'


def format_record(data: bytes) -> str:
    """One output line for one record's data.

    JSON data is printed as it is, without the trailing newline (a document spread over
    several lines is compacted so it stays one line); anything else becomes a JSON string
    (bytes that are not UTF-8 are decoded with U+FFFD replacement characters).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return json.dumps(data.decode("utf-8", errors="replace").rstrip("\r\n"), ensure_ascii=False)
    candidate = text.strip()
    is_json, value = parse_json(candidate) if candidate else (False, None)
    if not is_json:
        return json.dumps(text.rstrip("\r\n"), ensure_ascii=False)
    if "\n" in candidate or "\r" in candidate:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return candidate


class Output:
    """Writes event lines (with their shard and partition key when `show_keys`); knows when
    --limit is reached."""

    def __init__(self, stream: TextIO, limit: int | None, *, show_keys: bool = False) -> None:
        self._stream = stream
        self.limit = limit
        self.show_keys = show_keys
        self.count = 0

    @property
    def full(self) -> bool:
        return self.limit is not None and self.count >= self.limit

    def emit(self, data: bytes, shard: str | None = None, partition_key: str | None = None) -> None:
        """Print one event; `shard` and `partition_key` (Kinesis) are shown with --show-keys."""
        if self.full:
            return
        line = format_record(data) if shard is None or not self.show_keys else format_keyed(data, shard, partition_key)
        self._stream.write(line + "\n")
        self.count += 1

    def flush(self) -> None:
        self._stream.flush()


__all__ = ["Output", "format_keyed", "format_record"]
