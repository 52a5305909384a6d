"""Facts about the Singer SDK that code below the Singer layer relies on without importing it."""

from __future__ import annotations

import typing as t

from singer_sdk.singerlib.encoding.base import SingerMessageType
from singer_sdk.sinks import RecordSink

from target_kinesis.records.codec import MESSAGE_TYPES
from target_kinesis.records.pipeline import SDC_METADATA_FIELDS


class _PopRecorder(dict):
    def __init__(self) -> None:
        super().__init__()
        self.popped: set[str] = set()

    def pop(self, key: t.Any, default: t.Any = None) -> t.Any:
        self.popped.add(key)
        return default


def test_the_sdc_fields_are_those_the_sdk_removes_from_records() -> None:
    recorder = _PopRecorder()
    RecordSink._remove_sdc_metadata_from_record(t.cast(RecordSink, None), recorder)
    assert frozenset(recorder.popped) == SDC_METADATA_FIELDS


def test_the_message_types_are_the_sdks() -> None:
    assert frozenset(m.value for m in SingerMessageType) == MESSAGE_TYPES
