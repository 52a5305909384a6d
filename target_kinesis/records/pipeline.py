"""One Singer stream's way from a record to an event, built in one place for every process.

A RECORD goes through the same steps wherever it is mapped (the main process, a mapping
process, a test): the Singer SDK's `_sdc_*` metadata fields are dropped, the record is
validated against its stream's schema (unless the precheck already vouched for its line),
its key properties are checked, and it is mapped to an event. A stream's pipeline is
rebuilt when its SCHEMA or key properties change, the rule by which the SDK gives a stream
a new sink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from target_kinesis.config.events import EventSpec
from target_kinesis.errors import MissingKeyProperties
from target_kinesis.events.event import Event
from target_kinesis.events.mapper import EventMapper
from target_kinesis.records.precheck import build_prechecks
from target_kinesis.records.validation import LazyValidator, build_validator, validate_record

#: The `_sdc_*` fields the Singer SDK removes from every record before a sink sees it
#: (`Sink._remove_sdc_metadata_from_record`; a test holds this list against the SDK's).
SDC_METADATA_FIELDS = frozenset(
    {
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_deleted_at",
        "_sdc_sequence",
        "_sdc_table_version",
        "_sdc_sync_started_at",
    }
)


def replication_key_of(schema_message: Mapping[str, Any]) -> str | None:
    """The field a SCHEMA message names as its bookmark (the first, when several)."""
    bookmarks = schema_message.get("bookmark_properties")
    if isinstance(bookmarks, str):
        bookmarks = [bookmarks]
    return bookmarks[0] if bookmarks else None


def strip_sdc_metadata(record: dict[str, Any]) -> None:
    """Remove the SDK's `_sdc_*` metadata fields; most records have none (one C-level check)."""
    if not SDC_METADATA_FIELDS.isdisjoint(record):
        for name in SDC_METADATA_FIELDS:
            record.pop(name, None)


class StreamPipeline:
    """Checks and maps the records of one stream under one schema."""

    def __init__(
        self,
        stream: str,
        schema: dict[str, Any],
        spec: EventSpec,
        *,
        key_properties: Sequence[str] | None = None,
        replication_key: str | None = None,
        validate: bool = True,
        keep_sdc_metadata: bool = False,
    ) -> None:
        """InputError when the schema cannot validate anything (with `validate`).
        `keep_sdc_metadata`: the SDK added `_sdc_*` fields on purpose (add_record_metadata)."""
        self.stream = stream
        self.keep_sdc_metadata = keep_sdc_metadata
        self.key_properties = tuple(key_properties or ())
        self.validator: LazyValidator | None = build_validator(schema, stream) if validate else None
        #: Say "certainly valid" of a RECORD line, or of the record orjson read from it (`check`'s
        #: `json_native`), so the validator can be skipped (precheck.py).
        self.precheck: Callable[[bytes], bool] | None = None
        self.record_precheck: Callable[[dict[str, Any]], bool] | None = None
        if validate:
            self.precheck, self.record_precheck = build_prechecks(schema, SDC_METADATA_FIELDS)
        self.mapper = EventMapper(
            stream, spec, key_properties=self.key_properties, schema=schema, replication_key=replication_key
        )

    @classmethod
    def from_schema_message(cls, message: Mapping[str, Any], spec: EventSpec, *, validate: bool) -> StreamPipeline:
        return cls(
            message["stream"],
            message["schema"],
            spec,
            key_properties=message.get("key_properties"),
            replication_key=replication_key_of(message),
            validate=validate,
        )

    def check(self, record: dict[str, Any], line: bytes | None = None, *, json_native: bool = False) -> None:
        """What a record goes through before it is mapped, in the SDK's order: drop its
        `_sdc_*` metadata, validate it, check its key properties. `line`: the RECORD line
        the record was read from (None when there is none: a BATCH file, a stream map's
        output), for the precheck. `json_native`: orjson read the record (JSON values alone),
        so the record precheck may vouch for it instead."""
        if not self.keep_sdc_metadata:
            strip_sdc_metadata(record)
        if self.validator is not None:
            if json_native and self.record_precheck is not None:
                vouched = self.record_precheck(record)
            else:
                vouched = line is not None and self.precheck is not None and self.precheck(line)
            if not vouched:
                validate_record(self.validator, record, self.stream)
        for key in self.key_properties:
            if key not in record:
                missing = ", ".join(k for k in self.key_properties if k not in record)
                raise MissingKeyProperties(f"stream '{self.stream}': record is missing key properties {missing}")

    def event(
        self,
        record: dict[str, Any],
        time_extracted: Any = None,
        line: bytes | None = None,
        *,
        json_native: bool = False,
    ) -> Event:
        """The record checked and mapped; InputError names what is wrong with it."""
        self.check(record, line, json_native=json_native)
        return self.mapper.map(record, time_extracted)


__all__ = ["SDC_METADATA_FIELDS", "StreamPipeline", "replication_key_of", "strip_sdc_metadata"]
