"""One sink per Singer stream: the SDK's unit of bookkeeping, fed by the target's record path.

Records do not go through the SDK's per-record path (`target.py` says why); a sink takes a
record, runs it through its stream's pipeline (`records/pipeline.py`) and hands the event to
the run's writer, shared by every sink because destinations are shared. What the sink needs
of the target is the small `SinkHost` protocol, bound to the sink class (`EventSink.serving`):
the sink never reaches into the target.
"""

from __future__ import annotations

import typing as t

from singer_sdk.sinks import RecordSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_kinesis.errors import MissingKeyProperties
from target_kinesis.events.event import Event
from target_kinesis.records.pipeline import StreamPipeline
from target_kinesis.singer.errors import MissingKeyPropertiesInputError


class SinkHost(t.Protocol):
    """What a sink needs from the run: its stream's pipeline, and where events go."""

    def pipeline(
        self,
        stream: str,
        schema: dict[str, t.Any],
        key_properties: t.Sequence[str] | None,
        *,
        keep_sdc_metadata: bool,
    ) -> StreamPipeline:
        """The pipeline of a stream under this schema; InputError when the schema is unusable."""

    def deliver(self, event: Event) -> bool:
        """Send one event to every destination its route names; False when none does."""

    def tally(self, stream: str) -> list[int]:
        """Where the stream's records are counted: [read, routed nowhere] (delivery.audit)."""


class EventSink(RecordSink):
    #: Set on the class `serving` makes for a run.
    host: t.ClassVar[SinkHost]

    @classmethod
    def serving(cls, host: SinkHost) -> type[EventSink]:
        """This sink class, bound to the run it serves (the SDK creates sinks by class)."""
        return type(cls.__name__, (cls,), {"host": host})

    def __init__(
        self, target: t.Any, stream_name: str, schema: dict[str, t.Any], key_properties: t.Sequence[str] | None
    ) -> None:
        super().__init__(target=target, stream_name=stream_name, schema=schema, key_properties=key_properties)
        self._pipeline = self.host.pipeline(
            stream_name, self.schema, key_properties, keep_sdc_metadata=self.include_sdc_metadata_properties
        )
        self._deliver = self.host.deliver
        self._tally = self.host.tally(stream_name)

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """None: records are validated by the stream's pipeline, in whichever process maps them."""
        return None

    def take(self, record: dict[str, t.Any], time_extracted: t.Any = None, line: bytes | None = None) -> None:
        """Check, map and deliver one record; `line`: the RECORD line it was read from, if any."""
        try:
            event = self._pipeline.event(record, time_extracted, line)
        except MissingKeyProperties as exc:
            raise MissingKeyPropertiesInputError(str(exc)) from None
        self.tally_record_read()
        tally = self._tally
        tally[0] += 1
        if not self._deliver(event):
            tally[1] += 1
        self.record_counter_metric.increment()
        self.tally_record_written()

    def count_mapped(self, count: int) -> None:
        """Records of this stream a mapping process took (the SDK's bookkeeping `take` does for
        one; the target counts them per stream for its audit itself)."""
        self.tally_record_read(count)
        self.record_counter_metric.increment(count)
        self.tally_record_written(count)

    def process_record(self, record: dict[str, t.Any], context: dict[str, t.Any]) -> None:
        """The SDK's abstract hook; only reached if a record took the SDK's own path."""
        self.take(record)
