"""The first hour's mistakes, through the real CLI: each is loud, none passes with exit 0 in silence.

A routing config that names no stream the tap sends, a privacy path that matches nothing, numbers
JSON has no words for, a profile's region, an id that is an object: each ends in a one-line error
or one warning, with an exit code that tells the truth and no STATE past records that went nowhere.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import TARGET, base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

PROCESSES = pytest.mark.parametrize("processes", [0, 2], ids=["one-process", "mapping-processes"])

# What tap-postgres sends: streams named <schema>-<table>.
USERS = schema(
    "public-users", {"id": {"type": "integer"}, "user_id": {"type": "string"}, "email": {"type": "string"}}, ["id"]
)
ORDERS = schema("public-orders", {"id": {"type": "integer"}, "total": {"type": ["number", "null"]}}, ["id"])


def _users(n: int) -> list[dict]:
    return [record("public-users", {"id": i, "user_id": f"u{i}", "email": f"U{i}@Example.com"}) for i in range(n)]


def _orders(n: int) -> list[dict]:
    return [record("public-orders", {"id": i, "total": i + 0.5}) for i in range(n)]


def _stream(server) -> tuple[object, str]:
    kinesis = boto_client("kinesis", server.url)
    name = unique_name("hour")
    create_kinesis_stream(kinesis, name)
    return kinesis, name


def _warnings(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if "WARNING" in line]


# -- 1. a config that routes nothing it read --------------------------------------------------------


@PROCESSES
def test_events_keyed_by_table_name_route_nothing_and_fail_without_state(moto_server, tmp_path, processes):
    kinesis, stream = _stream(moto_server)
    config = base_config(
        moto_server.url,
        destinations=[{"event": "identify", "stream": stream}],
        events={"users": {"type": "identify", "user_id_field": "user_id"}},
        mapping_processes=processes,
        state_flush_seconds=0,  # a checkpoint at every STATE: none may be printed all the same
    )
    text = singer_lines(USERS, *_users(300), state({"bookmark": 1}), ORDERS, *_orders(200), state({"bookmark": 2}))
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    assert run.states == [], "no bookmark past records that went nowhere"
    errors = run.error_lines
    assert len(errors) == 1, run.stderr[-3000:]
    assert "events key 'users' matched no stream (closest: public-users)" in errors[0]
    assert "streams read: public-users, public-orders" in errors[0]
    assert "none of the 500 record(s) read was routed anywhere" in errors[0]
    assert "Traceback" not in run.stderr
    assert read_kinesis(kinesis, stream) == []
    assert "unmapped=500" in run.stderr, "the counts stay in the summary"


def test_streams_routed_nowhere_on_purpose_succeed_with_a_warning(moto_server, tmp_path):
    """Every events key names a declared stream: an incremental run that carries only other
    streams' records is a success, as before, with one warning about the stream that went nowhere."""
    kinesis, stream = _stream(moto_server)
    config = base_config(
        moto_server.url,
        destinations=[{"event": "identify", "stream": stream}],
        events={"public-users": {"type": "identify", "user_id_field": "user_id"}},
    )
    text = singer_lines(USERS, ORDERS, *_orders(5), state({"bookmark": 3}))
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states == [{"bookmark": 3}]
    warnings = _warnings(run)
    assert len(warnings) == 1, warnings
    assert "stream 'public-orders': all 5 record(s) were routed nowhere" in warnings[0]
    assert "rules: 'identify'" in warnings[0]
    assert read_kinesis(kinesis, stream) == []


def test_a_key_matching_no_stream_is_warned_about_when_others_are_routed(moto_server, tmp_path):
    kinesis, stream = _stream(moto_server)
    config = base_config(
        moto_server.url,
        destinations=[{"event": "public-orders", "stream": stream}, {"event": "identify", "stream": stream}],
        events={"users": {"type": "identify", "user_id_field": "user_id"}},
    )
    text = singer_lines(USERS, *_users(4), ORDERS, *_orders(6), state({"bookmark": 4}))
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states == [{"bookmark": 4}]
    assert len(read_kinesis(kinesis, stream)) == 6
    warnings = _warnings(run)
    assert len(warnings) == 2, warnings
    assert "events key 'users' matched no stream read" in warnings[0] and "closest: public-users" in warnings[0]
    assert "stream 'public-users': all 4 record(s) were routed nowhere" in warnings[1]
    assert "track events named 'public-users'" in warnings[1] and "closest: users" in warnings[1]


# -- 2. privacy paths that match nothing -------------------------------------------------------------


@pytest.mark.parametrize("setting", ["hash_fields", "exclude_fields"])
def test_a_privacy_path_into_no_part_of_an_event_stops_before_reading(moto_server, tmp_path, setting):
    kinesis, stream = _stream(moto_server)
    config = base_config(
        moto_server.url, stream_name=stream, events={"public-users": {"type": "identify"}}, **{setting: ["email"]}
    )
    run = run_target(config, singer_lines(USERS, *_users(3)), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    assert len(run.error_lines) == 1, run.stderr[-3000:]
    assert f"setting '{setting}': 'email' matches nothing" in run.error_lines[0]
    assert "paths that would match: traits.email, properties.email, context.traits.email" in run.error_lines[0]
    assert read_kinesis(kinesis, stream) == [], "nothing was sent, in clear or otherwise"


def test_a_valid_privacy_path_that_matched_nothing_is_warned_about_once(moto_server, tmp_path):
    kinesis, stream = _stream(moto_server)
    config = base_config(
        moto_server.url,
        stream_name=stream,
        events={"public-users": {"type": "identify"}},
        hash_fields=["traits.mail", "traits.email"],
        exclude_fields=["properties.card"],  # applies to track events: none were sent, nothing to say
    )
    run = run_target(config, singer_lines(USERS, *_users(3)), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = _warnings(run)
    assert len(warnings) == 1, warnings
    assert "hash_fields path 'traits.mail' matched nothing in the 3 identify event(s) sent" in warnings[0]
    emails = [json.loads(r.data)["traits"]["email"] for r in read_kinesis(kinesis, stream)]
    assert len(emails) == 3 and all(len(email) == 64 and "@" not in email for email in emails)


# -- 3. numbers JSON has no words for ----------------------------------------------------------------


@PROCESSES
def test_nan_and_infinity_are_written_as_null_named_and_counted(moto_server, tmp_path, processes):
    kinesis, stream = _stream(moto_server)
    config = base_config(moto_server.url, stream_name=stream, mapping_processes=processes)
    lines = [
        json.dumps(ORDERS),
        json.dumps(record("public-orders", {"id": 1, "total": 2.5})),
        # Python's json.dumps writes these; a chunk with a long number takes the exact parser.
        json.dumps(record("public-orders", {"id": 2, "total": float("nan")})),
        json.dumps(record("public-orders", {"id": 3, "total": 12345678901234567890.125})),
        json.dumps(record("public-orders", {"id": 4, "total": float("inf")})),
        json.dumps(record("public-orders", {"id": 5, "total": float("nan")})),
    ]
    run = run_target(config, "\n".join(lines) + "\n", endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    totals = {
        e["properties"]["id"]: e["properties"]["total"]
        for e in (json.loads(r.data) for r in read_kinesis(kinesis, stream))
    }
    assert totals == {1: 2.5, 2: None, 3: 12345678901234567890.125, 4: None, 5: None}
    warnings = _warnings(run)
    assert len(warnings) == 1, warnings  # one per stream and field
    assert "input line 3: stream 'public-orders' field 'total' holds NaN, which JSON has no number for" in warnings[0]
    assert "non_finite_numbers=3" in run.stderr


def test_integers_of_thousands_of_digits_are_kept_and_longer_ones_refused_in_our_words(moto_server, tmp_path):
    kinesis, stream = _stream(moto_server)
    config = base_config(moto_server.url, stream_name=stream)
    digits = "9" * 5000
    text = (
        singer_lines(schema("big", {"id": {"type": "integer"}, "n": {"type": "integer"}}, ["id"]))
        + f'{{"type": "RECORD", "stream": "big", "record": {{"id": 1, "n": {digits}}}}}\n'
        + f'{{"type": "RECORD", "stream": "big", "record": {{"id": 2, "n": {"9" * 100_001}}}}}\n'
    )
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    assert len(run.error_lines) == 1
    assert "input line 3: not a valid JSON message (an integer has more than 100,000 digits" in run.error_lines[0]
    assert "set_int_max_str_digits" not in run.stderr
    landed = read_kinesis(kinesis, stream)
    assert len(landed) == 1 and f'"n":{digits}' in landed[0].data.decode()


# -- 4. the region a profile names ----------------------------------------------------------------


def test_the_profiles_region_is_used_when_nothing_else_names_one(moto_server, tmp_path):
    """A stream in eu-west-2 only: signed for us-east-1, the preflight would not find it."""
    kinesis = boto_client("kinesis", moto_server.url, region_name="eu-west-2")
    stream = unique_name("region")
    create_kinesis_stream(kinesis, stream)
    config_file = tmp_path / "aws-config"
    config_file.write_text(
        "[profile analytics]\nregion = eu-west-2\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    env = {k: v for k, v in aws_env(moto_server.url).items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    env["AWS_CONFIG_FILE"] = str(config_file)
    config = {"endpoint_url": moto_server.url, "stream_name": stream, "aws_profile": "analytics"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [TARGET, "--config", str(path)],
        input=singer_lines(USERS, *_users(3)).encode(),
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr[-3000:]
    assert "AWS region eu-west-2 (from profile 'analytics' of the AWS config file)" in stderr
    assert len(read_kinesis(kinesis, stream)) == 3


# -- 5. ids that are objects -----------------------------------------------------------------------


@PROCESSES
def test_a_user_id_that_is_an_object_is_warned_about_once_and_counted(moto_server, tmp_path, processes):
    kinesis, stream = _stream(moto_server)
    config = base_config(moto_server.url, stream_name=stream, mapping_processes=processes)
    profiles = schema("profiles", {"id": {"type": "integer"}, "userId": {}}, ["id"])
    text = singer_lines(
        profiles,
        record("profiles", {"id": 1, "userId": {"id": "u1"}}),
        record("profiles", {"id": 2, "userId": ["u2"]}),
        record("profiles", {"id": 3, "userId": "u3"}),
    )
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = [w for w in _warnings(run) if "userId" in w]
    assert len(warnings) == 1 and "an object or a list where a userId or anonymousId belongs" in warnings[0]
    assert "ids_not_text=2" in run.stderr
    events = [json.loads(r.data) for r in read_kinesis(kinesis, stream)]
    assert sorted(e.get("userId", "-") for e in events) == ["-", "-", "u3"]
    assert all("anonymousId" in e for e in events if "userId" not in e)


# -- one row, one event (issue 21 item 6) -----------------------------------------------------------


@pytest.mark.slow
@PROCESSES
def test_message_id_keys_gives_a_re_read_updated_row_its_first_id(moto_server, tmp_path, processes):
    """A table re-read after an update: with message_id keys the second "Order Completed" of a
    row carries the first one's messageId (a duplicate consumers drop); with content, a new one."""
    kinesis, stream = _stream(moto_server)
    before = [record("public-orders", {"id": i, "total": 10.5}) for i in range(3)]
    after = [record("public-orders", {"id": i, "total": 10.5 + (i == 1)}) for i in range(3)]  # row 1 updated
    ids: dict[str, list[list[str]]] = {}
    for rule in ("keys", "content"):
        runs = []
        for rows in (before, after):
            config = base_config(
                moto_server.url,
                stream_name=stream,
                events={"public-orders": {"event": "Order Completed", "message_id": rule}},
                mapping_processes=processes,
            )
            landed_before = len(read_kinesis(kinesis, stream))
            run = run_target(
                config, singer_lines(ORDERS, *rows, state({"n": 1})), endpoint=moto_server.url, tmp_path=tmp_path
            )
            assert run.returncode == 0, run.stderr[-2000:]
            events = [json.loads(r.data) for r in read_kinesis(kinesis, stream)[landed_before:]]
            assert [e["event"] for e in events] == ["Order Completed"] * 3
            runs.append([e["messageId"] for e in sorted(events, key=lambda e: e["properties"]["id"])])
        ids[rule] = runs
    assert ids["keys"][0] == ids["keys"][1], "keys: every row keeps its id, the updated one included"
    content_first, content_second = ids["content"]
    assert content_first[0] == content_second[0] and content_first[2] == content_second[2]
    assert content_first[1] != content_second[1], "content: the updated row is a new event"
    assert ids["keys"][0] != content_first


@PROCESSES
def test_message_id_keys_on_a_stream_without_key_properties_stops_at_its_schema(moto_server, tmp_path, processes):
    kinesis, stream = _stream(moto_server)
    keyless = schema("public-events", {"id": {"type": "integer"}})
    config = base_config(
        moto_server.url,
        stream_name=stream,
        events={"public-events": {"message_id": "keys"}},
        mapping_processes=processes,
    )
    text = singer_lines(keyless, record("public-events", {"id": 1}), state({"n": 1}))
    run = run_target(config, text, endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode != 0
    assert run.states == []
    errors = run.error_lines
    assert len(errors) == 1, run.stderr[-3000:]
    assert (
        "stream 'public-events': events.public-events.message_id is keys, but its SCHEMA declares no key_properties"
        in errors[0]
    )
    assert "line 1" in errors[0], errors[0]
    assert "Traceback" not in run.stderr
    assert read_kinesis(kinesis, stream) == []
