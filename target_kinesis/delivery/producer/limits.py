"""How one destination's producer may send, from the settings and the service's own limits."""

from __future__ import annotations

from dataclasses import dataclass

from target_kinesis.aws.services import SERVICES
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings

#: Records buffered beyond the calls in flight (behind keys in flight with ordering per_key, or
#: waiting for capacity), in batches' worth, before add_all blocks.
PER_KEY_BACKLOG_BATCHES = 4
BACKLOG_BATCHES = 4
#: Bytes of a call of KPL aggregates unless max_batch_bytes is set: about 20 aggregates, 2,000
#: small events, four times a call of 500 plain records. Calls of 5 MiB only hold more in memory
#: while in flight (wire form, request body, HTTP buffers): measured on the null endpoint, peak
#: memory 173 MiB with 5 MiB calls against 127 MiB without aggregation.
PACKED_CALL_BYTES = 1024 * 1024


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
    #: Throttling fails the run only when the destination accepted nothing for this long.
    stall_timeout_seconds: float = 300.0
    #: none, kpl or lines (delivery/aggregation.py), and a packed record's bytes and events at most.
    aggregation: str = "none"
    aggregation_max_bytes: int = 0
    aggregation_max_records: int | None = None

    @classmethod
    def for_destination(cls, settings: Settings, destination: Destination, stream_max: int | None) -> ProducerLimits:
        """`stream_max`: the stream's own record limit, when the preflight describe read it."""
        max_record, max_batch = settings.size_limits(destination, stream_max)
        service = SERVICES[destination.service]
        # A packed record is a record: its data and partition key (at most 256 characters of up
        # to 4 bytes) within the record limit.
        packed_max = min(
            settings.aggregation_max_bytes or service.aggregation_max_bytes,
            max_record - 4 * service.limits.max_partition_key_chars,
        )
        aggregation = settings.aggregation_for(destination)
        if aggregation == "kpl" and settings.max_batch_bytes is None:
            max_batch = max(min(max_batch, PACKED_CALL_BYTES), max_record)
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
            stall_timeout_seconds=settings.stall_timeout_seconds,
            aggregation=aggregation,
            aggregation_max_bytes=packed_max,
            aggregation_max_records=settings.aggregation_max_records or service.aggregation_max_records,
        )
