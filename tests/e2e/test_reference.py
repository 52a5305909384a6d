"""End to end, one test per reference system: the real CLI against a real local endpoint.

Each test configures target-kinesis the way a user of that hosted destination would,
runs `target-kinesis` as a subprocess, reads back what landed (GetRecords over every
shard, or the S3 objects behind a Firehose delivery stream) and checks it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from tests.support.readback import (
    create_firehose_to_s3,
    create_kinesis_stream,
    read_firehose_s3,
    read_kinesis,
    split_lines,
    unique_name,
)
from tests.support.servers import boto_client
from tests.support.target_cli import base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

LIBRARY_NAME = "target-kinesis"


def _common_fields(event: dict) -> None:
    """What the SPEC says every event carries."""
    assert event["type"] in {"track", "identify", "page", "screen", "group", "alias"}
    assert isinstance(event["messageId"], str) and event["messageId"]
    assert isinstance(event["timestamp"], str) and "T" in event["timestamp"]
    assert isinstance(event["sentAt"], str) and "T" in event["sentAt"]
    assert event.get("userId") or event.get("anonymousId")
    assert event["context"]["library"]["name"] == LIBRARY_NAME
    assert event["context"]["library"]["version"]


def test_segment_kinesis_stream(moto_server, tmp_path):
    """Segment's Kinesis destination: one stream, key userId || anonymousId, event JSON as data."""
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("segment")
    create_kinesis_stream(kinesis, stream, shards=3)
    messages = [
        schema(
            "orders",
            {
                "order_id": {"type": "integer"},
                "user_id": {"type": ["string", "null"]},
                "anonymous_id": {"type": ["string", "null"]},
                "total": {"type": "number"},
                "placed_at": {"type": "string", "format": "date-time"},
            },
            ["order_id"],
            bookmark_properties=["placed_at"],
        )
    ]
    for i in range(40):
        messages.append(
            record(
                "orders",
                {
                    "order_id": i,
                    "user_id": f"user-{i % 7}" if i % 5 else None,
                    "anonymous_id": None if i % 5 else f"anon-{i}",
                    "total": 10.25 + i,
                    "placed_at": f"2026-01-01T00:00:{i:02d}Z",
                },
            )
        )
    messages.append(state({"bookmarks": {"orders": {"replication_key_value": "2026-01-01T00:00:39Z"}}}))
    config = base_config(moto_server.url, stream_name=stream, events={"orders": {"event": "Order Completed"}})

    run = run_target(config, singer_lines(*messages), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states == [{"bookmarks": {"orders": {"replication_key_value": "2026-01-01T00:00:39Z"}}}]

    landed = read_kinesis(kinesis, stream)
    assert len(landed) == 40
    events = [json.loads(r.data) for r in landed]
    assert not any(r.data.endswith(b"\n") for r in landed), "Kinesis records carry no newline by default"
    by_order = {e["properties"]["order_id"]: (e, r) for e, r in zip(events, landed, strict=True)}
    assert sorted(by_order) == list(range(40))
    for i, (event, rec) in by_order.items():
        _common_fields(event)
        assert event["type"] == "track" and event["event"] == "Order Completed"
        assert event["timestamp"] == f"2026-01-01T00:00:{i:02d}Z", "replication key is the timestamp"
        assert event["properties"]["total"] == 10.25 + i
        expected_key = f"user-{i % 7}" if i % 5 else f"anon-{i}"
        assert rec.partition_key == expected_key
        assert event.get("userId", event.get("anonymousId")) == expected_key
    assert len({r.shard_id for r in landed}) > 1, "keys spread over the shards"
    assert run.summary(f"kinesis:{stream}")["records_sent"] == 40

    # A replay of the same input yields the same messageIds: consumers can de-duplicate.
    again = run_target(config, singer_lines(*messages), endpoint=moto_server.url, tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    ids = Counter(json.loads(r.data)["messageId"] for r in read_kinesis(kinesis, stream))
    assert len(ids) == 40 and set(ids.values()) == {2}


def test_segment_firehose_routing_and_personas(moto_server, tmp_path):
    """Segment's Firehose destination: name / type / `*` mapping, newline framing, audiences."""
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    registrations, identifies, everything = (unique_name(p) for p in ("online-registrations", "ident", "all"))
    buckets = {name: unique_name("bucket") for name in (registrations, identifies, everything)}
    for name, bucket in buckets.items():
        create_firehose_to_s3(firehose, s3, name, bucket)
    config = base_config(
        moto_server.url,
        service="firehose",
        destinations=[
            {"event": "user registered", "stream": registrations},  # case-insensitive name match
            {"event": "Identify", "stream": identifies},
            {"event": "*", "stream": everything},
        ],
        events={
            "signups": {"event_field": "event_name"},
            "users": {"type": "identify", "user_id_field": "id"},
            "audiences": {"type": "audience", "audience_field": "audience", "member_field": "member"},
        },
    )
    messages = [
        schema("signups", {"id": {"type": "integer"}, "userId": {"type": "string"}, "event_name": {"type": "string"}}),
        record("signups", {"id": 1, "userId": "user_1", "event_name": "User Registered"}),
        record("signups", {"id": 2, "userId": "user_2", "event_name": "Trial Started"}),
        schema("users", {"id": {"type": "string"}, "email": {"type": "string"}}, ["id"]),
        record("users", {"id": "user_1", "email": "a@example.com"}),
        schema(
            "audiences", {"user_id": {"type": "string"}, "audience": {"type": "string"}, "member": {"type": "boolean"}}
        ),
        record("audiences", {"user_id": "user_1", "audience": "Order Completed Last 30 Days", "member": True}),
        record("audiences", {"user_id": "user_2", "audience": "Order Completed Last 30 Days", "member": False}),
    ]
    run = run_target(config, singer_lines(*messages), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]

    def landed(stream: str) -> list[dict]:
        objects = read_firehose_s3(s3, buckets[stream])
        assert all(obj.endswith(b"\n") for obj in objects), "every Firehose record ends with a newline"
        return [json.loads(line) for line in split_lines(objects)]

    regs = landed(registrations)
    assert [(e["type"], e["event"], e["userId"]) for e in regs] == [("track", "User Registered", "user_1")]
    idents = landed(identifies)
    assert len(idents) == 3 and {e["type"] for e in idents} == {"identify"}
    traits = sorted((e["userId"], json.dumps(e["traits"], sort_keys=True)) for e in idents)
    assert traits == [
        ("user_1", json.dumps({"email": "a@example.com", "id": "user_1"}, sort_keys=True)),
        ("user_1", json.dumps({"order_completed_last_30_days": True})),
        ("user_2", json.dumps({"order_completed_last_30_days": False})),
    ]
    rest = landed(everything)
    assert [(e["event"], e["userId"]) for e in rest] == [("Trial Started", "user_2")], "only what no better rule took"
    for event in regs + idents + rest:
        _common_fields(event)


def test_rudderstack_priority_unmapped_and_assumed_role(moto_server, fault_proxy, tmp_path):
    """RudderStack: name > type > `*` is absent here, so unmapped events are dropped and counted;
    role-based auth assumes the role through STS with the ExternalId."""
    proxy = fault_proxy(keep_bodies=False)  # pass-through, records every request
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    products, pages = unique_name("products"), unique_name("pages")
    buckets = {products: unique_name("b"), pages: unique_name("b")}
    for name, bucket in buckets.items():
        create_firehose_to_s3(firehose, s3, name, bucket)
    config = {
        "endpoint_url": proxy.url,
        "region": "us-east-1",
        "service": "firehose",
        "role_arn": "arn:aws:iam::123456789012:role/rudder-writer",
        "external_id": "rudder-external-id-7731",
        "destinations": [
            {"event": "Product Added", "stream": products},
            {"event": "track", "stream": pages},  # a type rule: loses to the name rule
            {"event": "page", "stream": pages},
        ],
        "events": {
            "cart": {"event": "Product Added"},
            "clicks": {"event": "Button Clicked"},
            "views": {"type": "page", "name_field": "title"},
            "profiles": {"type": "identify"},  # no identify or `*` rule: unmapped
        },
    }
    messages = [
        schema("cart", {"user_id": {"type": "string"}, "sku": {"type": "string"}}),
        record("cart", {"user_id": "u1", "sku": "A"}),
        schema("clicks", {"user_id": {"type": "string"}}),
        record("clicks", {"user_id": "u2"}),
        schema("views", {"user_id": {"type": "string"}, "title": {"type": "string"}}),
        record("views", {"user_id": "u3", "title": "Pricing"}),
        schema("profiles", {"user_id": {"type": "string"}}),
        record("profiles", {"user_id": "u4"}),
        record("profiles", {"user_id": "u5"}),
    ]
    run = run_target(config, singer_lines(*messages), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    product_events = [json.loads(x) for x in split_lines(read_firehose_s3(s3, buckets[products]))]
    page_events = [json.loads(x) for x in split_lines(read_firehose_s3(s3, buckets[pages]))]
    assert [(e["event"], e["userId"]) for e in product_events] == [("Product Added", "u1")]
    assert sorted((e["type"], e.get("event") or e.get("name")) for e in page_events) == [
        ("page", "Pricing"),
        ("track", "Button Clicked"),
    ]
    assert "unmapped=2" in run.stderr, "unmapped identify events are counted in the summary"
    assume = proxy.requests_for("sts:AssumeRole")
    assert assume, "the role was assumed through the configured endpoint"
    assert assume[0].body.get("ExternalId") == "rudder-external-id-7731"
    assert assume[0].body.get("RoleArn") == "arn:aws:iam::123456789012:role/rudder-writer"
    assert "rudder-external-id-7731" not in run.stderr, "the external id is a secret"


def test_mparticle_audience_to_firehose(moto_server, tmp_path):
    """mParticle's audience integration: membership messages in mParticle's shape, access keys."""
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    stream, bucket = unique_name("mPTravelAudiences"), unique_name("bucket")
    create_firehose_to_s3(firehose, s3, stream, bucket)
    config = base_config(
        moto_server.url,
        service="firehose",
        stream_name=stream,
        send_anonymous_users=False,
        events={
            "memberships": {
                "type": "audience",
                "audience_format": "mparticle",
                "audience_field": "audience_name",
                "audience_id_field": "audience_id",
                "member_field": "is_member",
                "user_id_field": "customer_id",
                "timestamp_field": "changed_at",
                "identity_fields": {"Email": "email", "Other": "crm_id"},
            }
        },
    )
    messages = [
        schema(
            "memberships",
            {
                "customer_id": {"type": ["string", "null"]},
                "email": {"type": "string"},
                "crm_id": {"type": "string"},
                "audience_name": {"type": "string"},
                "audience_id": {"type": "integer"},
                "is_member": {"type": "boolean"},
                "changed_at": {"type": "string", "format": "date-time"},
            },
        ),
        record(
            "memberships",
            {
                "customer_id": "p.fogg138",
                "email": "fogg@example.com",
                "crm_id": "balloondude83",
                "audience_name": "LowEngagement",
                "audience_id": 123123,
                "is_member": True,
                "changed_at": "2009-02-13T23:31:30Z",
            },
        ),
        record(
            "memberships",
            {
                "customer_id": "p.fogg138",
                "email": "fogg@example.com",
                "crm_id": "balloondude83",
                "audience_name": "LowEngagement",
                "audience_id": 123123,
                "is_member": False,
                "changed_at": "2009-02-14T00:00:00Z",
            },
        ),
        # No customer id: an anonymous user, not sent with send_anonymous_users false.
        record(
            "memberships",
            {
                "customer_id": None,
                "email": "x@example.com",
                "crm_id": "c",
                "audience_name": "LowEngagement",
                "audience_id": 123123,
                "is_member": True,
                "changed_at": "2009-02-14T00:00:00Z",
            },
        ),
    ]
    run = run_target(config, singer_lines(*messages), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    landed = [json.loads(x) for x in split_lines(read_firehose_s3(s3, bucket))]
    assert sorted(landed, key=lambda m: m["IsMember"], reverse=True) == [
        {
            "AudienceName": "LowEngagement",
            "AudienceId": 123123,
            "IsMember": True,
            "UserIdentities": {"CustomerId": "p.fogg138", "Email": "fogg@example.com", "Other": "balloondude83"},
            "MembershipChangedTimestamp": "1234567890",
        },
        {
            "AudienceName": "LowEngagement",
            "AudienceId": 123123,
            "IsMember": False,
            "UserIdentities": {"CustomerId": "p.fogg138", "Email": "fogg@example.com", "Other": "balloondude83"},
            "MembershipChangedTimestamp": "1234569600",
        },
    ]
    assert "dropped_anonymous=1" in run.stderr


def test_lytics_triggers_on_kinesalite(kinesalite_server, tmp_path):
    """Lytics' Kinesis export: `_ . -` stream names, segment enter/exit triggers, partition key
    from an identifier field, hashed email; on kinesalite, which validates like AWS."""
    kinesis = boto_client("kinesis", kinesalite_server.url)
    stream = f"lytics_triggers.{unique_name('stream')}"
    create_kinesis_stream(kinesis, stream, shards=2)
    config = base_config(
        kinesalite_server.url,
        stream_name=stream,
        partition_key="traits.email",
        hash_fields=["traits.email"],
        events={
            "segment_triggers": {
                "type": "audience",
                "audience_field": "slug",
                "member_field": "event",
                "user_id_field": "user_id",
            },
        },
    )
    messages = [
        schema(
            "segment_triggers",
            {"user_id": {"type": "string"}, "slug": {"type": "string"}, "event": {"type": "string"}},
        ),
        record("segment_triggers", {"user_id": "user123", "slug": "demo_segment", "event": "exit"}),
        record("segment_triggers", {"user_id": "user123", "slug": "another_segment", "event": "enter"}),
    ]
    run = run_target(config, singer_lines(*messages), endpoint=kinesalite_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    landed = read_kinesis(kinesis, stream)
    events = sorted((json.loads(r.data) for r in landed), key=lambda e: json.dumps(e["traits"]))
    assert [e["traits"] for e in events] == [{"another_segment": True}, {"demo_segment": False}]
    assert all(e["type"] == "identify" and e["userId"] == "user123" for e in events)
    # traits.email is absent in these events, so the key falls back to the messageId.
    assert sorted(r.partition_key for r in landed) == sorted(e["messageId"] for e in events)


def test_lytics_identifier_partition_key_and_random(kinesalite_server, tmp_path):
    """partition_key as a dotted path reads the finished event (after hashing); `random` spreads."""
    kinesis = boto_client("kinesis", kinesalite_server.url)
    stream = unique_name("lytics-users")
    create_kinesis_stream(kinesis, stream, shards=2)
    messages = [
        schema("users", {"user_id": {"type": "string"}, "email": {"type": "string"}}),
        *(record("users", {"user_id": f"u{i}", "email": f"User{i}@Example.com "}) for i in range(6)),
    ]
    config = base_config(
        kinesalite_server.url,
        stream_name=stream,
        partition_key="traits.email",
        hash_fields=["traits.email"],
        events={"users": {"type": "identify"}},
    )
    run = run_target(config, singer_lines(*messages), endpoint=kinesalite_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    landed = read_kinesis(kinesis, stream)
    expected = {hashlib.sha256(f"user{i}@example.com".encode()).hexdigest() for i in range(6)}
    assert {r.partition_key for r in landed} == expected
    assert {json.loads(r.data)["traits"]["email"] for r in landed} == expected, "no clear-text email lands"

    random_stream = unique_name("lytics-random")
    create_kinesis_stream(kinesis, random_stream, shards=2)
    config.update(stream_name=random_stream, partition_key="random")
    run = run_target(config, singer_lines(*messages), endpoint=kinesalite_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    keys = [r.partition_key for r in read_kinesis(kinesis, random_stream)]
    assert len(keys) == 6 and len(set(keys)) == 6


def test_kinesis_and_firehose_side_by_side(moto_server, tmp_path):
    """One run, one event fanned out to a Kinesis stream and a Firehose delivery stream."""
    kinesis = boto_client("kinesis", moto_server.url)
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    k_stream, f_stream, bucket = unique_name("k"), unique_name("f"), unique_name("b")
    create_kinesis_stream(kinesis, k_stream)
    create_firehose_to_s3(firehose, s3, f_stream, bucket)
    config = base_config(
        moto_server.url,
        destinations=[
            {"event": "*", "stream": k_stream, "service": "kinesis"},
            {"event": "*", "stream": f_stream, "service": "firehose"},
        ],
    )
    messages = [
        schema("events", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"]),
        *(record("events", {"id": i, "user_id": f"u{i}"}) for i in range(25)),
        state({"done": True}),
    ]
    run = run_target(config, singer_lines(*messages), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    k_data = [r.data for r in read_kinesis(kinesis, k_stream)]
    f_data = split_lines(read_firehose_s3(s3, bucket))
    assert sorted(k_data) == sorted(f_data), "the same event bytes, newline aside"
    assert len(k_data) == 25
    assert run.states == [{"done": True}]


def test_privacy_switches_on_what_lands(moto_server, tmp_path):
    """exclude_fields and hash_fields apply to the finished event, before it is written."""
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("privacy")
    create_kinesis_stream(kinesis, stream)
    config = base_config(
        moto_server.url,
        stream_name=stream,
        exclude_fields=["traits.ssn", "context.library.version"],
        hash_fields=["traits.email"],
        events={"people": {"type": "identify"}},
    )
    messages = [
        schema("people", {"user_id": {"type": "string"}, "email": {"type": "string"}, "ssn": {"type": "string"}}),
        record("people", {"user_id": "u1", "email": " Ada@Example.COM", "ssn": "123-45-6789"}),
    ]
    run = run_target(config, singer_lines(*messages), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    (landed,) = read_kinesis(kinesis, stream)
    event = json.loads(landed.data)
    assert "ssn" not in event["traits"] and b"123-45-6789" not in landed.data
    assert event["traits"]["email"] == hashlib.sha256(b"ada@example.com").hexdigest()
    assert event["context"]["library"] == {"name": LIBRARY_NAME}
