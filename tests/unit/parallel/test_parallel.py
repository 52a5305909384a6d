"""Mapping processes: the same records, errors and STATE order as mapping in one process.

`RecordMapper` is tested in-process against the one-process path; `ParallelReader` is
driven with real forked mapping processes reading a real pipe, with callbacks that log
everything the target would be told, in order.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from target_kinesis.aws.batch_api import payload_of
from target_kinesis.aws.services import SERVICES
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.batching import Entry
from target_kinesis.delivery.encoding import encoder_for
from target_kinesis.errors import InputError, TargetKinesisError
from target_kinesis.parallel.pool import MappingPool
from target_kinesis.parallel.segments import SEGMENT_RECORDS, ParallelReader, ReadingStopped
from target_kinesis.parallel.worker import RecordMapper
from target_kinesis.records.codec import parse_line
from target_kinesis.records.pipeline import StreamPipeline
from target_kinesis.singer.reader import MessageReader
from tests.support.target_cli import record, schema, state

SETTINGS = Settings.from_config(
    {
        "destinations": [
            {"event": "*", "stream": "k"},
            {"event": "identify", "stream": "f", "service": "firehose"},
        ],
        "events": {"orders": {"type": "track", "event": "Order Completed"}, "users": {"type": "identify"}},
        "hash_fields": ["traits.email"],
    }
)
ORDERS_SCHEMA = schema(
    "orders",
    {"id": {"type": "integer"}, "user_id": {"type": "string"}, "total": {"type": "number"}},
    ["id"],
    bookmark_properties=["id"],
)
USERS_SCHEMA = schema("users", {"id": {"type": "integer"}, "email": {"type": "string"}}, ["id"])


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def decoded(wire: bytes) -> dict[str, Any]:
    event = orjson.loads(payload_of(wire))
    event.pop("sentAt")  # the wall clock, not the record
    return event


def one_process(lines: list[bytes]) -> list[tuple[int, str | None, dict[str, Any]]]:
    """What the one-process path makes of the same lines: the same pipeline, fed record by
    record without the RECORD line (so the validator decides, not the precheck), then encoded."""
    encoder = encoder_for(SETTINGS)
    pipelines: dict[str, StreamPipeline] = {}
    out: list[Any] = []
    for raw in lines:
        message = parse_line(raw)
        stream = message["stream"]
        if message["type"] == "SCHEMA":
            pipelines[stream] = StreamPipeline.from_schema_message(message, SETTINGS.event_spec(stream), validate=True)
            continue
        encoder.encode(pipelines[stream].event(message["record"], message.get("time_extracted")), out)
    return [(d, key, decoded(wire)) for d, key, _, wire, _ in out]


# -- RecordMapper -------------------------------------------------------------------------------


def test_record_mapper_makes_what_one_process_makes() -> None:
    lines = [
        line(ORDERS_SCHEMA),
        line(USERS_SCHEMA),
        line(record("orders", {"id": 1, "user_id": "u1", "total": 12.5}, time_extracted="2026-01-01T00:00:00Z")),
        # Every record carries its time: one without would be stamped with the clock's
        # second, which may tick between this path and the one it is compared with.
        line(record("users", {"id": 7, "email": " Ada@Example.com "}, time_extracted="2026-01-01T00:00:01Z")),
        line(
            record(
                "orders",
                {"id": 2, "user_id": "u2", "total": 1, "_sdc_extracted_at": "2026-01-02T00:00:00Z"},
                time_extracted="2026-01-01T00:00:02Z",
            )
        ),
        b'{"type":"RECORD","stream":"orders","record":{"id":3,"user_id":"u3","total":1234567890.123456789},'
        b'"time_extracted":"2026-01-01T00:00:03Z"}',
    ]
    mapper = RecordMapper(SETTINGS, validate=True)
    for raw in lines[:2]:
        mapper.schema(raw)
    chunk = mapper.map_lines(lines[2:])
    expected = one_process(lines)
    assert [(d, key, decoded(wire)) for d, key, _, wire, _ in chunk.records()] == expected
    assert chunk.stop is None
    assert chunk.ends == [1, 2, 3, 4]
    assert [d for d, *_ in chunk.records()] == [1, 0, 1, 1], "identify -> firehose:f, the rest -> kinesis:k"
    assert chunk.per_stream == {"orders": 3, "users": 1}
    assert (chunk.counts.records_read, chunk.counts.unmapped, chunk.counts.dropped_anonymous) == (4, 0, 0)
    last = chunk.records()[-1]
    assert b'"total":1234567890.123456789' in payload_of(last[3]), "the number, exactly"
    assert expected[1][2]["traits"]["email"] != " Ada@Example.com ", "hash_fields applied"
    for d, key, size, wire, _ in chunk.records():
        service = SERVICES[encoder_for(SETTINGS).destinations[d].service]
        assert size == service.record_size(payload_of(wire), key)
    # Handed over as one run per destination.
    records = chunk.records()
    runs = chunk.runs(1, 4)
    assert [(d, [e.wire for e in run.split()]) for d, run in runs] == [
        (0, [records[1][3]]),
        (1, [records[2][3], records[3][3]]),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        b"not json",
        line(record("nobody", {"id": 1})),  # no SCHEMA for this stream
        line(record("orders", {"id": "one", "user_id": "u", "total": 1})),  # does not match
        line(record("orders", {"user_id": "u", "total": 1})),  # key property missing
        line({"type": "RECORD", "stream": "orders", "record": [1, 2]}),
        line({"type": "RECORD", "stream": "orders"}),
        line(state({"a": 1})),
        b'{"type":"RECORD","stream":"orders","record":{"id":1,"user_id":"u","total":1e400}}',  # not a double
    ],
)
def test_record_mapper_stops_at_any_line_it_cannot_map(bad: bytes) -> None:
    mapper = RecordMapper(SETTINGS, validate=True)
    mapper.schema(line(ORDERS_SCHEMA))
    good = [line(record("orders", {"id": i, "user_id": "u", "total": 1})) for i in range(3)]
    chunk = mapper.map_lines([*good, bad, *good], plain_numbers=True)
    assert chunk.stop == 3
    assert chunk.ends == [1, 2, 3] and len(chunk.records()) == 3
    assert chunk.per_stream == {"orders": 3}


def test_record_mapper_rebuilds_a_stream_only_when_its_schema_changes() -> None:
    mapper = RecordMapper(SETTINGS, validate=True)
    mapper.schema(line(ORDERS_SCHEMA))
    first = mapper.pipeline_of("orders")
    mapper.schema(line(ORDERS_SCHEMA))
    assert mapper.pipeline_of("orders") is first, "an identical SCHEMA changes nothing (as in the SDK)"
    loose = schema("orders", {"id": {"type": "string"}}, ["id"])
    mapper.schema(line(loose))
    chunk = mapper.map_lines([line(record("orders", {"id": "now-a-string", "user_id": "u"}))])
    assert chunk.stop is None and len(chunk.records()) == 1
    mapper.schema(b'{"type": "SCHEMA", "stream": "orders"}')  # broken: left for the main process
    assert mapper.pipeline_of("orders") is not None


def test_record_mapper_without_validation_maps_what_validation_would_refuse() -> None:
    mapper = RecordMapper(SETTINGS, validate=False)
    mapper.schema(line(ORDERS_SCHEMA))
    chunk = mapper.map_lines([line(record("orders", {"id": "not-an-int", "user_id": "u"}))])
    assert chunk.stop is None and len(chunk.records()) == 1


# -- ParallelReader with real mapping processes -----------------------------------------------


class Recorder:
    """Everything the target would be told, in the order it is told."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.state_seen = threading.Event()

    def hand_over(self, runs: list[tuple[int, Entry]], in_order: Any = None) -> None:
        for _, run in runs:  # orders: one record each, to kinesis:k
            self.log.extend(("record", decoded(entry.wire)["properties"]["id"]) for entry in run.split())

    def callbacks(self) -> dict[str, Any]:
        def on_record(message: dict[str, Any]) -> None:
            # The one-process path, as the target runs it: the same checks, the same errors.
            if message["stream"] not in ("orders",):
                raise InputError(f"no schema for '{message['stream']}'")
            rec = message["record"]
            if not isinstance(rec.get("id"), int):
                raise InputError("record does not match its schema")
            self.log.append(("record", rec["id"]))

        def on_state(message: dict[str, Any]) -> None:
            self.log.append(("state", message["value"]))
            self.state_seen.set()

        return {
            "SCHEMA": lambda m: self.log.append(("schema", m["stream"])),
            "RECORD": on_record,
            "STATE": on_state,
            "ACTIVATE_VERSION": lambda m: None,
            "BATCH": lambda m: None,
        }


@pytest.fixture
def pool() -> Iterator[MappingPool]:
    made = MappingPool(2, SETTINGS, validate=True)
    yield made
    made.close()


def run_parallel(pool: MappingPool, data: bytes | list[bytes], pause: float = 0.0) -> tuple[Recorder, MessageReader]:
    """Feed `data` through a pipe (pieces with `pause` between) and read it in parallel."""
    recorder = Recorder()
    reader = MessageReader(start=lambda _: None)
    read_fd, write_fd = os.pipe()
    pieces = [data] if isinstance(data, bytes) else data

    def feed() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out:
                for piece in pieces:
                    out.write(piece)
                    out.flush()
                    if pause:
                        recorder.state_seen.wait(pause)
                        recorder.state_seen.clear()
        except BrokenPipeError:
            pass  # the reader stopped early (the error under test)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    parallel = ParallelReader(
        pool,
        take_counts=lambda chunk: None,
        hand_over=recorder.hand_over,
        after_segment=lambda: None,
    )
    try:
        reader.stats = parallel.run(read_fd, recorder.callbacks(), reader)  # type: ignore[attr-defined]
    finally:
        os.close(read_fd)  # a feeder still writing (the reader stopped early) gets EPIPE
        feeder.join(timeout=30)
    return recorder, reader


def orders(ids: range, *, state_every: int = 0, compact: bool = False) -> list[bytes]:
    out = []
    for i in ids:
        message = record("orders", {"id": i, "user_id": f"u{i % 13}", "total": i / 4})
        out.append(orjson.dumps(message) if compact else line(message))
        if state_every and (i + 1) % state_every == 0:
            out.append(line(state({"at": i + 1})))
    return out


def text(lines: list[bytes]) -> bytes:
    return b"".join(raw + b"\n" for raw in lines)


def write_all(fd: int, data: bytes) -> None:
    """Feed a pipe from a thread; a reader that stopped early closes it (not an error here)."""

    def write() -> None:
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except BrokenPipeError:
            pass

    threading.Thread(target=write, daemon=True).start()


def expected_log(lines: list[bytes]) -> list[tuple[str, Any]]:
    log: list[tuple[str, Any]] = []
    for raw in lines:
        if not raw.strip():
            continue
        message = json.loads(raw)
        if message["type"] == "RECORD":
            log.append(("record", message["record"]["id"]))
        elif message["type"] == "STATE":
            log.append(("state", message["value"]))
        elif message["type"] == "SCHEMA":
            log.append(("schema", message["stream"]))
    return log


def test_records_and_state_keep_input_order(pool: MappingPool) -> None:
    changed = schema("orders", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"])
    lines = [
        line(ORDERS_SCHEMA),
        *orders(range(0, 2500), state_every=7),
        b"",  # blank lines count as lines and change nothing
        *orders(range(2500, 6000), compact=True),  # singer-sdk's layout: the bulk path
        line(state({"at": "bulk"})),
        line(changed),
        *orders(range(6000, 6500), state_every=100),
    ]
    recorder, reader = run_parallel(pool, text(lines))
    assert recorder.log == expected_log(lines)
    assert reader.stats["RECORD"] == 6500 and reader.stats["SCHEMA"] == 2  # type: ignore[attr-defined]


def test_a_line_a_process_cannot_map_is_taken_by_the_main_process_in_its_place(pool: MappingPool) -> None:
    """The bad record is handled by the ordinary path (here: it raises), after what came before."""
    lines = [line(ORDERS_SCHEMA), *orders(range(0, 1500), state_every=10)]
    lines[1201] = line(record("orders", {"id": "not-an-int", "user_id": "u", "total": 1}))
    with pytest.raises(InputError, match="does not match"):
        run_parallel(pool, text(lines))


def test_error_line_number_and_everything_before_it(pool: MappingPool) -> None:
    lines = [line(ORDERS_SCHEMA), *orders(range(0, 3000), state_every=10)]
    bad_at = 2000
    lines.insert(bad_at, b"this is not json")
    recorder = Recorder()
    reader = MessageReader(start=lambda _: None)
    read_fd, write_fd = os.pipe()
    write_all(write_fd, text(lines))
    parallel = ParallelReader(
        pool, take_counts=lambda c: None, hand_over=recorder.hand_over, after_segment=lambda: None
    )
    with pytest.raises(InputError, match=f"input line {bad_at + 1}: not a valid JSON message"):
        parallel.run(read_fd, recorder.callbacks(), reader)
    os.close(read_fd)
    assert recorder.log == expected_log(lines[:bad_at]), "everything before the bad line, nothing after"


def test_record_the_process_skips_then_the_rest_of_its_segment_in_order(pool: MappingPool) -> None:
    """A record the mapping process refuses but the ordinary path accepts: order still holds."""
    lines = [line(ORDERS_SCHEMA), *orders(range(0, 3000), state_every=50, compact=True)]
    # Valid for the test's ordinary path, refused by the mapping process (no such stream there).
    lines[500] = b'{"type":"RECORD","stream":"orders","record":{"id":499,"user_id":"u","total":"x"}}'
    recorder, _ = run_parallel(pool, text(lines))
    assert recorder.log == expected_log(lines)


def test_a_slow_tap_gets_its_state_processed_without_more_input(pool: MappingPool) -> None:
    """Each piece ends with a STATE; the feeder waits for it before writing the next piece."""
    pieces = [text([line(ORDERS_SCHEMA), *orders(range(0, 30)), line(state({"at": 30}))])]
    pieces += [text([*orders(range(n, n + 30)), line(state({"at": n + 30}))]) for n in range(30, 150, 30)]
    started = time.monotonic()
    recorder, _ = run_parallel(pool, pieces, pause=20.0)
    assert time.monotonic() - started < 15, "a STATE waited for input that the feeder held back"
    assert [value for kind, value in recorder.log if kind == "state"] == [{"at": n} for n in range(30, 180, 30)]


def test_input_is_cut_into_segments(pool: MappingPool) -> None:
    lines = [line(ORDERS_SCHEMA), *orders(range(0, SEGMENT_RECORDS * 3 + 1), compact=True)]
    chunks: list[int] = []
    recorder = Recorder()

    def hand_over(runs: list[tuple[int, Entry]], in_order: Any) -> None:
        chunks.append(sum(run.count for _, run in runs))
        recorder.hand_over(runs)

    read_fd, write_fd = os.pipe()
    write_all(write_fd, text(lines))
    ParallelReader(pool, take_counts=lambda c: None, hand_over=hand_over, after_segment=lambda: None).run(
        read_fd, recorder.callbacks(), MessageReader(start=lambda _: None)
    )
    os.close(read_fd)
    assert recorder.log == expected_log(lines)
    assert len(chunks) >= 3, "the input is cut into segments, not held whole"


def test_a_mapping_process_that_dies_is_one_clear_error(pool: MappingPool) -> None:
    victim = pool.processes[0].pid
    os.kill(victim, signal.SIGKILL)
    pool.processes[0].join(timeout=10)
    lines = [line(ORDERS_SCHEMA), *orders(range(0, 3000))]
    with pytest.raises(
        TargetKinesisError, match=r"mapping process 1 \(pid \d+\) exited unexpectedly.*mapping_processes"
    ):
        run_parallel(pool, text(lines))


def test_mapping_processes_ignore_sigterm_and_leave_when_the_pipe_closes() -> None:
    made = MappingPool(2, SETTINGS, validate=True)
    pids = [p.pid for p in made.processes]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)  # a process-group SIGTERM must not end them mid-run
    time.sleep(0.3)
    assert all(p.exitcode is None for p in made.processes)
    started = time.monotonic()
    made.close()
    assert time.monotonic() - started < 3, "each process saw its input end and left at once"
    assert made.processes == ()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# -- through the CLI: one process and mapping processes land the same ---------------------------


def test_a_flood_of_state_lines_is_held_in_bounded_segments(pool: MappingPool) -> None:
    from target_kinesis.parallel.segments import MAX_PENDING_SEGMENTS, SEGMENT_LINES

    lines = [line(ORDERS_SCHEMA), *orders(range(0, 50))]
    lines += [line(state({"at": n})) for n in range(20_000)]
    lines += orders(range(50, 100))
    recorder = Recorder()
    largest = {"pending": 0, "lines": 0}

    class Watched(ParallelReader):
        def _dispatch(self) -> None:
            largest["lines"] = max(largest["lines"], len(self._open.lines))
            super()._dispatch()
            largest["pending"] = max(largest["pending"], len(self._pending))

    read_fd, write_fd = os.pipe()
    write_all(write_fd, text(lines))
    Watched(pool, take_counts=lambda c: None, hand_over=recorder.hand_over, after_segment=lambda: None).run(
        read_fd, recorder.callbacks(), MessageReader(start=lambda _: None)
    )
    os.close(read_fd)
    assert recorder.log == expected_log(lines)
    assert largest["lines"] <= SEGMENT_LINES and largest["pending"] <= MAX_PENDING_SEGMENTS + 1


def test_a_stop_request_finishes_everything_already_read(pool: MappingPool) -> None:
    """What the target does on SIGTERM: the reader stops where every segment is whole, and the
    segments read but not finished are then finished, in order."""
    part = [line(ORDERS_SCHEMA), *orders(range(0, 300), state_every=100)]
    read_fd, write_fd = os.pipe()
    data = text(part)  # and no end of input after it: the reader waits for more
    assert len(data) < 60_000, "one segment, within a pipe's buffer: a stopped process need not read it"
    threading.Thread(target=lambda: os.write(write_fd, data), daemon=True).start()
    recorder = Recorder()
    parallel = ParallelReader(
        pool, take_counts=lambda c: None, hand_over=recorder.hand_over, after_segment=lambda: None
    )
    for process in pool.processes:
        os.kill(process.pid, signal.SIGSTOP)  # answers are late: segments stay pending

    def on_alarm(signum: int, frame: Any) -> None:
        parallel.stop_requested = True  # as TargetKinesis._handle_termination does

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(ReadingStopped):
            parallel.run(read_fd, recorder.callbacks(), MessageReader(start=lambda _: None))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        for process in pool.processes:
            os.kill(process.pid, signal.SIGCONT)
    assert len(recorder.log) < len(expected_log(part)), "records were still with the mapping processes"
    parallel.finish_read()
    assert recorder.log == expected_log(part)
    os.close(write_fd)
    os.close(read_fd)


def test_a_bug_in_a_mapping_process_is_reported_not_hung_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: RecordMapper, lines: list[bytes], *, plain_numbers: bool = False) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(RecordMapper, "map_lines", broken)  # before the fork: the processes inherit it
    made = MappingPool(1, SETTINGS, validate=True)
    try:
        made.send_chunk(0, line(record("orders", {"id": 1})) + b"\n")
        with pytest.raises(TargetKinesisError, match="mapping process 1 failed: RuntimeError: boom"):
            made.result(0)
    finally:
        made.close()
