"""The life of one batch: sent, answered, only the refused sent again, until it is done.

A batch is owned by one worker thread from its first call to its last answer. Records AWS
acknowledged are counted and never sent again. Records refused for throughput go back in line
on their shard (they never use up max_retries). Other refusals are retried with backoff, at most
max_retries times, then declared undeliverable (producer/failures.py), as a fatal error is at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from target_kinesis.aws.batch_api import JsonCaller
from target_kinesis.aws.errors import error_code
from target_kinesis.delivery.batching import Entry
from target_kinesis.delivery.producer.failures import Failures
from target_kinesis.delivery.producer.placement import Placement
from target_kinesis.delivery.producer.shared import Shared
from target_kinesis.delivery.retry import Action, backoff_delays, classify

logger = logging.getLogger("target-kinesis")

_STATIC_EXPIRED = "static credentials expired: supply fresh ones or use role_arn"
#: At most one line per destination this often about retries and calls waiting for an answer.
STALL_LOG_SECONDS = 10.0


class BatchSender:
    def __init__(
        self,
        shared: Shared,
        aws: JsonCaller,
        failures: Failures,
        placement: Placement,
        refresh_credentials: Callable[[], bool],
    ) -> None:
        self._shared = shared
        self._aws = aws
        self._failures = failures
        self._placement = placement
        self._refresh_credentials = refresh_credentials
        limits = shared.limits
        self._max_retries = limits.max_retries
        self._retry_base_delay = limits.retry_base_delay
        self._retry_max_delay = limits.retry_max_delay
        #: When AWS last accepted a record of this destination (stall_timeout_seconds).
        self.last_accept = shared.clock()
        # What a stalled destination is doing, for the lines that make a stall visible.
        self._watch = threading.Lock()
        self._calls_started: dict[int, float] = {}
        self._last_retry: str | None = None
        self._last_stall_log = 0.0

    def deliver(self, batch: list[Entry]) -> None:
        """Send until every record is acknowledged; retry only what AWS refused."""
        shared, failures = self._shared, self._failures
        service, stream, abandon, clock = shared.service, shared.destination.stream, shared.abandon, shared.clock
        remaining = batch
        delays = backoff_delays(self._retry_base_delay, self._retry_max_delay)
        attempt = 0
        while True:
            if abandon.is_set():
                failures.abandoned(remaining)
                return
            attempt += 1
            records = 0
            for entry in remaining:
                entry.attempts = attempt
                records += entry.count
            token = id(remaining)
            sent_at = clock()
            with self._watch:
                self._calls_started[token] = time.monotonic()
            try:
                answer = service.put(self._aws, stream, [e.wire for e in remaining], records)
            except Exception as exc:
                with self._watch:
                    self._calls_started.pop(token, None)
                error = error_code(exc)
                code, message, status = error.code, error.message, error.status
                shared.stats.add(calls=1, calls_failed=1, call_micros=int((clock() - sent_at) * 1e6))
                rule = classify(code, status, message)
                if self._for_capacity(code, rule.throttle):
                    self._back_in_line(remaining, code, offered=None, sent_at=sent_at)
                    return
                if rule.action is Action.REFRESH and not self._renewed(remaining, code, message, attempt):
                    return
                if rule.action is Action.FATAL or attempt > self._max_retries:
                    failures.fail(remaining, code, message, rule.hint or "retries exhausted", attempt)
                    return
                self._retrying(records, code, message, attempt, throttle=rule.throttle)
                if abandon.wait(next(delays)):
                    failures.abandoned(remaining)
                    return
                continue

            with self._watch:
                self._calls_started.pop(token, None)
            shared.stats.add(calls=1, call_micros=int((clock() - sent_at) * 1e6))
            results = answer.errors
            if answer.first_placed is not None:
                self._placement.check(remaining, *answer.first_placed)
                if shared.aggregator is not None:
                    self._placement.check_packed(remaining, answer)
            if not any(results):  # the usual answer: everything acknowledged
                self._accepted(remaining)
                return
            if records != len(remaining):  # runs: each record's own fate from here on
                remaining = [single for entry in remaining for single in entry.split()]
            refused = [(entry, error) for entry, error in zip(remaining, results, strict=True) if error is not None]
            if len(refused) < len(remaining):
                refused_ids = {id(entry) for entry, _ in refused}
                self._accepted([entry for entry in remaining if id(entry) not in refused_ids])
            rules = [(entry, error, classify(error.code, None, error.message)) for entry, error in refused]
            capacity = [(e, err) for e, err, r in rules if self._for_capacity(err.code, r.throttle)]
            if capacity:
                self._back_in_line([e for e, _ in capacity], capacity[0][1].code, offered=remaining, sent_at=sent_at)
                rules = [(e, err, r) for e, err, r in rules if not self._for_capacity(err.code, r.throttle)]
                refused = [(e, err) for e, err, _ in rules]
                if not refused:
                    return
            fatal = next(((e, r) for _, e, r in rules if r.action is Action.FATAL), None)
            if fatal is not None or attempt > self._max_retries:
                refusal, rule = fatal or (rules[0][1], rules[0][2])
                failures.fail(
                    [entry for entry, _ in refused],
                    refusal.code,
                    refusal.message,
                    rule.hint or "retries exhausted",
                    attempt,
                )
                return
            expired = next((e for _, e, r in rules if r.action is Action.REFRESH), None)
            if expired is not None and not self._renewed(
                [entry for entry, _ in refused], expired.code, expired.message, attempt
            ):
                return
            first = refused[0][1]
            throttled = any(r.throttle for _, _, r in rules)
            self._retrying(len(refused), first.code, first.message, attempt, throttle=throttled)
            remaining = [entry for entry, _ in refused]
            if abandon.wait(next(delays)):
                failures.abandoned(remaining)
                return

    def log_stall(self) -> None:
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
            self._shared.destination,
            calls,
            oldest,
            self._shared.stats.snapshot()["retried_records"],
            f" (last: {last_retry})" if last_retry else "",
        )

    def _retrying(self, records: int, code: str, message: str, attempt: int, *, throttle: bool) -> None:
        """Count a retry, and log it at most once per STALL_LOG_SECONDS per destination."""
        self._shared.stats.add(retried_records=records, throttles=int(throttle))
        detail = f"{code}: {message}" if message else code
        now = time.monotonic()
        with self._watch:
            self._last_retry = detail
            if now - self._last_stall_log < STALL_LOG_SECONDS:
                return
            self._last_stall_log = now
        logger.warning(
            "%s: retrying %d record(s), attempt %d of %d: %s",
            self._shared.destination,
            records,
            attempt + 1,
            self._max_retries + 1,
            detail,
        )

    def _renewed(self, entries: list[Entry], code: str, message: str, attempt: int) -> bool:
        """After ExpiredToken: refresh the credentials; False, the records failed, when they
        cannot be (static keys, or STS refusing to renew the role's session)."""
        try:
            if self._refresh_credentials():
                return True
        except Exception as exc:  # STS's refusal (aws.errors.RoleRefused), as any AWS error
            error = error_code(exc)
            self._failures.fail(entries, error.code, error.message, classify(error.code, error.status).hint, attempt)
            return False
        self._failures.fail(entries, code, message, _STATIC_EXPIRED, attempt)
        return False

    def _for_capacity(self, code: str, throttle: bool) -> bool:
        """A refusal for throughput (sent again when there is room) rather than a fault."""
        return throttle or code in self._shared.service.capacity_codes

    def _accepted(self, entries: list[Entry]) -> None:
        """AWS acknowledged these: count events, AWS records and what AWS bills for them."""
        shared = self._shared
        records = events = size = units = 0
        unit = shared.service.billing_unit_bytes
        for entry in entries:
            records += entry.count
            events += entry.events
            size += entry.size
            if entry.count == 1:
                units += -(-entry.size // unit)
            else:
                column = entry.column
                assert column is not None
                units += sum(-(-s // unit) for s in column.sizes[entry.first : entry.first + entry.count])
        shared.stats.add(records_sent=events, aws_records=records, bytes_sent=size, billed_units=units)
        with shared.cond:
            self.last_accept = shared.clock()
            shared.flow.accepted(records, size)

    def _back_in_line(self, entries: list[Entry], code: str, *, offered: list[Entry] | None, sent_at: float) -> None:
        """Records refused for throughput: back in line, first on their shard. `offered`: every
        record of the call (single records), when only some were refused: each shard refused
        slows down by the share it accepted; a whole call refused slows the whole stream down."""
        shared = self._shared
        singles = [single for entry in entries for single in entry.split()]
        for single in singles:
            single.attempts = 0  # a refusal for throughput is not an attempt that counts
        by_shard: dict[int, tuple[int, int]] | None = None
        share: float | None = None  # a whole call refused says nothing of how far over it was
        if offered is not None:
            counts: dict[int, list[int]] = {}
            for record in offered:
                counts.setdefault(record.shard, [0, 0])[0] += 1
            for single in singles:
                counts.setdefault(single.shard, [0, 0])[1] += 1
            share = 1 - len(singles) / max(len(offered), 1)
            per_record = code in shared.service.capacity_codes and shared.maps is not None
            by_shard = {shard: (n, r) for shard, (n, r) in counts.items()} if per_record else None
        with shared.cond:
            shared.flow.refused(code, len(singles), by_shard, share, sent_at)
            shard_map = shared.shard_map()
            if shard_map is not None:  # placed by the map as it is now (it may have been read again)
                singles = self._placement.replaced(singles, shard_map.version)
                for single in singles:
                    if not single.packed:
                        single.shard = shard_map.index_of(single.key or "")
            shared.batcher.requeue(singles)
            shared.stats.add(throttles=1)
            shared.cond.notify_all()
