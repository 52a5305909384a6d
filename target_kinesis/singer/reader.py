"""Reading Singer messages: a line number for every error, and the choice of who maps records.

The target starts (destinations checked, producers ready, mapping processes forked) when
its reader is about to read the first line: both the CLI and the SDK's test runner pass
through here. Records are then mapped in this process (`process_serial`), or in the mapping
processes when the input is a file or pipe and the target started them
(`parallel.segments.ParallelReader`, which hands back to `process_serial` whatever it does
not map).
"""

from __future__ import annotations

import io
import sys
import typing as t
from collections import Counter
from collections.abc import Callable, Iterable

from singer_sdk.singerlib.encoding.base import GenericSingerReader

from target_kinesis.errors import InputError
from target_kinesis.parallel.segments import Callbacks, ParallelReader
from target_kinesis.records.codec import message_problem, parse_line

#: Starts the run when reading begins; given whether the input could be read by the
#: mapping processes (a file or pipe), returns their reader when they are to be used.
StartRun = Callable[[bool], "ParallelReader | None"]
#: Told of a RECORD holding NaN or an infinity (written as null): its line number, stream
#: and record.
NonFiniteSeen = Callable[[int, str, dict[str, t.Any]], None]


class MessageReader(GenericSingerReader[bytes]):
    def __init__(self, start: StartRun, non_finite: NonFiniteSeen | None = None) -> None:
        super().__init__()
        self.line_number = 0
        self._non_finite = non_finite
        self._saw_non_finite = False
        #: The RECORD line being processed now, for the precheck; None while no line is
        #: (a BATCH file's records, a message processed out of its segment).
        self.current_line: bytes | None = None
        self._start = start
        self._parallel: ParallelReader | None = None

    @property
    def default_input(self) -> t.IO[t.Any]:
        return sys.stdin.buffer

    def deserialize_json(self, line: bytes | str) -> dict[str, t.Any]:
        self._saw_non_finite = False
        try:
            return parse_line(line, self._note_non_finite)
        except ValueError as exc:
            detail = str(exc).split("\n", 1)[0]
            raise InputError(f"input line {self.line_number}: not a valid JSON message ({detail})") from None

    def process_lines(self, file_input: t.IO[t.Any] | None, callbacks: Callbacks) -> Counter[str]:
        source = file_input if file_input is not None else self.default_input
        # `--input` arrives as a text file; its bytes are cheaper to parse than str.
        source = getattr(source, "buffer", source)
        fd = _file_descriptor(source)
        self._parallel = self._start(fd is not None)
        if self._parallel is not None and fd is not None:
            return self._parallel.run(fd, callbacks, self)
        return self.process_serial(source, callbacks)

    def process_serial(self, lines: Iterable[bytes | str], callbacks: Callbacks) -> Counter[str]:
        """Parse and dispatch each line in this process (lines numbered on from `line_number`)."""
        stats: Counter[str] = Counter()
        for line in lines:
            self.line_number += 1
            if not line.strip():
                continue
            message = self.deserialize_json(line)
            problem = message_problem(message)
            if problem is not None:
                raise InputError(f"input line {self.line_number}: {problem}")
            kind = message["type"]
            if self._saw_non_finite:
                self._saw_non_finite = False
                if kind == "RECORD" and self._non_finite is not None:
                    self._non_finite(self.line_number, message["stream"], message["record"])
            callback = callbacks.get(kind)
            if callback is not None:
                self.current_line = line if isinstance(line, bytes) else line.encode()
                try:
                    callback(message)
                finally:
                    self.current_line = None
            stats[kind] += 1
        return stats

    def _note_non_finite(self, name: str) -> None:
        self._saw_non_finite = True

    def request_stop(self) -> bool:
        """Ask the mapping-process reader to stop at its next whole point; False when there is
        none running (the caller then stops the read itself)."""
        if self._parallel is None or not self._parallel.running:
            return False
        self._parallel.stop_requested = True
        return True

    def finish_read(self) -> None:
        """After a stop request: finish, in order, every segment already read."""
        if self._parallel is not None:
            self._parallel.finish_read()


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
