"""Failure accounting of one destination: what was not delivered is counted, dead-lettered,
and named in the run's one-line error.

Every record the producer gives up on passes through here, whatever the reason (oversized,
refused past max_retries, a fatal AWS error, a stall, the run stopping on another batch's error),
so that the summary, the dead-letter file and the error line always tell the same count.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from target_kinesis.aws.batch_api import payload_of
from target_kinesis.delivery.batching import Entry
from target_kinesis.delivery.dead_letters import DeadLetters
from target_kinesis.delivery.producer.shared import Shared
from target_kinesis.errors import DeliveryError, InputError

logger = logging.getLogger("target-kinesis")


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


class Failures:
    def __init__(self, shared: Shared, dead_letters: DeadLetters) -> None:
        self._shared = shared
        self._dead_letters = dead_letters
        self._on_oversized = shared.limits.on_oversized_record
        #: The run's error, once any record is known to be undeliverable.
        self.error: DeliveryError | None = None
        #: Events written to the dead letters, by error code (the METRIC lines count them so).
        self._codes: Counter[str] = Counter()
        self._codes_lock = threading.Lock()

    def dead_lettered_by_code(self) -> dict[str, int]:
        """Events dead-lettered so far, by the error code their letters carry."""
        with self._codes_lock:
            return dict(self._codes)

    def _count_code(self, code: str, events: int) -> None:
        if self._dead_letters.enabled and events:
            with self._codes_lock:
                self._codes[code] += events

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    def oversized(self, wire: bytes, key: str | None, size: int, position: int, *, packed: bool = False) -> None:
        """A record above the record limit: refused, dead-lettered or skipped, by on_oversized_record.
        `packed`: `wire` holds the record's bytes as they are (a destination that packs)."""
        shared = self._shared
        destination, service, max_record_bytes = shared.destination, shared.service, shared.max_record_bytes
        where = f"{destination.service} stream '{destination.stream}'"
        if self._on_oversized == "fail":
            raisable = service.raise_record_limit if max_record_bytes < service.limits.max_record_bytes else ""
            raise OversizedRecordError(
                f"record of {size} bytes for {where} is above max_record_bytes ({max_record_bytes}); "
                "set on_oversized_record to skip or dead_letter to continue past it"
                + (f", or: {raisable}" if raisable else ""),
                position,
            )
        if self._on_oversized == "dead_letter":
            self._dead_letters.write(
                reason="oversized",
                service=destination.service,
                stream=destination.stream,
                data=wire if packed else payload_of(wire),
                partition_key=key,
                error_code="RecordTooLarge",
                error_message=f"{size} bytes > max_record_bytes {max_record_bytes}",
            )
            shared.stats.add(dead_lettered=1)
            self._count_code("RecordTooLarge", 1)
        else:
            shared.stats.add(skipped=1)
        logger.warning(
            "Oversized record (%d bytes > %d) for %s %s (on_oversized_record=%s)",
            size,
            max_record_bytes,
            where,
            "written to dead letters" if self._on_oversized == "dead_letter" else "skipped",
            self._on_oversized,
        )

    def abandoned(self, entries: list[Entry]) -> None:
        """Records a batch still held when the run stopped on another batch's error.

        They were not acknowledged: count them and dead-letter them like any other
        undelivered record, so the summary and the dead-letter file tell the whole story.
        (A plain close() after a clean flush leaves nothing behind to abandon.)
        """
        if entries and self.error is not None:
            self._record(entries, "Abandoned", "not sent: the run stopped on an error in another batch")

    def fail(self, entries: list[Entry], code: str, message: str, hint: str, attempts: int = 0) -> None:
        """Declare records undeliverable: dead-letter them, count them, stop the run.
        Not with `cond` held: it takes it to set the error and wake the caller."""
        shared = self._shared
        self._record(entries, code, message, attempts)
        hint = hint.replace("{action}", f"{shared.destination.service}:{shared.service.api_name}")
        detail = f"{code}: {message}" if message else code
        error = DeliveryError(
            f"{shared.destination.service} stream '{shared.destination.stream}'",
            shared.stats.snapshot()["failed"],
            f"after {attempts or 1} attempt(s): {detail} ({hint})",
        )
        with shared.cond:
            if self.error is None:
                self.error = error
            shared.cond.notify_all()
        shared.abandon.set()

    def _record(self, entries: list[Entry], code: str, message: str, attempts: int = 0) -> None:
        shared = self._shared
        entries = [single for entry in entries for single in entry.split()]
        events = 0
        for entry in entries:
            # A packed record's events are dead-lettered one by one, as they were read.
            members = shared.members(entry)
            for data, key in members:
                self._dead_letters.write(
                    reason="undeliverable",
                    service=shared.destination.service,
                    stream=shared.destination.stream,
                    data=data,
                    partition_key=key,
                    error_code=code,
                    error_message=message,
                    attempts=entry.attempts or attempts,
                )
            events += len(members)
        shared.stats.add(failed=events, dead_lettered=events if self._dead_letters.enabled else 0)
        self._count_code(code, events)
        error = self.error
        if error is not None:  # the run's error line counts every record not delivered, as the summary does
            error.records = shared.stats.snapshot()["failed"]
