"""The Singer side of a stream: validate a record, map it, hand the event to the writer."""

from __future__ import annotations

import typing as t

from singer_sdk.sinks import RecordSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_kinesis.errors import MissingKeyPropertiesInputError
from target_kinesis.mapping import EventMapper
from target_kinesis.validation import build_validator, validate_record

if t.TYPE_CHECKING:
    from target_kinesis.target import TargetKinesis


def replication_key_of(schema_message: dict) -> str | None:
    """The field a SCHEMA message names as its bookmark (the first, when several)."""
    bookmarks = schema_message.get("bookmark_properties")
    if isinstance(bookmarks, str):
        bookmarks = [bookmarks]
    return bookmarks[0] if bookmarks else None


class _PopRecorder(dict):
    def __init__(self) -> None:
        super().__init__()
        self.popped: set[str] = set()

    def pop(self, key: t.Any, default: t.Any = None) -> t.Any:
        self.popped.add(key)
        return default


def _sdc_metadata_fields() -> frozenset[str]:
    """The `_sdc_*` fields the SDK removes from every record, asked of the SDK itself."""
    recorder = _PopRecorder()
    RecordSink._remove_sdc_metadata_from_record(t.cast(RecordSink, None), recorder)
    return frozenset(recorder.popped)


SDC_METADATA_FIELDS = _sdc_metadata_fields()


def strip_sdc_metadata(record: dict) -> None:
    """Remove the SDK's `_sdc_*` metadata fields; most records have none (one C-level check)."""
    if not SDC_METADATA_FIELDS.isdisjoint(record):
        for name in SDC_METADATA_FIELDS:
            record.pop(name, None)


def check_key_properties(record: dict, key_properties: t.Sequence[str], stream: str) -> None:
    for key in key_properties:
        if key not in record:
            missing = ", ".join(k for k in key_properties if k not in record)
            raise MissingKeyPropertiesInputError(f"stream '{stream}': record is missing key properties {missing}")


def check_record(
    record: dict,
    validator: BaseJSONSchemaValidator | None,
    key_properties: t.Sequence[str],
    stream: str,
    *,
    known_valid: bool = False,
) -> None:
    """What a record goes through before it is mapped, in the SDK's order: drop its `_sdc_*`
    metadata, validate it, check its key properties. In `EventSink.take` and the mapping
    processes alike. `known_valid`: a precheck of its line (precheck.py) already showed
    the record matches its schema."""
    strip_sdc_metadata(record)
    if not known_valid:
        validate_record(validator, record, stream)
    check_key_properties(record, key_properties, stream)


class EventSink(RecordSink):
    """One per Singer stream; all sinks share the target's writer and producers."""

    def __init__(
        self, target: TargetKinesis, stream_name: str, schema: dict, key_properties: t.Sequence[str] | None
    ) -> None:
        super().__init__(target=target, stream_name=stream_name, schema=schema, key_properties=key_properties)
        self._target = target
        self._mapper = EventMapper(
            stream_name,
            target.settings.event_spec(stream_name),
            key_properties=key_properties or (),
            schema=schema,
            replication_key=target.replication_key(stream_name),
        )

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        if not self.validate_schema:
            return None
        return build_validator(self.schema, self.stream_name)

    def _validate_and_parse(self, record: dict) -> dict:
        """Validate without the SDK's traceback logging and without its datetime parsing.

        Date-time values stay the ISO-8601 strings the tap wrote: parsing them into
        datetime objects only to print them again costs time and can change them.
        """
        validate_record(self._validator, record, self.stream_name)
        return record

    def _singer_validate_message(self, record: dict) -> None:
        check_key_properties(record, self._key_properties, self.stream_name)

    def take(self, record: dict) -> None:
        """The whole per-record path when the SDK's mapper has nothing to do.

        Same steps as the SDK's `_process_record_message` for an identity stream map:
        drop SDK metadata fields, validate, check key properties, count, process.
        """
        check_record(record, self._validator, self._key_properties, self.stream_name)
        self.tally_record_read()
        self.process_record(record, {})
        self.record_counter_metric.increment()
        self.tally_record_written()

    def process_record(self, record: dict, context: dict) -> None:
        event = self._mapper.map(record, self._target.current_time_extracted)
        self._target.writer.write(event)
