"""One producer per destination stream: batches, concurrent calls, partial-failure retries.

The delivery promise lives here. A batch is owned by one worker from its first call to
its last answer: records AWS acknowledged are counted and never sent again, only the
refused ones are retried (with backoff), and the batch is done only when every record
is acknowledged or declared undeliverable. `flush()` returns only when everything added
so far is acknowledged, which is what lets the target emit STATE.

Memory is bounded: at most `max_concurrent_requests` batches are in flight and at most
one more is buffered (per_key: a bounded backlog); `add_all()` blocks beyond that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from target_kinesis.aws.batch_api import JsonCaller, Service, payload_of
from target_kinesis.aws.errors import error_code
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.batching import Batcher, Entry, FifoBatcher, KeyedBatcher
from target_kinesis.delivery.dead_letters import DeadLetters
from target_kinesis.delivery.encoding import Encoded
from target_kinesis.delivery.retry import Action, backoff_delays, classify
from target_kinesis.delivery.stats import DestinationStats
from target_kinesis.errors import DeliveryError, InputError

logger = logging.getLogger("target-kinesis")


_STATIC_EXPIRED = "static credentials expired: supply fresh ones or use role_arn"
#: ordering per_key: records buffered behind keys in flight, in batches' worth, before add_all blocks.
PER_KEY_BACKLOG_BATCHES = 4
#: At most one line per destination this often about retries and calls waiting for an answer.
STALL_LOG_SECONDS = 10.0


class OversizedRecordError(InputError):
    """A record above max_record_bytes with on_oversized_record=fail.

    `position`: the record's place among those handed over in the call that refused it,
    so that the caller can name its input line.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position

    def at(self, position: int) -> OversizedRecordError:
        """The same refusal, placed among a larger hand-over."""
        return OversizedRecordError(str(self), position)


@dataclass(frozen=True)
class ProducerLimits:
    """How one destination's producer may send: call sizes, concurrency, retries, and what
    to do with a record above the record limit."""

    max_batch_records: int
    max_batch_bytes: int
    max_record_bytes: int
    max_concurrent_requests: int
    max_retries: int
    retry_base_delay: float
    retry_max_delay: float
    on_oversized_record: str
    per_key_order: bool

    @classmethod
    def for_destination(cls, settings: Settings, destination: Destination, stream_max: int | None) -> ProducerLimits:
        """`stream_max`: the stream's own record limit, when the preflight describe read it."""
        max_record, max_batch = settings.size_limits(destination, stream_max)
        return cls(
            max_batch_records=settings.max_batch_records,
            max_batch_bytes=max_batch,
            max_record_bytes=max_record,
            max_concurrent_requests=settings.max_concurrent_requests,
            max_retries=settings.max_retries,
            retry_base_delay=settings.retry_base_delay,
            retry_max_delay=settings.retry_max_delay,
            on_oversized_record=settings.on_oversized_record,
            per_key_order=settings.ordering == "per_key",
        )


class Producer:
    def __init__(
        self,
        destination: Destination,
        service: Service,
        aws: JsonCaller,
        limits: ProducerLimits,
        *,
        dead_letters: DeadLetters,
        refresh_credentials: Callable[[], bool],
        stats: DestinationStats | None = None,
    ) -> None:
        self.destination = destination
        self.service = service
        self.aws = aws
        self.stats = stats or DestinationStats()
        self.max_record_bytes = min(limits.max_record_bytes, limits.max_batch_bytes)
        self._max_in_flight = limits.max_concurrent_requests
        self._max_retries = limits.max_retries
        self._retry_base_delay = limits.retry_base_delay
        self._retry_max_delay = limits.retry_max_delay
        self._on_oversized = limits.on_oversized_record
        self._dead_letters = dead_letters
        self._refresh_credentials = refresh_credentials
        self._batcher: Batcher
        records, size = limits.max_batch_records, limits.max_batch_bytes
        if limits.per_key_order and service.uses_partition_key:
            self._batcher = KeyedBatcher(records, size, high_water=records * PER_KEY_BACKLOG_BATCHES)
        else:
            self._batcher = FifoBatcher(records, size)
        self._cond = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._error: DeliveryError | None = None
        self._abandon = threading.Event()
        self._seq = 0
        # What a stalled destination is doing, for the lines that make a stall visible.
        self._watch = threading.Lock()
        self._calls_started: dict[int, float] = {}
        self._last_retry: str | None = None
        self._last_stall_log = 0.0
        self._executor = ThreadPoolExecutor(
            max_workers=limits.max_concurrent_requests, thread_name_prefix=f"put-{destination.stream}"
        )

    # -- main thread -----------------------------------------------------------------

    def add_all(self, records: Iterable[Encoded]) -> None:
        """Queue encoded records in order (their destination index is not looked at); blocks
        while the stream is as busy as the limits allow.

        One lock for the lot: records arrive from mapping processes a thousand at a time.
        """
        max_size = self.max_record_bytes
        batcher = self._batcher
        first_seq = self._seq
        with self._cond:
            self._raise_if_failed()
            try:
                for position, (_, key, size, wire) in enumerate(records):
                    if size > max_size:
                        self._oversized(wire, key, size, position)
                        continue
                    self._seq += 1
                    batcher.add(Entry(wire, key, size, self._seq))
                    if batcher.needs_pump():  # most records only join the open batch
                        self._pump(force=False)
            finally:
                self.stats.records_queued += self._seq - first_seq

    def add_run(self, run: Entry) -> None:
        """Queue a run of records (from a mapping process's answer, see `batching.Column`).

        Records are handled one by one only when they must be: per-key ordering gives
        each record its own turn, and an oversized one is refused alone, as by `add_all`.
        """
        if run.column is None or isinstance(self._batcher, KeyedBatcher) or _largest(run) > self.max_record_bytes:
            self.add_all([(0, entry.key, entry.size, entry.wire) for entry in run.split()])
            return
        batcher = self._batcher
        with self._cond:
            self._raise_if_failed()
            self._seq += run.count
            run.seq = self._seq
            self.stats.records_queued += run.count
            batcher.add(run)
            if batcher.needs_pump():
                self._pump(force=False)

    def refuses(self, run: Entry) -> bool:
        """Whether adding `run` would stop at an oversized record (on_oversized_record=fail)."""
        return self._on_oversized == "fail" and _largest(run) > self.max_record_bytes

    def flush(self) -> None:
        """Send everything buffered and wait until AWS acknowledged all of it.

        Raises DeliveryError as soon as any record is known to be undeliverable.
        """
        with self._cond:
            while True:
                self._pump(force=True)
                if self._in_flight == 0 and self._batcher.pending == 0:
                    break
                self._cond.wait(timeout=1.0)
                self._log_stall()
            self._raise_if_failed()

    def close(self, *, wait: bool = True) -> None:
        """Stop: abandon retries still waiting; let calls on the wire finish, unless `wait` is
        False (stopping at once: a call that never answers must not hold the exit)."""
        self._abandon.set()
        self._executor.shutdown(wait=wait, cancel_futures=True)

    @property
    def waiting(self) -> int:
        """Records queued and not yet in a call: what memory holds beyond the calls in flight."""
        with self._cond:
            return self._batcher.pending

    def unacknowledged(self) -> int:
        """Records handed over and not (yet) acknowledged, failed or dropped."""
        s = self.stats.snapshot()
        return s["records_queued"] - s["records_sent"] - s["failed"]

    def _log_stall(self) -> None:
        """While flush waits: one line per STALL_LOG_SECONDS on calls unanswered and retries,
        so that an endpoint that stopped answering is visible while it stalls."""
        now = time.monotonic()
        with self._watch:
            if now - self._last_stall_log < STALL_LOG_SECONDS or not self._calls_started:
                return
            oldest = now - min(self._calls_started.values())
            calls = len(self._calls_started)
            last_retry = self._last_retry
            if oldest < STALL_LOG_SECONDS and last_retry is None:
                return
            self._last_stall_log = now
        logger.warning(
            "%s: waiting for %d call(s), the oldest unanswered for %.0f s; %d record(s) retried so far%s",
            self.destination,
            calls,
            oldest,
            self.stats.snapshot()["retried_records"],
            f" (last: {last_retry})" if last_retry else "",
        )

    def _retrying(self, records: int, code: str, message: str, attempt: int, *, throttle: bool) -> None:
        """Count a retry, and log it at most once per STALL_LOG_SECONDS per destination."""
        self.stats.add(retried_records=records, throttles=int(throttle))
        detail = f"{code}: {message}" if message else code
        now = time.monotonic()
        with self._watch:
            self._last_retry = detail
            if now - self._last_stall_log < STALL_LOG_SECONDS:
                return
            self._last_stall_log = now
        logger.warning(
            "%s: retrying %d record(s), attempt %d of %d: %s",
            self.destination,
            records,
            attempt + 1,
            self._max_retries + 1,
            detail,
        )

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _pump(self, *, force: bool) -> None:
        """Hand ready batches to workers while slots are free (lock held).

        When the backlog is full (a whole batch waits, or per_key: too many records
        wait behind keys already in flight), wait for a call to finish: that is the
        backpressure that keeps memory flat whatever the input size.
        """
        while True:
            self._raise_if_failed()
            if self._in_flight < self._max_in_flight:
                batch = self._batcher.pop_ready(force=force)
                if batch is not None:
                    self._in_flight += 1
                    self._executor.submit(self._run, batch)
                    continue
            if self._in_flight > 0 and (
                self._batcher.backlog_full() or (force and self._in_flight >= self._max_in_flight)
            ):
                self._cond.wait(timeout=1.0)
                self._log_stall()
                continue
            return

    def _oversized(self, wire: bytes, key: str | None, size: int, position: int) -> None:
        where = f"{self.destination.service} stream '{self.destination.stream}'"
        if self._on_oversized == "fail":
            raise OversizedRecordError(
                f"record of {size} bytes for {where} is above max_record_bytes ({self.max_record_bytes}); "
                "set on_oversized_record to skip or dead_letter to continue past it",
                position,
            )
        if self._on_oversized == "dead_letter":
            self._dead_letters.write(
                reason="oversized",
                service=self.destination.service,
                stream=self.destination.stream,
                data=payload_of(wire),
                partition_key=key,
                error_code="RecordTooLarge",
                error_message=f"{size} bytes > max_record_bytes {self.max_record_bytes}",
            )
            self.stats.add(dead_lettered=1)
        else:
            self.stats.add(skipped=1)
        logger.warning(
            "Oversized record (%d bytes > %d) for %s %s (on_oversized_record=%s)",
            size,
            self.max_record_bytes,
            where,
            "written to dead letters" if self._on_oversized == "dead_letter" else "skipped",
            self._on_oversized,
        )

    # -- worker threads --------------------------------------------------------------

    def _run(self, batch: list[Entry]) -> None:
        try:
            self._deliver(batch)
        except Exception as exc:  # a bug of ours must still stop the run, not hang it
            self._fail(batch, type(exc).__name__, str(exc), "unexpected error in target-kinesis")
        finally:
            with self._cond:
                self._in_flight -= 1
                self._batcher.complete(batch)
                self._cond.notify_all()

    def _deliver(self, batch: list[Entry]) -> None:
        """Send until every record is acknowledged; retry only what AWS refused."""
        remaining = batch
        delays = backoff_delays(self._retry_base_delay, self._retry_max_delay)
        attempt = 0
        while True:
            if self._abandon.is_set():
                self._abandoned(remaining)
                return
            attempt += 1
            records = 0
            for entry in remaining:
                entry.attempts = attempt
                records += entry.count
            token = id(remaining)
            with self._watch:
                self._calls_started[token] = time.monotonic()
            try:
                results = self.service.put(self.aws, self.destination.stream, [e.wire for e in remaining], records)
            except Exception as exc:
                with self._watch:
                    self._calls_started.pop(token, None)
                error = error_code(exc)
                code, message, status = error.code, error.message, error.status
                self.stats.add(calls=1)
                rule = classify(code, status)
                if rule.action is Action.REFRESH and not self._refresh_credentials():
                    self._fail(remaining, code, message, _STATIC_EXPIRED, attempt)
                    return
                if rule.action is Action.FATAL or attempt > self._max_retries:
                    self._fail(remaining, code, message, rule.hint or "retries exhausted", attempt)
                    return
                self._retrying(records, code, message, attempt, throttle=rule.throttle)
                if self._abandon.wait(next(delays)):
                    self._abandoned(remaining)
                    return
                continue

            with self._watch:
                self._calls_started.pop(token, None)
            self.stats.add(calls=1)
            if not any(results):  # the usual answer: everything acknowledged
                self.stats.add(records_sent=records, bytes_sent=sum(e.size for e in remaining))
                return
            if records != len(remaining):  # runs: each record's own fate from here on
                remaining = [single for entry in remaining for single in entry.split()]
            refused = [(entry, error) for entry, error in zip(remaining, results, strict=True) if error is not None]
            if len(refused) < len(remaining):
                refused_ids = {id(entry) for entry, _ in refused}
                accepted = [entry for entry in remaining if id(entry) not in refused_ids]
                self.stats.add(records_sent=len(accepted), bytes_sent=sum(e.size for e in accepted))
            rules = [(entry, error, classify(error.code)) for entry, error in refused]
            fatal = next(((e, r) for _, e, r in rules if r.action is Action.FATAL), None)
            if fatal is not None or attempt > self._max_retries:
                refusal, rule = fatal or (rules[0][1], rules[0][2])
                self._fail(
                    [entry for entry, _ in refused],
                    refusal.code,
                    refusal.message,
                    rule.hint or "retries exhausted",
                    attempt,
                )
                return
            if any(r.action is Action.REFRESH for _, _, r in rules) and not self._refresh_credentials():
                expired = next(e for _, e, r in rules if r.action is Action.REFRESH)
                self._fail([entry for entry, _ in refused], expired.code, expired.message, _STATIC_EXPIRED, attempt)
                return
            first = refused[0][1]
            throttled = any(r.throttle for _, _, r in rules)
            self._retrying(len(refused), first.code, first.message, attempt, throttle=throttled)
            remaining = [entry for entry, _ in refused]
            if self._abandon.wait(next(delays)):
                self._abandoned(remaining)
                return

    def _abandoned(self, entries: list[Entry]) -> None:
        """Records this batch still held when the run stopped on another batch's error.

        They were not acknowledged: count them and dead-letter them like any other
        undelivered record, so the summary and the dead-letter file tell the whole story.
        (A plain close() after a clean flush leaves nothing behind to abandon.)
        """
        if entries and self._error is not None:
            self._record_failure(entries, "Abandoned", "not sent: the run stopped on an error in another batch")

    def _record_failure(self, entries: list[Entry], code: str, message: str, attempts: int = 0) -> None:
        entries = [single for entry in entries for single in entry.split()]
        for entry in entries:
            self._dead_letters.write(
                reason="undeliverable",
                service=self.destination.service,
                stream=self.destination.stream,
                data=payload_of(entry.wire),
                partition_key=entry.key,
                error_code=code,
                error_message=message,
                attempts=entry.attempts or attempts,
            )
        self.stats.add(failed=len(entries), dead_lettered=len(entries) if self._dead_letters.enabled else 0)
        error = self._error
        if error is not None:  # the run's error line counts every record not delivered, as the summary does
            error.records = self.stats.snapshot()["failed"]

    def _fail(self, entries: list[Entry], code: str, message: str, hint: str, attempts: int = 0) -> None:
        """Declare records undeliverable: dead-letter them, count them, stop the run."""
        self._record_failure(entries, code, message, attempts)
        hint = hint.replace("{action}", f"{self.destination.service}:{self.service.api_name}")
        detail = f"{code}: {message}" if message else code
        error = DeliveryError(
            f"{self.destination.service} stream '{self.destination.stream}'",
            self.stats.snapshot()["failed"],
            f"after {attempts or 1} attempt(s): {detail} ({hint})",
        )
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()
        self._abandon.set()


def _largest(run: Entry) -> int:
    """The size of a run's largest record."""
    column = run.column
    return run.size if column is None else max(column.sizes[run.first : run.first + run.count])
