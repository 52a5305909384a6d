"""One producer per destination stream: paced batches, concurrent calls, partial-failure retries.

The delivery promise lives here, and only here. A batch is owned by one worker from its first
call to its last answer: records AWS acknowledged are counted and never sent again, only the
refused ones are sent again, and the batch is done only when every record is acknowledged, back
in line for capacity, or declared undeliverable (counted, dead-lettered, and named in the run's
error). `flush()` returns only when everything added so far is acknowledged, which is what lets
the target emit STATE.

Records are sent at the stream's capacity (delivery/flow.py, delivery/pacing.py): a record takes
its shard's budget before it is batched. A record refused for throughput anyway goes back in line
on its shard, which slows down; it never uses up max_retries. Only a destination that accepted
nothing for `stall_timeout_seconds` while records waited fails the run for throughput. Other
faults are retried with backoff, at most max_retries times (delivery/retry.py holds the rules).

The roles, each a module, each importing only those listed after it:
- intake: the `Producer` itself: records handed over, batched, handed to workers; `flush`;
  bounded memory (backpressure) and the stall timeout.
- sending: the life of one batch: the call, its answer, retrying only the refused.
- placement: the shard AWS named against the one predicted; rereading the map on a reshard;
  aggregates packed again by the new map.
- failures: what is not delivered: counted, dead-lettered, the run's one-line error.
- shared: the queue, lock and pacing the roles act on together; limits: from settings.
"""

from target_kinesis.delivery.producer.failures import OversizedRecordError
from target_kinesis.delivery.producer.intake import Pacing, Producer
from target_kinesis.delivery.producer.limits import (
    BACKLOG_BATCHES,
    PACKED_CALL_BYTES,
    PER_KEY_BACKLOG_BATCHES,
    ProducerLimits,
)
from target_kinesis.delivery.producer.shared import MapSource

__all__ = [
    "BACKLOG_BATCHES",
    "PACKED_CALL_BYTES",
    "PER_KEY_BACKLOG_BATCHES",
    "MapSource",
    "OversizedRecordError",
    "Pacing",
    "Producer",
    "ProducerLimits",
]
