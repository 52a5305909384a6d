"""The SDK's record features through the real CLI: stream maps, flattening, record metadata.

Records then take the SDK's mapper before our pipeline (in the main process only); what lands
must show each feature's effect.
"""

from __future__ import annotations

import json

import pytest

from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import boto_client
from tests.support.target_cli import base_config, record, run_target, schema, singer_lines

pytestmark = pytest.mark.e2e

USERS = schema(
    "users",
    {
        "id": {"type": "integer"},
        "email": {"type": "string"},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    ["id"],
)
ADA = record("users", {"id": 1, "email": "ada@example.com", "address": {"city": "London"}})


def _events(moto_server, tmp_path, **settings) -> tuple[list[dict], str]:
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("sdk")
    create_kinesis_stream(kinesis, stream)
    run = run_target(
        base_config(moto_server.url, stream_name=stream, **settings),
        singer_lines(USERS, ADA),
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return [json.loads(r.data) for r in read_kinesis(kinesis, stream)], run.stderr


def test_a_stream_map_renames_the_stream_and_drops_a_field(moto_server, tmp_path):
    events, stderr = _events(moto_server, tmp_path, stream_maps={"users": {"__alias__": "people", "email": "__NULL__"}})
    assert [(e["event"], sorted(e["properties"])) for e in events] == [("people", ["address", "id"])]
    assert "Mapping records in" not in stderr, "the SDK's mapper runs in the main process"


def test_flattening_flattens_nested_fields(moto_server, tmp_path):
    events, _ = _events(moto_server, tmp_path, flattening_enabled=True, flattening_max_depth=1)
    assert [e["properties"] for e in events] == [{"id": 1, "email": "ada@example.com", "address__city": "London"}]


def test_record_metadata_reaches_the_event(moto_server, tmp_path):
    events, _ = _events(moto_server, tmp_path, add_record_metadata=True)
    (properties,) = [e["properties"] for e in events]
    assert {"_sdc_received_at", "_sdc_sequence", "_sdc_extracted_at"} <= set(properties)
