"""Counters behind the progress lines and the run summary (thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, fields, replace


@dataclass
class DestinationStats:
    """What happened to the records of one destination stream."""

    #: Events acknowledged (with `aggregation`, several share one AWS record).
    records_sent: int = 0
    #: AWS records acknowledged, and the units AWS bills them in (Kinesis: 25 KB PUT payload
    #: units; Firehose: 5 KB), each record rounded up.
    aws_records: int = 0
    billed_units: int = 0
    bytes_sent: int = 0
    calls: int = 0
    #: Calls AWS (or the way to it) refused whole, and the time all calls took (µs), for the
    #: METRIC lines (singer/metrics.py).
    calls_failed: int = 0
    call_micros: int = 0
    retried_records: int = 0
    throttles: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    failed: int = 0
    records_queued: int = 0
    #: Events of KPL aggregates a reshard put on another shard, sent again (at least once).
    resent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


@dataclass
class RunStats:
    """Counts that belong to no destination: events no rule matched, anonymous events dropped,
    and events sent with a stand-in for a value the configuration named but the record lacked."""

    records_read: int = 0
    unmapped: int = 0
    dropped_anonymous: int = 0
    #: partition_key found nothing (missing or empty): the messageId was used.
    key_fallbacks: int = 0
    #: timestamp_field held something that is not a date-time: time_extracted or now was used.
    timestamp_fallbacks: int = 0
    #: A userId or anonymousId field held an object or a list, which is no id: the event went
    #: without it (anonymous, unless it had the other).
    ids_not_text: int = 0
    #: NaN, Infinity or -Infinity in a record (JSON has no such numbers): written as null.
    non_finite_numbers: int = 0
    #: RECORD lines a mapping process handed back to the main process (bad input, or unexpected).
    handed_back: int = 0
    #: Per privacy path (`hash_fields:traits.email`): events in which it found a value to remove
    #: or hash; and per event type, the events the privacy switches were applied to. Only counted
    #: with privacy paths configured (for the warning about a path that matched nothing).
    privacy_matched: Counter[str] = field(default_factory=Counter)
    privacy_types: Counter[str] = field(default_factory=Counter)

    def add(self, other: RunStats) -> None:
        """Add another run's counts (a mapping process's, for one segment)."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.privacy_matched or other.privacy_types:
            self.privacy_matched.update(other.privacy_matched)
            self.privacy_types.update(other.privacy_types)

    def copy(self) -> RunStats:
        """A copy that later counting does not change."""
        return replace(self, privacy_matched=Counter(self.privacy_matched), privacy_types=Counter(self.privacy_types))

    def minus(self, earlier: RunStats) -> RunStats:
        """The counts added since `earlier` (a `copy`)."""
        return RunStats(
            **{name: getattr(self, name) - getattr(earlier, name) for name in _COUNTS},
            privacy_matched=self.privacy_matched - earlier.privacy_matched,
            privacy_types=self.privacy_types - earlier.privacy_types,
        )


#: The plain counters of RunStats (the summary's fields, in its order).
_COUNTS = tuple(f.name for f in fields(RunStats) if f.type == "int")
