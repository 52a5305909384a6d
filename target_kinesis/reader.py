"""Reading Singer messages: fast, exact numbers, and a line number for every error.

orjson parses most lines several times faster than the stdlib; but it turns integers
beyond 64 bits and long decimals into floats, silently changing them. A line with 16 or
more digits in a row (a decimal point among them) therefore takes the stdlib path with `Decimal`, which keeps the number
exactly as the tap wrote it.
"""

from __future__ import annotations

import io
import json
import re
import sys
import typing as t
from collections import Counter
from decimal import Decimal

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerReader, SingerMessageType

from target_kinesis.errors import InputError

if t.TYPE_CHECKING:
    from target_kinesis.parallel import ParallelReader

# 16+ significant digits, a decimal point allowed among them: what a double may not hold.
# Finding candidates with a regex scan cost more than parsing the line; instead every
# digit and '.' becomes "d", everything else "x" (bytes.translate, in C), and a plain
# substring search finds a run of 16. The exact pattern then confirms the rare hit.
_DIGIT_MAP = bytes(ord("d") if chr(b) in "0123456789." else ord("x") for b in range(256))
_DIGIT_RUN = b"d" * 16
_LONG_NUMBER = re.compile(rb"\d(?:\.?\d){15,}")
MESSAGE_TYPES = frozenset(m.value for m in SingerMessageType)


def may_hold_long_numbers(raw: bytes) -> bool:
    """Whether `raw` (a line, or many) may hold a number a double cannot represent."""
    return _DIGIT_RUN in raw.translate(_DIGIT_MAP) and _LONG_NUMBER.search(raw) is not None


def parse_line(line: bytes | str) -> dict[str, t.Any]:
    """One Singer message; raises ValueError when the line is not a JSON object."""
    raw = line.encode() if isinstance(line, str) else line
    if may_hold_long_numbers(raw):
        message = json.loads(raw, parse_float=Decimal)
    else:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = json.loads(raw, parse_float=Decimal)  # e.g. 1e400: exact as Decimal
    if not isinstance(message, dict):
        raise ValueError("a Singer message must be a JSON object")
    return message


class LineReader(GenericSingerReader[str]):
    """Singer reader that knows which line it is on."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        #: Set by the target when mapping processes are in use (see parallel.py).
        self.parallel: ParallelReader | None = None

    @property
    def default_input(self) -> t.IO[t.Any]:
        return sys.stdin.buffer

    def deserialize_json(self, line: str) -> dict:
        try:
            return parse_line(line)
        except ValueError as exc:
            detail = str(exc).split("\n", 1)[0]
            raise InputError(f"input line {self.line_number}: not a valid JSON message ({detail})") from None

    def process_lines(
        self,
        file_input: t.IO[t.Any] | None,
        callbacks: dict[str, t.Callable[[dict], None]],
    ) -> t.Counter[str]:
        source = file_input if file_input is not None else self.default_input
        # `--input` arrives as a text file; its bytes are cheaper to parse than str.
        source = getattr(source, "buffer", source)
        if self.parallel is not None:
            fd = _file_descriptor(source)
            if fd is not None:
                return self.parallel.run(fd, callbacks, self)
        return self.process_serial(source, callbacks)

    def process_serial(
        self, lines: t.Iterable[bytes | str], callbacks: dict[str, t.Callable[[dict], None]]
    ) -> t.Counter[str]:
        """Parse and dispatch each line in this process (lines numbered on from `line_number`)."""
        stats: Counter[str] = Counter()
        for line in lines:
            self.line_number += 1
            if not line.strip():
                continue
            message = self.deserialize_json(line)
            message_type = message.get("type")
            if message_type not in MESSAGE_TYPES:
                shown = message_type if isinstance(message_type, str) and len(message_type) < 40 else None
                raise InputError(
                    f"input line {self.line_number}: "
                    + (f"unknown message type '{shown}'" if shown else "message has no valid 'type'")
                )
            callback = callbacks.get(message_type)
            if callback is not None:
                callback(message)
            stats[message_type] += 1
        return stats


def _file_descriptor(source: t.Any) -> int | None:
    """The descriptor under a binary file or pipe; None for in-memory input.

    The parallel path reads the descriptor directly, so that it can wait on the input and
    the mapping processes at once; nothing else reads the input before it.
    """
    if isinstance(source, (io.BufferedReader, io.FileIO)):
        try:
            return source.fileno()
        except (OSError, ValueError):
            return None
    return None
