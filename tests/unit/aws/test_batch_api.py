"""The request forms both services' batch calls share (aws/batch_api.py)."""

from __future__ import annotations

import base64

import orjson
from hypothesis import given
from hypothesis import strategies as st

from target_kinesis.aws.batch_api import data_text, partition_key_of, payload_of
from target_kinesis.aws.firehose import FirehoseService
from target_kinesis.aws.kinesis import KinesisService


@given(st.binary(max_size=4096))
def test_data_text_is_standard_base64(data: bytes) -> None:
    """What AWS decodes: RFC 4648 base64 with padding, no line breaks (pybase64's SIMD
    encoder must write exactly the standard library's text)."""
    assert data_text(data) == base64.b64encode(data)


@given(st.binary(max_size=2048), st.text(min_size=1, max_size=256))
def test_wire_forms_read_back(data: bytes, key: str) -> None:
    kinesis = KinesisService.wire(data, key)
    assert orjson.loads(kinesis) == {"Data": base64.b64encode(data).decode(), "PartitionKey": key}
    assert payload_of(kinesis) == data and partition_key_of(kinesis) == key
    firehose = FirehoseService.wire(data, None)
    assert orjson.loads(firehose) == {"Data": base64.b64encode(data).decode()}
    assert payload_of(firehose) == data and partition_key_of(firehose) is None
