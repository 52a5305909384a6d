"""Reading the input with mapping processes, keeping every promise of input order.

The main process reads the input in blocks and cuts it into segments of up to
`SEGMENT_RECORDS` RECORD lines. A segment's RECORD lines go to one mapping process
(worker.py), round robin; its other lines stay here. Segments are then finished strictly
in input order, each one's STATE messages between the records that surround them:

* STATE is processed only after every record before it was handed to its producer,
  so "STATE only after acknowledgement" holds exactly as in the one-process path;
* records reach the producers in input order, so per-key ordering holds too;
* a SCHEMA goes to every mapping process before any later RECORD line does, and is
  processed here in its place, as the SDK would;
* a line a mapping process does not map (bad input, or anything unusual) and everything
  after it in its segment is processed here by the ordinary path, so errors, their line
  numbers, and what is delivered before them are the same as without mapping processes.

A segment is sent as soon as it is full, a SCHEMA arrives, or the input pauses, so a
slow tap's records and STATE are not held back waiting for more.
"""

from __future__ import annotations

import logging
import os
import select
import typing as t
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from target_kinesis.delivery.batching import Entry
from target_kinesis.delivery.encoding import Encoded
from target_kinesis.delivery.producer import OversizedRecordError
from target_kinesis.parallel.pool import MappingPool
from target_kinesis.parallel.worker import MappedChunk
from target_kinesis.records.codec import message_problem, parse_line

#: RECORD lines per segment: enough that a segment's overhead (two pipe messages, one
#: pickle) is small against mapping it, small enough to keep memory and latency low.
SEGMENT_RECORDS = 1000
SEGMENT_BYTES = 512 * 1024
READ_BYTES = 256 * 1024
#: Lines of any kind per segment (STATE lines count too).
SEGMENT_LINES = 2 * SEGMENT_RECORDS
#: Segments sent and not yet finished, per mapping process: one mapped while the next waits.
IN_FLIGHT_PER_PROCESS = 2
#: Segments read and not yet finished, of any kind: the bound on what reading holds.
MAX_PENDING_SEGMENTS = 16
#: How long a wait lasts before looking whether a signal asked to stop.
WAIT_SECONDS = 0.2
#: Unexpected hand-backs logged at most this many times (all are counted in the summary).
UNEXPECTED_LOGGED = 5
#: How taps write RECORD lines (singer-sdk, singer-python); other layouts are parsed here first.
_RECORD_PREFIXES = (b'{"type":"RECORD"', b'{"type": "RECORD"')

Callbacks = dict[str, Callable[[dict], None]]
logger = logging.getLogger("target-kinesis")


class LineProcessor(t.Protocol):
    """The reader this one stands in for: it numbers lines, and processes in this process
    the lines a mapping process handed back (`singer.reader.MessageReader`)."""

    line_number: int

    def process_serial(self, lines: Iterable[bytes], callbacks: Callbacks) -> Counter[str]: ...


class ReadingStopped(Exception):
    """`ParallelReader.stop_requested` was set; every segment read is whole (see `finish_read`)."""


@dataclass(slots=True)
class _Segment:
    first_line: int  # line number of lines[0]
    lines: list[bytes] = field(default_factory=list)  # every line as read, newline removed
    positions: list[int] = field(default_factory=list)  # where in `lines` each RECORD line is
    controls: list[tuple[int, dict | None]] = field(default_factory=list)  # other messages; None = bad line
    #: Or, for input that is RECORD lines only (the usual case): the blocks as read,
    #: each ending with a newline, never split into lines unless something goes wrong.
    blocks: list[bytes] = field(default_factory=list)
    records: int = 0  # RECORD lines in `blocks`
    size: int = 0
    worker: int | None = None

    def empty(self) -> bool:
        return not self.lines and not self.blocks

    def record_position(self, index: int) -> int:
        """Where the `index`th RECORD line is among the segment's lines."""
        return index if self.blocks else self.positions[index]

    def all_lines(self) -> list[bytes]:
        if not self.blocks:
            return self.lines
        lines = b"".join(self.blocks).split(b"\n")
        lines.pop()
        return lines


class ParallelReader:
    """Drives `LineProcessor` when mapping processes are in use (see the module docstring)."""

    def __init__(
        self,
        pool: MappingPool,
        *,
        take_counts: Callable[[MappedChunk], None],
        hand_over: Callable[[list[tuple[int, Entry]], Callable[[], list[Encoded]]], None],
        after_segment: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._take_counts = take_counts
        self._hand_over = hand_over
        self._after_segment = after_segment
        self._pending: deque[_Segment] = deque()
        self._in_flight = 0
        self._max_in_flight = IN_FLIGHT_PER_PROCESS * len(pool)
        self._next_worker = 0
        self._open = _Segment(1)
        #: Set (by a signal handler) to stop reading: `run` raises `ReadingStopped` at the
        #: next point where every segment is whole, within WAIT_SECONDS.
        self.stop_requested = False
        self.running = False
        self._callbacks: Callbacks = {}
        self._reader: LineProcessor | None = None
        self._stats: Counter[str] = Counter()
        self._unexpected_logged = 0

    # -- reading ---------------------------------------------------------------------

    def run(self, fd: int, callbacks: Callbacks, reader: LineProcessor) -> Counter[str]:
        """Read `fd` to its end; returns message counts like `LineProcessor.process_lines`."""
        self._callbacks, self._reader, self._stats = callbacks, reader, Counter()
        self.running = True
        try:
            self._run(fd, reader.line_number)
            return self._stats
        finally:
            self.running = False

    def _run(self, fd: int, line_number: int) -> None:
        self._open = _Segment(line_number + 1)
        partial: list[bytes] = []
        stopped = False
        while not stopped:
            block = self._next_block(fd)
            if block:
                cut = block.rfind(b"\n") + 1
                if not cut:
                    partial.append(block)
                    continue
                if partial:
                    partial.append(block[:cut])
                    text = b"".join(partial)
                    partial = [block[cut:]] if cut < len(block) else []
                else:
                    text = block[:cut]
                    if cut < len(block):
                        partial.append(block[cut:])
                count = text.count(b"\n")
                if _only_records(text, count):
                    self._add_records(text, count)
                    line_number += count
                    continue
                lines = text.split(b"\n")
                lines.pop()
            else:
                lines = [b"".join(partial)] if partial else []
            for line in lines:
                line_number += 1
                if not self._add(line, line_number):
                    stopped = True  # a bad line: nothing after it is read
                    break
            if not block:
                break
        self._finish_all()

    def _add_records(self, text: bytes, count: int) -> None:
        """File a block of `count` RECORD lines without looking at each line."""
        if self._open.lines:
            self._dispatch()
        segment = self._open
        segment.blocks.append(text)
        segment.records += count
        segment.size += len(text)
        if segment.records >= SEGMENT_RECORDS or segment.size >= SEGMENT_BYTES:
            self._dispatch()

    def _add(self, line: bytes, line_number: int) -> bool:
        """File one line into the open segment; False after a line that ends the input."""
        if self._open.blocks:
            self._dispatch()
        segment = self._open
        if not line.startswith(_RECORD_PREFIXES):
            if not line.strip():
                segment.lines.append(line)
                return True
            try:
                message: dict | None = parse_line(line)
                kind = message.get("type") if message is not None else None
            except ValueError:
                message, kind = None, None
            if kind != "RECORD":
                if message is not None and message_problem(message) is not None:
                    message = None  # processed here in order, it raises the reader's error
                elif kind == "SCHEMA":
                    self._dispatch()
                    self._pool.broadcast_schema(line + b"\n")
                    segment = self._open = _Segment(line_number)
                segment.controls.append((len(segment.lines), message))
                segment.lines.append(line)
                segment.size += len(line)
                if segment.size >= SEGMENT_BYTES or len(segment.lines) >= SEGMENT_LINES:
                    self._dispatch()  # a tap that sends STATE after STATE: memory stays bounded
                return message is not None
        segment.positions.append(len(segment.lines))
        segment.lines.append(line)
        segment.size += len(line)
        if len(segment.positions) >= SEGMENT_RECORDS or segment.size >= SEGMENT_BYTES:
            self._dispatch()
        return True

    def _dispatch(self) -> None:
        """Send the open segment's RECORD lines to the next mapping process; open a new one."""
        segment = self._open
        if segment.empty():
            return
        if segment.blocks or segment.positions:
            worker = self._next_worker
            self._next_worker = (worker + 1) % len(self._pool)
            if segment.blocks:
                chunk = segment.blocks[0] if len(segment.blocks) == 1 else b"".join(segment.blocks)
            else:
                lines = segment.lines
                chunk = b"\n".join([lines[p] for p in segment.positions]) + b"\n"
            self._pool.send_chunk(worker, chunk)
            segment.worker = worker
            self._in_flight += 1
        self._pending.append(segment)
        self._open = _Segment(segment.first_line + (segment.records if segment.blocks else len(segment.lines)))

    def _next_block(self, fd: int) -> bytes:
        """The next block of input; finishes segments whose answers are in meanwhile."""
        pool = self._pool
        while True:
            while self._pending and self._head_ready():
                self._finish_head()
            if self._in_flight >= self._max_in_flight or len(self._pending) >= MAX_PENDING_SEGMENTS:
                self._finish_head()  # wait for the oldest answer
                continue
            if not self._open.empty() and not select.select([fd], [], [], 0)[0]:
                self._dispatch()  # the input paused: do not hold back what we have
                continue
            waiting_on: list[t.Any] = [fd]
            if self._pending:
                head = self._pending[0]
                if head.worker is not None:
                    waiting_on.append(pool.outboxes[head.worker])
            self._check_stop()
            if fd in wait(waiting_on, timeout=WAIT_SECONDS):
                return os.read(fd, READ_BYTES)

    def _check_stop(self) -> None:
        if self.stop_requested:
            raise ReadingStopped

    def finish_read(self) -> None:
        """Finish every segment already read, in order (after `ReadingStopped`)."""
        if self._reader is None:
            return
        self.stop_requested = False
        self._finish_all()

    def _finish_all(self) -> None:
        """Send what is open, then finish every pending segment in order."""
        self._dispatch()
        while self._pending:
            self._finish_head()

    def _head_ready(self) -> bool:
        worker = self._pending[0].worker
        return worker is None or self._pool.outboxes[worker].poll()

    # -- finishing segments, in input order --------------------------------------------

    def _finish_head(self) -> None:
        reader, callbacks, stats = self._reader, self._callbacks, self._stats
        assert reader is not None
        segment = self._pending[0]
        chunk: MappedChunk | None = None
        if segment.worker is not None:
            answers = self._pool.outboxes[segment.worker]
            while not answers.poll(WAIT_SECONDS):
                self._check_stop()  # nothing taken yet: stopping here leaves all segments whole
            chunk = self._pool.result(segment.worker)
            self._in_flight -= 1
        self._pending.popleft()
        if chunk is not None:
            self._take_counts(chunk)
        mapped = len(chunk.ends) if chunk is not None else 0
        # Where the mapping process stopped: from that line on, this process takes over.
        resume = segment.record_position(mapped) if chunk is not None and chunk.stop is not None else None
        if resume is not None and chunk is not None:
            self._handed_back(segment.first_line + resume, chunk.stop_reason or "")
        handed = 0
        for position, message in segment.controls:
            if (resume is not None and position > resume) or message is None:
                resume = position if resume is None or position < resume else resume
                break
            if chunk is not None:
                before = bisect_left(segment.positions, position)
                end = chunk.ends[before - 1] if before else 0
                if end > handed:
                    self._hand(segment, chunk, handed, end, reader)
                    handed = end
            reader.line_number = segment.first_line + position
            kind = message["type"]
            callbacks[kind](message)
            stats[kind] += 1
        if chunk is not None:
            end = chunk.ends[-1] if chunk.ends else 0
            if end > handed:
                self._hand(segment, chunk, handed, end, reader)
            stats["RECORD"] += mapped
        if resume is not None:
            reader.line_number = segment.first_line + resume - 1
            stats.update(reader.process_serial(segment.all_lines()[resume:], callbacks))
        self._after_segment()

    def _handed_back(self, line: int, reason: str) -> None:
        """A line a mapping process did not map is mapped here (counted by the worker in
        `handed_back`); bad input is reported by that path anyway, anything else is logged,
        the first few times, since it means the processes are not doing the work."""
        if reason.startswith("bad input") or self._unexpected_logged >= UNEXPECTED_LOGGED:
            return
        self._unexpected_logged += 1
        logger.warning(
            "A mapping process could not map input line %d (%s); it is mapped in the main process", line, reason
        )

    def _hand(self, segment: _Segment, chunk: MappedChunk, start: int, end: int, reader: LineProcessor) -> None:
        try:
            self._hand_over(chunk.runs(start, end), lambda: chunk.records()[start:end])
        except OversizedRecordError as exc:
            # Name the input line of the record refused, as the one-process path does.
            index = start + exc.position
            reader.line_number = segment.first_line + segment.record_position(bisect_right(chunk.ends, index))
            raise


def _only_records(text: bytes, lines: int) -> bool:
    """Whether every line of `text` (complete lines) is a RECORD line, counted in C.

    A JSON line holds no raw newline, so a newline followed by the RECORD prefix can only
    be the start of a RECORD line.
    """
    for prefix in _RECORD_PREFIXES:
        if text.startswith(prefix):
            return text.count(b"\n" + prefix) + 1 == lines
    return False


__all__ = ["ParallelReader", "ReadingStopped"]
