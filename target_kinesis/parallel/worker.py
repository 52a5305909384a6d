"""Mapping processes: RECORD lines in, finished records out, on another core.

A Python process runs one thread at a time. Parsing, validating, mapping and encoding
a record costs several times what sending it does, so with all of it in the process
that also drives the HTTP calls the target used one core of a machine with two or more.
Here each mapping process owns a `RecordMapper` (the same validation, mapping and
encoding code the main process runs) and answers chunks of RECORD lines with the
encoded records, in the order it received them. Which chunk goes where, and putting the
answers back in input order, is `segments.py`'s; starting them and the pipes, `pool.py`'s.

The processes are forked: they start in milliseconds, share the settings already in
memory, and never touch AWS, the input, the output or the logs. They ignore SIGINT and
SIGTERM (the main process decides how a run stops) and leave as soon as the main process
closes their pipe, or dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import typing as t
from array import array
from multiprocessing.connection import Connection
from typing import NamedTuple

import orjson

from target_kinesis.config.settings import Settings
from target_kinesis.delivery.batching import Column, Entry
from target_kinesis.delivery.encoding import Encoded, columns_of, encoder_for
from target_kinesis.delivery.shards import ShardMap
from target_kinesis.delivery.stats import RunStats
from target_kinesis.errors import InputError
from target_kinesis.parallel.channel import serve
from target_kinesis.records.codec import may_hold_long_numbers, message_problem, parse_line
from target_kinesis.records.pipeline import StreamPipeline

SIGNALS = {signal.SIGINT, signal.SIGTERM}
#: The first byte of each message on the pipes: what the rest of it is.
SCHEMA = b"S"
CHUNK = b"C"
FAILED = b"F"
RESULT = b"R"


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
    #: Of those, per Singer stream, the records no rule routed anywhere (delivery.audit).
    unmapped: dict[str, int]
    #: Events read, unmapped, dropped as anonymous... (added to the writer's run statistics).
    counts: RunStats
    #: Index of the first line not mapped (bad input, or anything unusual): the main
    #: process takes it from there itself, so every error reads as it always did.
    stop: int | None
    #: Why that line was handed back: `bad input: ...` (the main process will say so), or
    #: the unexpected exception, which the main process logs and counts.
    stop_reason: str | None = None

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
        return [
            (index, entry.key, entry.size, entry.wire, entry.shard)
            for index in order
            for entry in [next(singles[index])]
        ]


class RecordMapper:
    """RECORD lines -> encoded records, exactly as the main process would make them.

    The mapping process's whole job, and pure: tested in-process. Each stream's pipeline
    is `records.pipeline.StreamPipeline`, the one the main process uses; it is rebuilt when
    the stream's SCHEMA or key properties change.
    """

    def __init__(self, settings: Settings, *, validate: bool, shard_maps: dict[int, ShardMap] | None = None) -> None:
        self._settings = settings
        self._validate = validate
        #: Each Kinesis destination's shard map, as read at start-up (`columns_of` predicts a
        #: column's shards with them).
        self._shard_maps = dict(shard_maps or {})
        self._encoder = encoder_for(settings)
        self._pipelines: dict[str, StreamPipeline | None] = {}
        self._registered: dict[str, tuple[t.Any, t.Any]] = {}

    def schema(self, line: bytes) -> None:
        """Take a SCHEMA line. A broken one is left for the main process to report: it
        processes the same line in its place, and stops there."""
        try:
            message = parse_line(line)
        except ValueError:
            return
        if message_problem(message) is not None or message.get("type") != "SCHEMA":
            return
        name = message["stream"]
        registration = (message["schema"], message.get("key_properties"))
        if self._registered.get(name) == registration:
            return
        self._registered[name] = registration
        try:
            self._pipelines[name] = StreamPipeline.from_schema_message(
                message, self._settings.event_spec(name), validate=self._validate
            )
        except InputError:
            self._pipelines[name] = None  # its records go back to the main process

    def pipeline_of(self, stream: str) -> StreamPipeline | None:
        """The stream's pipeline; None when its SCHEMA was unusable (or never came)."""
        return self._pipelines.get(stream)

    def map_lines(self, lines: list[bytes], *, plain_numbers: bool = False) -> MappedChunk:
        """Map RECORD lines; `plain_numbers`: none holds a number a double cannot represent,
        so orjson alone parses them (checked once for the whole chunk, not per line)."""
        encoder = self._encoder
        stats = encoder.stats
        before = stats.copy()
        records: list[Encoded] = []
        ends: list[int] = []
        per_stream: dict[str, int] = {}
        unmapped: dict[str, int] = {}
        pipelines = self._pipelines
        stop: int | None = None
        reason: str | None = None
        loads = orjson.loads
        for index, line in enumerate(lines):
            try:
                # (orjson refuses NaN and Infinity; the exact parser hands such a line back too:
                # the main process warns about it with its line number.)
                message = loads(line) if plain_numbers else parse_line(line, _hand_back_non_finite)
                name = message["stream"]
                pipeline = pipelines[name]
                record = message["record"]
                if pipeline is None or message["type"] != "RECORD" or type(record) is not dict:
                    raise _HandBack(message_problem(message) or f"no pipeline for stream '{name}'")
                # orjson alone read `plain_numbers` lines: the record precheck may vouch for theirs.
                event = pipeline.event(record, message.get("time_extracted"), line, json_native=plain_numbers)
                if not encoder.encode(event, records):
                    unmapped[name] = unmapped.get(name, 0) + 1
            except (InputError, _HandBack, ValueError, KeyError, TypeError) as exc:
                stop, reason = index, f"bad input: {exc}"
                break
            except Exception as exc:  # anything else is unexpected: the main process logs it
                stop, reason = index, f"{type(exc).__name__}: {exc}"
                break
            per_stream[name] = per_stream.get(name, 0) + 1
            ends.append(len(records))
        counts = stats.minus(before)
        counts.handed_back = int(stop is not None)
        return MappedChunk(*columns_of(records, self._shard_maps), ends, per_stream, unmapped, counts, stop, reason)


class _HandBack(Exception):
    """A line the main process must process itself (it will report the problem)."""


def _hand_back_non_finite(name: str) -> None:
    raise _HandBack(f"{name} is not a JSON number")


def worker_main(
    inbox: Connection,
    outbox: Connection,
    settings: Settings,
    validate: bool,
    shard_maps: dict[int, ShardMap],
    others: list[Connection],
) -> None:
    """A mapping process: answer chunks in order until the main process hangs up."""
    for number in SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    # The fork copied the main process's ends of every pipe; holding them, this process
    # would never see its input end when the main process closes it.
    for connection in others:
        connection.close()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process's whole life
    logging.disable(logging.CRITICAL)  # the main process logs what matters, once
    mapper = RecordMapper(settings, validate=validate, shard_maps=shard_maps)

    def answer(message: bytes) -> tuple[bytes, bytes] | None:
        kind, body = message[:1], message[1:]
        if kind == SCHEMA:
            mapper.schema(body)
            return None
        lines = body.split(b"\n")
        lines.pop()  # every line ends with "\n"
        mapped = mapper.map_lines(lines, plain_numbers=not may_hold_long_numbers(body))
        return RESULT, pickle.dumps(mapped, protocol=pickle.HIGHEST_PROTOCOL)

    try:
        serve(inbox.fileno(), outbox.fileno(), answer)
    except BaseException as exc:  # a bug of ours: tell the main process what, then leave
        with contextlib.suppress(OSError):
            os.set_blocking(outbox.fileno(), True)
            outbox.send_bytes(FAILED + f"{type(exc).__name__}: {exc}".encode(errors="replace"))
