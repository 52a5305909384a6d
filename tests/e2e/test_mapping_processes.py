"""The CLI with and without mapping processes: the same events land, on one destination and several."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.target_cli import record, schema, state
from tests.unit.parallel.test_parallel import ORDERS_SCHEMA, USERS_SCHEMA

pytestmark = pytest.mark.e2e


SETTINGS_EVENTS = {"orders": {"type": "track", "event": "Order Completed"}, "users": {"type": "identify"}}


@pytest.mark.slow
@pytest.mark.e2e
def test_cli_lands_the_same_with_and_without_mapping_processes(moto_server, tmp_path):
    from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
    from tests.support.servers import boto_client
    from tests.support.target_cli import base_config, run_target

    kinesis = boto_client("kinesis", moto_server.url)
    messages: list[dict[str, Any]] = [ORDERS_SCHEMA, USERS_SCHEMA]
    for i in range(2400):
        messages.append(record("orders", {"id": i, "user_id": f"u{i % 17}", "total": i / 8, "_sdc_sequence": i}))
        if i % 5 == 0:
            messages.append(record("users", {"id": i, "email": f"User{i}@Example.com"}))
        if i % 250 == 0:
            messages.append(state({"at": i}))
        if i == 1200:  # a new schema mid-run: later records are validated against it
            messages.append(schema("orders", {"id": {"type": "integer"}, "total": {"type": "number"}}, ["id"]))
    messages.append(record("orders", {"id": 10**20, "total": 0.1, "user_id": "big"}))  # beyond a double
    messages.append(state({"at": "end"}))
    compact = {"separators": (",", ":")}  # singer-sdk's layout; json.dumps' own for the rest
    text = "".join(json.dumps(m, **compact if i % 3 else {}) + "\n" for i, m in enumerate(messages)).encode()

    landed = {}
    for processes in (0, 2):
        stream = unique_name(f"par{processes}")
        create_kinesis_stream(kinesis, stream, shards=1)
        config = base_config(
            moto_server.url,
            stream_name=stream,
            events=SETTINGS_EVENTS,
            hash_fields=["traits.email"],
            partition_key="messageId",
            mapping_processes=processes,
            # moto's server loses records written to one stream by calls in parallel (its
            # bug; see test_faults.py): one call at a time keeps the comparison ours.
            max_concurrent_requests=1,
        )
        run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
        assert run.returncode == 0, run.stderr[-2000:]
        assert ("Mapping records in 2 processes" in run.stderr) == bool(processes)
        events = []
        for rec in read_kinesis(kinesis, stream):
            event = json.loads(rec.data)
            assert rec.partition_key == event["messageId"]
            event.pop("sentAt")
            event.pop("timestamp")  # these records carry no time: the wall clock's
            events.append(event)
        landed[processes] = (events, run.states, run.summary(f"kinesis:{stream}")["records_sent"])
    assert landed[2] == landed[0]
    events, states, sent = landed[2]
    assert sent == len(events) == 2400 + 480 + 1
    assert states[-1] == {"at": "end"}
    assert any(e.get("properties", {}).get("id") == 10**20 for e in events)


@pytest.mark.slow
def test_cli_lands_the_same_on_several_destinations(moto_server, tmp_path):
    """Records of one segment bound for several streams (identify fanned out to two) reach each
    stream in input order, as without mapping processes; an oversized record among them is
    named by its input line."""
    from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
    from tests.support.servers import boto_client
    from tests.support.target_cli import base_config, run_target

    kinesis = boto_client("kinesis", moto_server.url)
    messages: list[dict[str, Any]] = [ORDERS_SCHEMA, USERS_SCHEMA]
    for i in range(1500):
        messages.append(record("orders", {"id": i, "user_id": f"u{i % 7}", "total": i / 4}))
        if i % 3 == 0:
            messages.append(record("users", {"id": i, "email": f"u{i}@example.com"}))
        if i % 400 == 0:
            messages.append(state({"at": i}))
    messages.append(state({"at": "end"}))
    big_line = len(messages) + 1  # then an oversized identify, then a record that never lands
    messages += [record("users", {"id": -1, "email": "x" * 3000}), record("orders", {"id": -2, "user_id": "z"})]
    text = "".join(json.dumps(m) + "\n" for m in messages).encode()

    landed = {}
    for processes in (0, 2):
        names = {role: unique_name(f"{role}{processes}") for role in ("all", "users", "copy")}
        for name in names.values():
            create_kinesis_stream(kinesis, name, shards=1)
        config = base_config(
            moto_server.url,
            destinations=[
                {"event": "*", "stream": names["all"]},
                {"event": "identify", "stream": names["users"]},
                {"event": "identify", "stream": names["copy"]},
            ],
            events=SETTINGS_EVENTS,
            partition_key="messageId",
            max_record_bytes=2000,
            mapping_processes=processes,
            max_concurrent_requests=1,  # moto's server loses records of parallel calls (see above)
        )
        run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
        assert run.returncode != 0
        assert ("Mapping records in 2 processes" in run.stderr) == bool(processes)
        assert f"input line {big_line}:" in run.error_lines[-1], run.error_lines
        streams = {}
        for role, name in names.items():
            events = [json.loads(r.data) for r in read_kinesis(kinesis, name)]
            for event in events:
                event.pop("sentAt")
                event.pop("timestamp")
            streams[role] = events
        landed[processes] = (streams, run.states)
    assert landed[2] == landed[0]
    streams, states = landed[2]
    assert [e["properties"]["id"] for e in streams["all"]] == list(range(1500))
    assert [e["traits"]["id"] for e in streams["users"]] == list(range(0, 1500, 3))
    assert streams["copy"] == streams["users"]
    assert states[-1] == {"at": "end"}
