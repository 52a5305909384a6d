"""Unit tests of target_kinesis.shaping against SPEC.md's privacy switches and `partition_key`."""

from __future__ import annotations

import copy
import hashlib
import random

import pytest

from target_kinesis.config.events import EventSpec, privacy_path_problem
from target_kinesis.delivery.partition_keys import PartitionKeys, clamp_key
from target_kinesis.delivery.privacy import Privacy
from target_kinesis.delivery.stats import RunStats
from target_kinesis.events.event import Event
from target_kinesis.events.mapper import EventMapper


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event(body: dict, *, user_id: str | None = None, anonymous_id: str | None = None, message_id: str = "m-1") -> Event:
    body = {"messageId": message_id, **body}
    if user_id is not None:
        body["userId"] = user_id
    if anonymous_id is not None:
        body["anonymousId"] = anonymous_id
    return Event(body, body.get("type", "track"), body.get("event"), message_id, user_id, anonymous_id)


def identify(record: dict, stream: str = "users") -> Event:
    return EventMapper(stream, EventSpec(type="identify"), key_properties=("id",)).map(record)


# -- exclude_fields ----------------------------------------------------------------------------


def test_exclude_fields_removes_dotted_paths() -> None:
    e = event(
        {"type": "identify", "traits": {"email": "a@b.c", "name": "Ann"}, "context": {"ip": "1.2.3.4"}}, user_id="u"
    )
    Privacy(exclude_fields=["traits.email", "context.ip"]).apply(e, RunStats())
    assert e.body["traits"] == {"name": "Ann"}
    assert e.body["context"] == {}
    assert e.body["userId"] == "u"


def test_exclude_top_level_and_deep_paths() -> None:
    e = event({"a": {"b": {"c": 1, "d": 2}}, "top": 1}, user_id="u")
    Privacy(exclude_fields=["top", "a.b.c"]).apply(e, RunStats())
    assert "top" not in e.body
    assert e.body["a"] == {"b": {"d": 2}}


def test_exclude_missing_path_changes_nothing() -> None:
    body = {"type": "track", "properties": {"x": 1}, "list": [1, 2]}
    e = event(copy.deepcopy(body), user_id="u")
    Privacy(exclude_fields=["traits.email", "properties.x.y", "list.0", "nothing"]).apply(e, RunStats())
    assert e.body == {"messageId": "m-1", "userId": "u", **body}


# -- hash_fields ---------------------------------------------------------------------------------


def test_hash_fields_replace_value_by_sha256_of_trimmed_lower_cased_text() -> None:
    e = event({"type": "identify", "traits": {"email": "  Alice@Example.COM \n", "name": "Ann"}}, user_id="u")
    Privacy(hash_fields=["traits.email"]).apply(e, RunStats())
    assert e.body["traits"]["email"] == sha("alice@example.com")
    assert e.body["traits"]["name"] == "Ann"


def test_hash_is_hex_sha256() -> None:
    e = event({"properties": {"phone": "+1 555 0100"}}, user_id="u")
    Privacy(hash_fields=["properties.phone"]).apply(e, RunStats())
    value = e.body["properties"]["phone"]
    assert len(value) == 64
    assert int(value, 16) >= 0
    assert value == hashlib.sha256(b"+1 555 0100").hexdigest()


def test_hash_of_same_value_in_different_case_is_equal() -> None:
    a = event({"traits": {"email": "BOB@x.io"}}, user_id="u")
    b = event({"traits": {"email": " bob@X.IO"}}, user_id="u")
    privacy = Privacy(hash_fields=["traits.email"])
    privacy.apply(a, RunStats())
    privacy.apply(b, RunStats())
    assert a.body["traits"]["email"] == b.body["traits"]["email"]


def test_hash_of_a_number_hashes_its_text() -> None:
    e = event({"traits": {"zip": 12345}}, user_id="u")
    Privacy(hash_fields=["traits.zip"]).apply(e, RunStats())
    assert e.body["traits"]["zip"] == sha("12345")


def test_hash_missing_path_creates_nothing() -> None:
    e = event({"traits": {"name": "Ann"}}, user_id="u")
    Privacy(hash_fields=["traits.email", "properties.email"]).apply(e, RunStats())
    assert e.body["traits"] == {"name": "Ann"}
    assert "properties" not in e.body


def test_exclude_and_hash_together() -> None:
    e = event({"traits": {"email": "A@B.C", "ssn": "123"}}, user_id="u")
    Privacy(exclude_fields=["traits.ssn"], hash_fields=["traits.email"]).apply(e, RunStats())
    assert e.body["traits"] == {"email": sha("a@b.c")}


# -- nested containers are copied, not mutated ------------------------------------------------------


def test_nested_dicts_shared_with_the_record_are_not_mutated() -> None:
    record = {"id": 1, "userId": "u", "email": "A@B.C", "address": {"city": "Paris", "zip": "75001", "geo": {"lat": 1}}}
    original = copy.deepcopy(record)
    e = identify(record)
    # The event's nested dict is the record's own object (shallow copy of fields).
    assert e.body["traits"]["address"] is record["address"]
    Privacy(exclude_fields=["traits.address.zip", "traits.address.geo.lat"], hash_fields=["traits.address.city"]).apply(
        e, RunStats()
    )
    assert e.body["traits"]["address"] == {"city": sha("paris"), "geo": {}}
    assert record == original


def test_fan_out_events_of_one_record_do_not_affect_each_other() -> None:
    record = {"id": 1, "userId": "u", "profile": {"email": "a@b.c", "name": "Ann"}}
    mapper = EventMapper("users", EventSpec(type="identify"), key_properties=("id",))
    first = mapper.map(record)
    second = mapper.map(record)
    Privacy(exclude_fields=["traits.profile.email"]).apply(first, RunStats())
    assert first.body["traits"]["profile"] == {"name": "Ann"}
    assert second.body["traits"]["profile"] == {"email": "a@b.c", "name": "Ann"}


def test_removing_library_version_does_not_change_later_events() -> None:
    privacy = Privacy(exclude_fields=["context.library.version"], hash_fields=["context.library.name"])
    first = identify({"id": 1, "userId": "u"})
    privacy.apply(first, RunStats())
    assert first.body["context"]["library"] == {"name": sha("target-kinesis")}
    later = identify({"id": 2, "userId": "u"})
    assert later.body["context"]["library"]["name"] == "target-kinesis"
    assert "version" in later.body["context"]["library"]


# -- send_anonymous_users ---------------------------------------------------------------------------


def test_send_anonymous_users_default_keeps_everything() -> None:
    privacy = Privacy()
    assert privacy.keep(event({}, anonymous_id="a"))
    assert privacy.keep(event({}, user_id="u"))


def test_send_anonymous_users_false_drops_events_without_user_id() -> None:
    privacy = Privacy(send_anonymous_users=False)
    assert not privacy.keep(event({}, anonymous_id="a"))
    assert privacy.keep(event({}, user_id="u", anonymous_id="a"))
    assert privacy.keep(event({}, user_id="u"))
    # Through the mapper: a record without a user gets a derived anonymousId, and is dropped.
    anonymous = identify({"id": 5, "name": "x"})
    assert anonymous.body.get("anonymousId")
    assert not privacy.keep(anonymous)
    assert privacy.keep(identify({"id": 5, "userId": "u"}))


# -- partition keys ---------------------------------------------------------------------------------


def test_partition_key_default_is_user_id() -> None:
    keys = PartitionKeys()
    assert keys.key_for(event({}, user_id="u-1", anonymous_id="a-1")) == "u-1"


def test_partition_key_user_id_falls_back_to_anonymous_id() -> None:
    keys = PartitionKeys("userId")
    assert keys.key_for(event({}, anonymous_id="a-1")) == "a-1"
    assert keys.key_for(event({"userId": ""}, anonymous_id="a-2")) == "a-2"


def test_partition_key_message_id() -> None:
    keys = PartitionKeys("messageId")
    assert keys.key_for(event({}, user_id="u", message_id="m-77")) == "m-77"


def test_partition_key_random_differs_between_calls() -> None:
    keys = PartitionKeys("random")
    e = event({}, user_id="u")
    drawn = {keys.key_for(e) for _ in range(20)}
    assert len(drawn) == 20
    assert all(1 <= len(k) <= 256 for k in drawn)


def test_partition_key_random_is_reproducible_with_a_seeded_rng() -> None:
    e = event({}, user_id="u")
    a = PartitionKeys("random", rng=random.Random(3))
    b = PartitionKeys("random", rng=random.Random(3))
    assert [a.key_for(e) for _ in range(3)] == [b.key_for(e) for _ in range(3)]


def test_partition_key_dotted_path() -> None:
    keys = PartitionKeys("properties.account.id")
    assert keys.key_for(event({"properties": {"account": {"id": "acc-1"}}}, user_id="u")) == "acc-1"
    assert keys.key_for(event({"properties": {"account": {"id": 42}}}, user_id="u")) == "42"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"properties": {}},
        {"properties": {"account": None}},
        {"properties": {"account": {"id": None}}},
        {"properties": {"account": {"id": ""}}},
    ],
)
def test_partition_key_missing_value_falls_back_to_message_id(body: dict) -> None:
    keys = PartitionKeys("properties.account.id")
    assert keys.key_for(event(body, user_id="u", message_id="m-9")) == "m-9"


def test_partition_key_user_id_with_neither_id_falls_back_to_message_id() -> None:
    assert PartitionKeys("userId").key_for(event({}, message_id="m-3")) == "m-3"


def test_partition_key_is_read_after_hashing() -> None:
    # A hashed userId must not leak into the partition key in clear text.
    e = event({}, user_id="Bob@Example.com")
    Privacy(hash_fields=["userId"]).apply(e, RunStats())
    assert PartitionKeys("userId").key_for(e) == sha("bob@example.com")


def test_long_partition_key_becomes_its_sha256() -> None:
    long_id = "u" * 300
    key = PartitionKeys("userId").key_for(event({}, user_id=long_id))
    assert key == sha(long_id)
    assert 1 <= len(key) <= 256


def test_clamp_key_limits() -> None:
    assert clamp_key("k" * 256) == "k" * 256
    assert clamp_key("k" * 257) == sha("k" * 257)
    # 256 Unicode characters (more than 256 bytes) is still a valid key.
    assert clamp_key("é" * 256) == "é" * 256
    assert len(clamp_key("é" * 257)) <= 256
    # Stable: the same long key always lands on the same shard.
    assert clamp_key("x" * 1000) == clamp_key("x" * 1000)
    assert clamp_key("x" * 1000) != clamp_key("y" * 1000)


# -- paths that match nothing (SPEC: a privacy path never lets a value through silently) -------------


@pytest.mark.parametrize(
    ("path", "meant"),
    [
        ("email", "traits.email, properties.email, context.traits.email"),
        ("address.city", "traits.address.city, properties.address.city, context.traits.address.city"),
        ("Traits.email", "traits.email"),
        ("userid", "userId"),
    ],
)
def test_a_path_into_no_part_of_an_event_is_refused_naming_what_would_match(path: str, meant: str) -> None:
    problem = privacy_path_problem("hash_fields", path)
    assert problem is not None
    assert problem.startswith(f"setting 'hash_fields': '{path}' matches nothing")
    assert problem.endswith(f"paths that would match: {meant}")


@pytest.mark.parametrize("path", ["traits.email", "context.ip", "userId", "UserIdentities.Email", "properties"])
def test_paths_into_an_event_are_accepted(path: str) -> None:
    assert privacy_path_problem("exclude_fields", path) is None


def test_a_path_that_matched_nothing_in_events_it_applies_to_is_reported() -> None:
    privacy = Privacy(exclude_fields=["traits.ssn", "properties.card"], hash_fields=["traits.email"])
    stats = RunStats()
    for n in range(3):
        privacy.apply(identify({"id": n, "userId": f"u{n}", "email": "A@B.C"}), stats)
    assert stats.privacy_matched == {"hash_fields:traits.email": 3}
    assert stats.privacy_types == {"identify": 3}
    lines = list(privacy.unmatched_paths(stats))
    # properties.* applies to track/page/screen events: none was sent, so nothing to say about it.
    assert lines == [
        "exclude_fields path 'traits.ssn' matched nothing in the 3 identify event(s) sent: no value was removed; "
        "check the path against what lands in the stream (target-kinesis-tail shows it)"
    ]


def test_a_record_field_path_that_matched_nothing_in_passthrough_events_is_reported() -> None:
    # Let through at start-up for passthrough records; any event type can carry it, so a run
    # that sent events and found it in none says so.
    privacy = Privacy(exclude_fields=["_sdc_stream"])
    stats = RunStats()
    privacy.apply(identify({"id": 1, "userId": "u1"}), stats)
    assert [line.split(":")[0] for line in privacy.unmatched_paths(stats)] == [
        "exclude_fields path '_sdc_stream' matched nothing in the 1 identify event(s) sent"
    ]
