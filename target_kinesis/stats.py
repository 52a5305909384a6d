"""Counters behind the progress lines and the run summary (thread-safe)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class DestinationStats:
    """What happened to the records of one destination stream."""

    records_sent: int = 0
    bytes_sent: int = 0
    calls: int = 0
    retried_records: int = 0
    throttles: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    failed: int = 0
    records_queued: int = 0
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
    """Counts that belong to no destination: events no rule matched, anonymous events dropped."""

    records_read: int = 0
    unmapped: int = 0
    dropped_anonymous: int = 0
