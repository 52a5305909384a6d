"""Dead letters: records we chose not to send or could not deliver, kept for replay.

One JSON object per line: the event as it would have been written, where it was going,
and why it is here. An operator replays them with any producer, or fixes and re-runs.

`dead_letter_path` picks one of two sinks behind the one `DeadLetters` interface the
producers use: a local file (0600; each line reaches the OS as it is written), or JSON-lines
objects under an ``s3://bucket/prefix/`` URL, which outlive an ephemeral container. The lines
are the same either way. S3 is reached only through a `PutObject` callable (`aws/s3.py`
with the run's own clients), so this module never talks to AWS itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from target_kinesis.aws.errors import AwsCallFailed, AwsError
from target_kinesis.aws.s3 import S3Location, put_failure
from target_kinesis.config.settings import dead_letter_location
from target_kinesis.delivery.retry import Action, backoff_delays, classify
from target_kinesis.errors import ConfigError, TargetKinesisError

logger = logging.getLogger(__name__)

#: Owner read and write, nobody else.
FILE_MODE = 0o600
#: An S3 object is written every this many lines or bytes, and with whatever is left at each
#: checkpoint and at the end of the run: few objects for a burst of failures, bounded memory.
OBJECT_MAX_LINES = 10_000
OBJECT_MAX_BYTES = 8 * 1024 * 1024

#: Stores one object: (bucket, key, body). Raises AwsCallFailed when AWS refuses.
PutObject = Callable[[str, str, bytes], None]


#: What precedes the event in a dead-letter line: `write` puts it last, so the event's bytes are
#: the rest of the line (a `"` in an earlier value is escaped, so this cannot occur before it).
_RECORD_FIELD = b',"record":'


@dataclass(frozen=True)
class StoredLetter:
    """One dead letter read back: where its event was going, why it is here, and the event's
    bytes exactly as they were to be sent (without the trailing newline a Firehose record gets)."""

    service: str
    stream: str
    data: bytes
    partition_key: str | None
    error_code: str | None
    reason: str | None


def read_letters(body: bytes, where: str) -> list[StoredLetter]:
    """The dead letters of a file or object `where` names (JSON lines, as `DeadLetters` writes).

    An event that was JSON is taken byte for byte from the line (`write` embeds it as it was
    sent, last), so a redrive sends the bytes that failed, messageId and all; an event that was
    not JSON was stored as a JSON string, and is its text again. A line that is not a dead
    letter raises DeadLetterError naming `where` and the line number (nothing of its content).
    """
    letters = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # (the standard library, not orjson: an event may hold integers beyond 64 bits)
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise DeadLetterError(f"{where} line {number} is not JSON: not a dead letter") from None
        if not isinstance(row, dict) or "record" not in row:
            raise DeadLetterError(f"{where} line {number} is not a dead letter (no 'record')")
        service, stream, record = row.get("service"), row.get("stream"), row["record"]
        if not isinstance(service, str) or not isinstance(stream, str):
            raise DeadLetterError(f"{where} line {number} is not a dead letter (no 'service' and 'stream')")
        key, code, reason = row.get("partition_key"), row.get("error_code"), row.get("reason")
        data = record.encode("utf-8") if isinstance(record, str) else _raw_record(line, record)
        letters.append(
            StoredLetter(
                service,
                stream,
                data,
                key if isinstance(key, str) else None,
                code if isinstance(code, str) else None,
                reason if isinstance(reason, str) else None,
            )
        )
    return letters


def _raw_record(line: bytes, record: Any) -> bytes:
    """The event's bytes as embedded in `line`; re-serialized only when the line was written
    some other way (its `record` not last), where the exact bytes are lost anyway."""
    start = line.find(_RECORD_FIELD)
    if start >= 0:
        raw = line[start + len(_RECORD_FIELD) :].rstrip()
        if raw.endswith(b"}"):
            raw = raw[:-1]
            try:
                if json.loads(raw) == record:
                    return raw
            except (ValueError, RecursionError):
                pass
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class DeadLetterError(TargetKinesisError):
    """Dead letters could not be stored. The run stops non-zero, and no STATE covers them, so a
    re-run reads those records again instead of losing them silently."""


def object_key(location: S3Location, started: dt.datetime, run_id: str, sequence: int) -> str:
    """``prefix/2026-11-30T04-12-00Z-1a2b3c4d-000001.jsonl``.

    The run's start (UTC) comes first, so keys sort by run and, within a run, in the order
    written; the run id keeps two runs that start in the same second from overwriting each
    other's objects.
    """
    stamp = started.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    return f"{location.prefix}{stamp}-{run_id}-{sequence:06d}.jsonl"


class LineBatch:
    """Lines waiting for their object: full at `max_lines` lines or `max_bytes` bytes."""

    def __init__(self, max_lines: int = OBJECT_MAX_LINES, max_bytes: int = OBJECT_MAX_BYTES) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._lines: list[bytes] = []
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, line: bytes) -> bool:
        """Keep `line`; True when the batch is full and should be written now."""
        self._lines.append(line)
        self._bytes += len(line)
        return len(self._lines) >= self.max_lines or self._bytes >= self.max_bytes

    def take(self) -> bytes:
        """Every line kept, in order, as one body; the batch is empty again."""
        body = b"".join(self._lines)
        self._lines = []
        self._bytes = 0
        return body


@dataclass(frozen=True)
class PutRetries:
    """How a refused PutObject is tried again: the run's own max_retries and backoff, and the
    same error table as the producers (`delivery/retry.py`): a throttle or a 5xx is retried, a
    missing bucket or a denied write is not."""

    max_retries: int = 3
    base_delay: float = 0.1
    max_delay: float = 10.0


class _Sink(Protocol):
    """Where formatted lines go. `flush` makes every line appended so far durable."""

    def append(self, line: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """A local JSON-lines file, readable by its owner only; each line is flushed as written."""

    def __init__(self, path: str) -> None:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Dead letters are whole events (emails, ids): readable by their owner only,
            # from the moment the file exists, and tightened if it existed before.
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            if os.fstat(descriptor).st_mode & 0o077:
                os.fchmod(descriptor, FILE_MODE)
            self._file: Any = os.fdopen(descriptor, "ab")
        except OSError as exc:
            raise ConfigError(f"setting 'dead_letter_path': cannot open {path}: {exc.strerror}") from exc

    def append(self, line: bytes) -> None:
        self._file.write(line)
        self._file.flush()

    def flush(self) -> None:
        """Nothing to do: every line was handed to the OS when it was appended."""

    def close(self) -> None:
        self._file.close()


class S3Sink:
    """JSON-lines objects under an S3 prefix, so dead letters survive the container they were
    found in.

    Lines are kept in memory and written as an object when `batch` is full, and with whatever
    is left on `flush` (each checkpoint, before its STATE is printed) and `close` (the end of
    the run, a failure exit included). `append` never raises: it runs in producer threads
    that are themselves failing records. A write that fails is kept and raised, as one line
    naming the bucket, key and AWS error code, by the next `flush` or `close`; from then on
    nothing more is written (the run is stopping, and no STATE will cover those records).
    """

    def __init__(
        self,
        location: S3Location,
        put_object: PutObject,
        *,
        started: dt.datetime,
        run_id: str | None = None,
        batch: LineBatch | None = None,
        retries: PutRetries = PutRetries(),
        refresh_credentials: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.location = location
        self._put = put_object
        self._started = started
        self._run_id = run_id or uuid.uuid4().hex[:8]
        self._batch = batch if batch is not None else LineBatch()
        self._retries = retries
        self._refresh = refresh_credentials
        self._sleep = sleep
        self._sequence = 0
        self._failure: tuple[AwsError, str] | None = None
        self._unwritten = 0
        #: Keys written so far, in order (for the log and for tests).
        self.written: list[str] = []

    def append(self, line: bytes) -> None:
        if self._failure is not None:
            self._unwritten += 1
            return
        if self._batch.add(line):
            self._write_batch()

    def flush(self) -> None:
        if self._failure is None and len(self._batch):
            self._write_batch()
        if self._failure is not None:
            error, key = self._failure
            raise DeadLetterError(
                f"dead letters: {put_failure(error, self.location, key)}; {self._unwritten} dead letter(s) not written"
            )

    def close(self) -> None:
        self.flush()

    def _write_batch(self) -> None:
        lines = len(self._batch)
        body = self._batch.take()
        self._sequence += 1
        key = object_key(self.location, self._started, self._run_id, self._sequence)
        error = self._put_with_retries(key, body)
        if error is not None:
            self._failure = (error, key)
            self._unwritten += lines
            return
        self.written.append(key)
        logger.info("Dead letters: %d written to %s", lines, self.location.object_url(key))

    def _put_with_retries(self, key: str, body: bytes) -> AwsError | None:
        """None once the object is stored; else the last AWS error, after the retries it allows."""
        delays = backoff_delays(self._retries.base_delay, self._retries.max_delay)
        attempt = 0
        while True:
            try:
                self._put(self.location.bucket, key, body)
                return None
            except AwsCallFailed as exc:
                error = exc.error
            rule = classify(error.code, error.status, error.message)
            if rule.action is Action.FATAL or attempt >= self._retries.max_retries:
                return error
            if rule.action is Action.REFRESH and self._refresh is not None:
                try:
                    self._refresh()
                except TargetKinesisError:
                    return error  # the role cannot be assumed again: the expired token stands
            attempt += 1
            self._sleep(next(delays))


class DeadLetters:
    """Where the producers put the records they will not deliver: one interface, two sinks.

    `path` is `dead_letter_path`: None (dead letters off), a file path, or an ``s3://`` URL,
    whose objects `put_object` stores with the run's own credentials, role and endpoint.
    `write` is called from any thread; `flush` (at each checkpoint) and `close` raise
    DeadLetterError when dead letters could not be stored.
    """

    def __init__(
        self,
        path: str | None,
        *,
        put_object: PutObject | None = None,
        retries: PutRetries = PutRetries(),
        refresh_credentials: Callable[[], bool] | None = None,
        started: dt.datetime | None = None,
    ) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._sink: _Sink | None = None
        location = dead_letter_location(path)
        if location is not None:
            if put_object is None:
                raise ValueError("an s3:// dead_letter_path needs put_object (aws/s3.py with the run's clients)")
            self._sink = S3Sink(
                location,
                put_object,
                started=started or dt.datetime.now(dt.timezone.utc),
                retries=retries,
                refresh_credentials=refresh_credentials,
            )
        elif path:
            self._sink = FileSink(path)

    @property
    def enabled(self) -> bool:
        return self._sink is not None

    def write(
        self,
        *,
        reason: str,
        service: str,
        stream: str,
        data: bytes,
        partition_key: str | None,
        error_code: str | None = None,
        error_message: str | None = None,
        attempts: int = 0,
    ) -> None:
        if self._sink is None:
            return
        payload = data.rstrip(b"\n")
        record: Any = (
            orjson.Fragment(payload) if payload.startswith((b"{", b"[")) else payload.decode("utf-8", "replace")
        )
        line = orjson.dumps(
            {
                "reason": reason,
                "service": service,
                "stream": stream,
                "error_code": error_code,
                "error_message": error_message,
                "attempts": attempts,
                "partition_key": partition_key,
                "at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "record": record,
            }
        )
        with self._lock:
            if self._sink is not None:
                self._sink.append(line + b"\n")

    def flush(self) -> None:
        """Make every dead letter written so far durable (an S3 object for what is buffered):
        called before a STATE is printed, so a STATE never covers a dead letter still in memory."""
        with self._lock:
            if self._sink is not None:
                self._sink.flush()

    def close(self) -> None:
        """Flush and let go of the sink; only the first call can raise."""
        with self._lock:
            sink, self._sink = self._sink, None
            if sink is not None:
                sink.close()
