"""Mapping processes: RECORD lines in, finished records out, on another core.

A Python process runs one thread at a time. Parsing, validating, mapping and encoding
a record costs several times what sending it does, so with all of it in the process
that also drives the HTTP calls the target used one core of a machine with two or more.
Here each mapping process owns a `RecordMapper` (the same validation, mapping and
encoding code the main process runs) and answers chunks of RECORD lines with the
encoded records, in the order it received them. Which chunk goes where, and putting the
answers back in input order, is `parallel.py`'s job.

The processes are forked: they start in milliseconds, share the settings already in
memory, and never touch AWS, the input, the output or the logs. They ignore SIGINT and
SIGTERM (the main process decides how a run stops) and leave as soon as the main process
closes their pipe, or dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import typing as t
from array import array
from dataclasses import replace
from multiprocessing.connection import Connection
from operator import itemgetter
from typing import NamedTuple

import fastjsonschema
import orjson

from target_kinesis.batching import Column, Entry
from target_kinesis.encoding import Encoded, encoder_for
from target_kinesis.errors import TargetKinesisError
from target_kinesis.mapping import EventMapper
from target_kinesis.precheck import build_precheck
from target_kinesis.reader import may_hold_long_numbers, parse_line
from target_kinesis.settings import Settings
from target_kinesis.sink import SDC_METADATA_FIELDS, check_record, replication_key_of
from target_kinesis.stats import RunStats
from target_kinesis.validation import build_validator

_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_SCHEMA = b"S"
_CHUNK = b"C"
_FAILED = b"F"
_RESULT = b"R"
#: A pipe's buffer: the default 64 KiB takes a segment (up to 512 KiB) in many small
#: writes, each waiting for the other side to be scheduled; 1 MiB (Linux's default limit
#: for anyone) takes a whole segment or answer at once.
PIPE_BYTES = 1024 * 1024

# fastjsonschema imports parts of itself while compiling; do it once here, before any
# fork, so a child never waits on an import lock another thread held at that moment.
fastjsonschema.compile({"type": "object"})


class MappedChunk(NamedTuple):
    """A mapping process's answer for one chunk of RECORD lines."""

    #: The records made, per destination index: each destination's in input order.
    columns: dict[int, Column]
    #: The destination index of each record in input order; None when all have one.
    destinations: bytes | array | None
    #: ends[j]: records made once RECORD line j was done (to interleave STATE messages).
    ends: list[int]
    #: RECORD lines mapped, per Singer stream (the SDK's per-sink tallies).
    per_stream: dict[str, int]
    #: Events read, unmapped, dropped as anonymous... (added to the writer's run statistics).
    counts: RunStats
    #: Index of the first line not mapped (bad input, or anything unusual): the main
    #: process takes it from there itself, so every error reads as it always did.
    stop: int | None

    def runs(self, start: int, end: int) -> list[tuple[int, Entry]]:
        """Records `start` to `end` (excluded, in input order): a run per destination."""
        destinations = self.destinations
        if destinations is None:
            return [(index, column.entry(start, end)) for index, column in self.columns.items() if end > start]
        runs = []
        for index, column in self.columns.items():
            first = destinations[:start].count(index)
            last = first + destinations[start:end].count(index)
            if last > first:
                runs.append((index, column.entry(first, last)))
        return runs

    def records(self) -> list[Encoded]:
        """Every record as (destination index, key, size, wire), in input order: for the rare
        hand-over record by record (`EventWriter.hand_over`)."""
        singles = {index: iter(column.entry(0, column.records).split()) for index, column in self.columns.items()}
        if self.destinations is None:
            order = [index for index, column in self.columns.items() for _ in range(column.records)]
        else:
            order = list(self.destinations)
        return [(index, entry.key, entry.size, entry.wire) for index in order for entry in [next(singles[index])]]


def _columns(records: list[Encoded]) -> tuple[dict[int, Column], bytes | array | None]:
    """Records as columns, one per destination (see `batching.Column`)."""
    if not records:
        return {}, None
    indexes = list(map(itemgetter(0), records))
    if indexes.count(indexes[0]) == len(indexes):
        return {indexes[0]: _column(records)}, None
    destinations = bytes(indexes) if max(indexes) < 256 else array("I", indexes)
    return {i: _column([r for r in records if r[0] == i]) for i in sorted(set(indexes))}, destinations


def _column(records: list[Encoded]) -> Column:
    return Column.of(list(map(itemgetter(3), records)), list(map(itemgetter(1), records)), map(itemgetter(2), records))


class _Stream(NamedTuple):
    validator: t.Any
    #: Says "certainly valid" of a line, so the validator can be skipped (precheck.py).
    precheck: t.Callable[[bytes], bool] | None
    key_properties: tuple[str, ...]
    mapper: EventMapper


class RecordMapper:
    """RECORD lines -> encoded records, exactly as the main process would make them.

    The mapping process's whole job, and pure: tested in-process. A stream's validator
    and mapper are rebuilt when its SCHEMA or key properties change, the same rule by
    which the SDK gives the main process a new sink.
    """

    def __init__(self, settings: Settings, *, validate: bool) -> None:
        self._settings = settings
        self._validate = validate
        self._encoder = encoder_for(settings)
        self._streams: dict[str, _Stream | None] = {}
        self._registered: dict[str, tuple[t.Any, t.Any]] = {}

    def schema(self, line: bytes) -> None:
        """Take a SCHEMA line. A broken one is left for the main process to report."""
        try:
            message = parse_line(line)
            name = message["stream"]
            schema = message["schema"]
            keys = message.get("key_properties")
        except Exception:
            return
        if self._registered.get(name) == (schema, keys):
            return
        self._registered[name] = (schema, keys)
        try:
            key_properties = tuple(keys or ())
            self._streams[name] = _Stream(
                build_validator(schema, name) if self._validate else None,
                build_precheck(schema, SDC_METADATA_FIELDS) if self._validate else None,
                key_properties,
                EventMapper(
                    name,
                    self._settings.event_spec(name),
                    key_properties=key_properties,
                    schema=schema,
                    replication_key=replication_key_of(message),
                ),
            )
        except Exception:
            self._streams[name] = None  # records of this stream go back to the main process

    def map_lines(self, lines: list[bytes], *, plain_numbers: bool = False) -> MappedChunk:
        """Map RECORD lines; `plain_numbers`: none holds a number a double cannot represent,
        so orjson alone parses them (checked once for the whole chunk, not per line)."""
        encoder = self._encoder
        stats = encoder.stats
        before = replace(stats)
        records: list[Encoded] = []
        ends: list[int] = []
        per_stream: dict[str, int] = {}
        streams = self._streams
        stop: int | None = None
        loads = orjson.loads
        for index, line in enumerate(lines):
            try:
                message = loads(line) if plain_numbers else parse_line(line)
                name = message["stream"]
                stream = streams[name]
                record = message["record"]
                if message["type"] != "RECORD" or stream is None or type(record) is not dict:
                    raise ValueError
                precheck = stream.precheck
                check_record(
                    record,
                    stream.validator,
                    stream.key_properties,
                    name,
                    known_valid=precheck is not None and precheck(line),
                )
                encoder.encode(stream.mapper.map(record, message.get("time_extracted")), records)
            except Exception:
                stop = index
                break
            per_stream[name] = per_stream.get(name, 0) + 1
            ends.append(len(records))
        return MappedChunk(
            *_columns(records),
            ends,
            per_stream,
            stats.minus(before),
            stop,
        )


def _worker_main(
    inbox: Connection, outbox: Connection, settings: Settings, validate: bool, others: list[Connection]
) -> None:
    """A mapping process: answer chunks in order until the main process hangs up."""
    for number in _SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    # The fork copied the main process's ends of every pipe; holding them, this process
    # would never see its input end when the main process closes it.
    for connection in others:
        connection.close()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process's whole life
    logging.disable(logging.CRITICAL)  # the main process logs what matters, once
    mapper = RecordMapper(settings, validate=validate)
    # A thread keeps reading the input pipe, so the main process never blocks sending
    # a chunk while this process blocks sending an answer (both pipes full).
    received: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def receive() -> None:
        try:
            while True:
                received.put(inbox.recv_bytes())
        except (EOFError, OSError):
            received.put(None)

    threading.Thread(target=receive, daemon=True).start()
    try:
        while (message := received.get()) is not None:
            kind, body = message[:1], message[1:]
            if kind == _SCHEMA:
                mapper.schema(body)
            else:
                lines = body.split(b"\n")
                lines.pop()  # every line ends with "\n"
                mapped = mapper.map_lines(lines, plain_numbers=not may_hold_long_numbers(body))
                outbox.send_bytes(_RESULT + pickle.dumps(mapped, protocol=pickle.HIGHEST_PROTOCOL))
    except (BrokenPipeError, EOFError, OSError):
        return  # the main process is gone
    except BaseException as exc:  # a bug of ours: tell the main process what, then leave
        with contextlib.suppress(OSError):
            outbox.send_bytes(_FAILED + f"{type(exc).__name__}: {exc}".encode(errors="replace"))


def _widen(connection: Connection) -> None:
    """Grow a pipe's buffer to PIPE_BYTES where the system allows (speed only)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or a lower limit
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class MappingPool:
    """The mapping processes and their pipes, seen from the main process."""

    def __init__(self, processes: int, settings: Settings, *, validate: bool) -> None:
        context = multiprocessing.get_context("fork")
        self._inboxes: list[Connection] = []
        self.outboxes: list[Connection] = []
        self._processes: list[t.Any] = []
        sys.stdout.flush()  # a child must not inherit (and later print) buffered output
        sys.stderr.flush()
        # Signals stay blocked until a child has set them to ignored, so a SIGTERM
        # during start-up cannot run the main process's handler inside a child.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for _ in range(processes):
                inbox_read, inbox_write = context.Pipe(duplex=False)
                outbox_read, outbox_write = context.Pipe(duplex=False)
                _widen(inbox_write)
                _widen(outbox_write)
                others = [*self._inboxes, *self.outboxes, inbox_write, outbox_read]
                process = context.Process(
                    target=_worker_main,
                    args=(inbox_read, outbox_write, settings, validate, others),
                    name="target-kinesis-mapper",
                    daemon=True,
                )
                process.start()
                inbox_read.close()
                outbox_write.close()
                self._inboxes.append(inbox_write)
                self.outboxes.append(outbox_read)
                self._processes.append(process)
        except BaseException:
            self.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)

    def __len__(self) -> int:
        return len(self._processes)

    def broadcast_schema(self, line: bytes) -> None:
        for inbox in self._inboxes:
            self._send(inbox, _SCHEMA + line)

    def send_chunk(self, worker: int, lines: bytes) -> None:
        """`lines`: RECORD lines, each ending with a newline."""
        self._send(self._inboxes[worker], _CHUNK + lines)

    def result(self, worker: int) -> MappedChunk:
        """The answer to the oldest chunk `worker` has not answered yet (blocks)."""
        try:
            message = self.outboxes[worker].recv_bytes()
        except (EOFError, OSError):
            raise self._died(worker) from None
        if message[:1] == _RESULT:
            return t.cast(MappedChunk, pickle.loads(memoryview(message)[1:]))
        raise TargetKinesisError(f"mapping process {worker + 1} failed: {message[1:].decode(errors='replace')}")

    def _send(self, inbox: Connection, message: bytes) -> None:
        try:
            inbox.send_bytes(message)
        except OSError:
            raise self._died(self._inboxes.index(inbox)) from None

    def _died(self, worker: int) -> TargetKinesisError:
        process = self._processes[worker]
        process.join(timeout=1.0)
        return TargetKinesisError(
            f"mapping process {worker + 1} (pid {process.pid}) exited unexpectedly (exit code {process.exitcode}); "
            "out of memory? set mapping_processes to 0 to map in the main process"
        )

    def close(self) -> None:
        """Hang up: a process waiting for work sees the end of its input, one sending an
        answer nobody will read sees a broken pipe; either way it leaves."""
        for connection in (*self._inboxes, *self.outboxes):
            connection.close()
        for process in self._processes:
            process.join(timeout=5.0)
            if process.exitcode is None:
                process.kill()
                process.join(timeout=5.0)
        self._inboxes.clear()
        self.outboxes.clear()
        self._processes.clear()


__all__ = ["MappedChunk", "MappingPool", "RecordMapper"]
