"""Unit tests of target_kinesis.events (the mapper, ids, JSON) against SPEC.md "From a Singer record to a Segment event".

Pure: no AWS, no network. Expected values are derived from the SPEC (and Segment's and
mParticle's documented formats in /work/shared/reference), not from the code's output.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from importlib.metadata import version

import pytest

from target_kinesis.config.events import EventSpec
from target_kinesis.errors import ConfigError, InputError
from target_kinesis.events.mapper import EventMapper
from target_kinesis.events.serialize import dumps

NOW = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z
NOW_DT = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
LIBRARY = {"name": "target-kinesis", "version": version("target-kinesis")}
EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")


def mapper(stream: str = "orders", clock: float = NOW, **spec: object) -> EventMapper:
    key_properties = spec.pop("key_properties", ("id",))
    schema = spec.pop("schema", None)
    replication_key = spec.pop("replication_key", None)
    return EventMapper(
        stream,
        EventSpec.from_setting(stream, spec),
        key_properties=key_properties,  # type: ignore[arg-type]
        schema=schema,  # type: ignore[arg-type]
        replication_key=replication_key,  # type: ignore[arg-type]
        clock=lambda: clock,
    )


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def spec_for(event_type: str) -> dict[str, str]:
    extra = {
        "group": {"group_id_field": "account_id"},
        "alias": {"previous_id_field": "old_id"},
        "page": {"name_field": "page_name"},
        "screen": {"name_field": "page_name"},
    }
    return {"type": event_type, **extra.get(event_type, {})}


RECORD = {"id": 7, "userId": "u-1", "account_id": "acc-9", "old_id": "anon-3", "page_name": "Home", "plan": "pro"}


# -- every event carries the common fields -------------------------------------------------


@pytest.mark.parametrize("event_type", [*EVENT_TYPES, "passthrough", "audience"])
def test_every_event_carries_the_common_fields(event_type: str) -> None:
    spec: dict[str, object] = spec_for(event_type)
    record = dict(RECORD)
    if event_type == "audience":
        spec = {"type": "audience", "audience_field": "audience", "member_field": "member"}
        record.update(audience="VIP", member=True)
    if event_type == "passthrough":
        record = {"type": "track", "event": "Signed Up", "userId": "u-1"}
    event = mapper(**spec).map(record, "2024-05-06T07:08:09Z").body

    expected_type = {"audience": "identify", "passthrough": "track"}.get(event_type, event_type)
    assert event["type"] == expected_type
    uuid.UUID(event["messageId"])  # a deterministic UUID (no message_id_field configured)
    assert parse_iso(event["timestamp"]) == dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    assert parse_iso(event["sentAt"]).tzinfo is not None
    assert event.get("userId") == "u-1"
    assert event["context"]["library"] == LIBRARY
    # The body must survive the JSON encoder used for the stream.
    assert json.loads(dumps(event))["messageId"] == event["messageId"]


def test_library_version_is_the_installed_package_version() -> None:
    event = mapper().map({"id": 1, "userId": "u"}).body
    assert event["context"]["library"]["name"] == "target-kinesis"
    assert event["context"]["library"]["version"] == version("target-kinesis")


def test_sent_at_is_the_clock_time() -> None:
    event = mapper(clock=NOW).map({"id": 1, "userId": "u"}, "2020-01-01T00:00:00Z").body
    sent_at = parse_iso(event["sentAt"])
    # At most one second early (the mapper caches the time text per second), never late.
    assert dt.timedelta(0) <= NOW_DT - sent_at < dt.timedelta(seconds=1)


# -- track -----------------------------------------------------------------------------------


def test_track_event_name_defaults_to_the_stream_name() -> None:
    event = mapper("Order Completed").map({"id": 1, "userId": "u", "total": 5})
    assert event.body["event"] == "Order Completed"
    assert event.name == "Order Completed"
    assert event.type == "track"
    assert event.body["properties"] == {"id": 1, "userId": "u", "total": 5}
    assert "traits" not in event.body


def test_track_with_fixed_event_name() -> None:
    event = mapper(event="Order Completed").map({"id": 1, "userId": "u"})
    assert event.body["event"] == "Order Completed"
    assert event.name == "Order Completed"


def test_track_event_field_overrides_event() -> None:
    m = mapper(event="Fixed", event_field="action")
    event = m.map({"id": 1, "userId": "u", "action": "Product Viewed"})
    assert event.body["event"] == "Product Viewed"
    assert event.name == "Product Viewed"


@pytest.mark.parametrize("value", [None, ""])
def test_missing_event_field_value_is_an_input_error_naming_stream_and_field(value: object) -> None:
    record = {"id": 1, "userId": "u"}
    if value is not None:
        record["action"] = value
    with pytest.raises(InputError) as info:
        mapper("web_events", event_field="action").map(record)
    assert "web_events" in str(info.value)
    assert "action" in str(info.value)


# -- identify / page / screen / group / alias ----------------------------------------------------


def test_identify_puts_fields_in_traits() -> None:
    event = mapper("users", type="identify").map({"id": 1, "userId": "u-1", "email": "a@b.c"})
    assert event.type == "identify"
    assert event.name is None
    assert event.body["traits"] == {"id": 1, "userId": "u-1", "email": "a@b.c"}
    assert "properties" not in event.body
    assert "event" not in event.body


@pytest.mark.parametrize("event_type", ["page", "screen"])
def test_page_and_screen_take_name_from_name_field(event_type: str) -> None:
    event = mapper("views", type=event_type, name_field="title").map({"id": 1, "userId": "u", "title": "Pricing"})
    assert event.type == event_type
    assert event.body["name"] == "Pricing"
    assert event.body["properties"] == {"id": 1, "userId": "u", "title": "Pricing"}
    assert "event" not in event.body
    # A page's name is not a track event name: routing must not match it by name.
    assert event.name is None


@pytest.mark.parametrize("event_type", ["page", "screen"])
def test_page_without_name_value_has_no_name(event_type: str) -> None:
    event = mapper("views", type=event_type, name_field="title").map({"id": 1, "userId": "u"})
    assert "name" not in event.body


def test_group_takes_group_id_from_group_id_field() -> None:
    event = mapper("accounts", type="group", group_id_field="account_id").map(
        {"id": 1, "userId": "u", "account_id": 42, "plan": "pro"}
    )
    assert event.type == "group"
    assert event.body["groupId"] == "42"  # Segment ids are strings
    assert event.body["traits"] == {"id": 1, "userId": "u", "account_id": 42, "plan": "pro"}


def test_group_without_group_id_field_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        mapper("accounts", type="group").map({"id": 1, "userId": "u"})
    assert "accounts" in str(info.value)
    assert "group_id_field" in str(info.value)


def test_group_record_without_group_id_value_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        mapper("accounts", type="group", group_id_field="account_id").map({"id": 1, "userId": "u"})
    assert "accounts" in str(info.value)
    assert "account_id" in str(info.value)


def test_alias_takes_previous_id_from_previous_id_field() -> None:
    event = mapper("merges", type="alias", previous_id_field="old_id").map({"id": 1, "userId": "new", "old_id": "old"})
    assert event.type == "alias"
    assert event.body["previousId"] == "old"
    assert event.body["userId"] == "new"


def test_alias_without_previous_id_field_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        mapper("merges", type="alias").map({"id": 1, "userId": "new"})
    assert "merges" in str(info.value)
    assert "previous_id_field" in str(info.value)


# -- user and anonymous ids -----------------------------------------------------------------


def test_user_id_defaults_to_userId_then_user_id() -> None:
    assert mapper().map({"id": 1, "userId": "a", "user_id": "b"}).body["userId"] == "a"
    assert mapper().map({"id": 1, "user_id": "b"}).body["userId"] == "b"


def test_user_id_field_and_anonymous_id_field() -> None:
    event = mapper(user_id_field="customer", anonymous_id_field="cookie").map(
        {"id": 1, "customer": "c-1", "cookie": "k-1", "userId": "ignored"}
    )
    assert event.body["userId"] == "c-1"
    assert event.body["anonymousId"] == "k-1"
    assert event.user_id == "c-1"
    assert event.anonymous_id == "k-1"


def test_anonymous_id_defaults_to_anonymousId_then_anonymous_id() -> None:
    assert mapper().map({"id": 1, "anonymousId": "a", "anonymous_id": "b"}).body["anonymousId"] == "a"
    event = mapper().map({"id": 1, "anonymous_id": "b"}).body
    assert event["anonymousId"] == "b"
    assert "userId" not in event


def test_no_anonymous_id_is_invented_when_there_is_a_user() -> None:
    event = mapper().map({"id": 1, "userId": "u"}).body
    assert "anonymousId" not in event


def test_anonymous_id_is_derived_from_stream_and_key_properties() -> None:
    m = mapper("visits")
    first = m.map({"id": 1, "page": "/a"})
    assert first.user_id is None
    assert first.anonymous_id and first.body["anonymousId"] == first.anonymous_id
    assert "userId" not in first.body
    # Same stream and key properties: same anonymousId, even if other fields change
    # and even from a new mapper (a re-run).
    assert mapper("visits").map({"id": 1, "page": "/b"}).body["anonymousId"] == first.anonymous_id
    # Another key, or another stream: another anonymousId.
    assert m.map({"id": 2, "page": "/a"}).body["anonymousId"] != first.anonymous_id
    assert mapper("clicks").map({"id": 1, "page": "/a"}).body["anonymousId"] != first.anonymous_id


def test_anonymous_id_without_key_properties_is_still_deterministic() -> None:
    m = mapper("visits", key_properties=())
    a = m.map({"page": "/a"}).body["anonymousId"]
    assert mapper("visits", key_properties=()).map({"page": "/a"}).body["anonymousId"] == a
    assert m.map({"page": "/b"}).body["anonymousId"] != a


# -- messageId ------------------------------------------------------------------------------


def test_message_id_is_deterministic_across_runs() -> None:
    record = {"id": 1, "userId": "u", "total": Decimal("9.99")}
    first = mapper(clock=NOW).map(dict(record), "2024-01-01T00:00:00Z").message_id
    # A replay: new mapper, later clock, another time_extracted -> same id.
    replay = mapper(clock=NOW + 86_400).map(dict(record), "2024-06-01T00:00:00Z")
    assert replay.message_id == first
    assert replay.body["messageId"] == first
    uuid.UUID(first)


def test_message_id_differs_for_different_records_and_streams() -> None:
    base = mapper().map({"id": 1, "userId": "u", "total": 1}).message_id
    assert mapper().map({"id": 1, "userId": "u", "total": 2}).message_id != base  # content
    assert mapper().map({"id": 2, "userId": "u", "total": 1}).message_id != base  # key
    assert mapper("refunds").map({"id": 1, "userId": "u", "total": 1}).message_id != base  # stream


def test_message_id_field() -> None:
    event = mapper(message_id_field="event_uuid").map({"id": 1, "userId": "u", "event_uuid": "evt-123"})
    assert event.body["messageId"] == "evt-123"
    assert event.message_id == "evt-123"


def test_message_id_field_without_value_falls_back_to_a_deterministic_id() -> None:
    a = mapper(message_id_field="event_uuid").map({"id": 1, "userId": "u"}).message_id
    assert a == mapper(message_id_field="event_uuid").map({"id": 1, "userId": "u"}).message_id
    uuid.UUID(a)


def test_message_id_keys_keeps_the_id_of_an_updated_row() -> None:
    """message_id: keys (one row, one event): the id depends on stream and key properties alone."""
    first = mapper(message_id="keys").map({"id": 1, "userId": "u", "status": "placed"}).message_id
    updated = mapper(message_id="keys").map({"id": 1, "userId": "u", "status": "shipped"}).message_id
    assert updated == first
    uuid.UUID(first)
    assert mapper(message_id="keys").map({"id": 2, "userId": "u", "status": "placed"}).message_id != first
    assert mapper("refunds", message_id="keys").map({"id": 1, "userId": "u", "status": "placed"}).message_id != first
    # The default (content) gives the updated row a new id.
    content = mapper(message_id="content").map({"id": 1, "userId": "u", "status": "placed"}).message_id
    assert content == mapper().map({"id": 1, "userId": "u", "status": "placed"}).message_id
    assert mapper().map({"id": 1, "userId": "u", "status": "shipped"}).message_id != content


def test_message_id_keys_uses_every_key_property() -> None:
    one = mapper(message_id="keys", key_properties=("tenant", "id")).map({"tenant": "a", "id": 1, "userId": "u"})
    other = mapper(message_id="keys", key_properties=("tenant", "id")).map({"tenant": "b", "id": 1, "userId": "u"})
    assert one.message_id != other.message_id


def test_message_id_field_wins_over_message_id_keys() -> None:
    event = mapper(message_id="keys", message_id_field="event_uuid").map({"id": 1, "userId": "u", "event_uuid": "e-1"})
    assert event.message_id == "e-1"


def test_message_id_keys_without_key_properties_is_an_input_error() -> None:
    """Every record would get the same id, and consumers would keep only one: refused at SCHEMA."""
    with pytest.raises(
        InputError,
        match=r"stream 'orders': events.orders.message_id is keys, but its SCHEMA declares no key_properties",
    ):
        mapper(message_id="keys", key_properties=())


def test_message_id_rule_must_be_known() -> None:
    with pytest.raises(ConfigError, match=r"setting 'events.orders.message_id' must be one of content, keys"):
        EventSpec.from_setting("orders", {"message_id": "row"})


# -- timestamp --------------------------------------------------------------------------------


def test_timestamp_from_timestamp_field() -> None:
    event = mapper(timestamp_field="created_at").map(
        {"id": 1, "userId": "u", "created_at": "2021-03-04T05:06:07Z"}, "2024-01-01T00:00:00Z"
    )
    assert parse_iso(event.body["timestamp"]) == dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)


def test_timestamp_field_datetime_value_becomes_iso_text() -> None:
    when = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
    event = mapper(timestamp_field="created_at").map({"id": 1, "userId": "u", "created_at": when})
    assert isinstance(event.body["timestamp"], str)
    assert parse_iso(event.body["timestamp"]) == when


DATE_TIME_SCHEMA = {
    "properties": {
        "id": {"type": "integer"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "updated_any": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
        "version": {"type": "integer"},
    }
}


@pytest.mark.parametrize("key", ["updated_at", "updated_any"])
def test_timestamp_defaults_to_a_date_time_replication_key(key: str) -> None:
    m = mapper(schema=DATE_TIME_SCHEMA, replication_key=key)
    event = m.map({"id": 1, "userId": "u", key: "2022-02-02T02:02:02Z"}, "2024-01-01T00:00:00Z")
    assert parse_iso(event.body["timestamp"]) == dt.datetime(2022, 2, 2, 2, 2, 2, tzinfo=dt.timezone.utc)


def test_replication_key_that_is_not_a_date_time_is_not_the_timestamp() -> None:
    m = mapper(schema=DATE_TIME_SCHEMA, replication_key="version")
    event = m.map({"id": 1, "userId": "u", "version": 1_600_000_000}, "2024-01-01T00:00:00Z")
    assert parse_iso(event.body["timestamp"]) == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def test_timestamp_falls_back_to_time_extracted_then_now() -> None:
    m = mapper(clock=NOW)
    extracted = m.map({"id": 1, "userId": "u"}, "2024-01-01T00:00:00Z").body["timestamp"]
    assert parse_iso(extracted) == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    as_datetime = m.map({"id": 1, "userId": "u"}, dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)).body["timestamp"]
    assert isinstance(as_datetime, str)
    assert parse_iso(as_datetime) == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    now = parse_iso(m.map({"id": 1, "userId": "u"}).body["timestamp"])
    assert dt.timedelta(0) <= NOW_DT - now < dt.timedelta(seconds=1)


def test_timestamp_field_without_value_falls_back_to_time_extracted() -> None:
    event = mapper(timestamp_field="created_at").map({"id": 1, "userId": "u"}, "2024-01-01T00:00:00Z")
    assert parse_iso(event.body["timestamp"]) == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


# -- JSON encoding ------------------------------------------------------------------------------


def test_decimal_stays_an_exact_json_number() -> None:
    amount = Decimal("12345678901234567890.123456789")
    event = mapper().map({"id": 1, "userId": "u", "amount": amount, "tiny": Decimal("0.1")})
    data = dumps(event.body)
    assert b'"amount":12345678901234567890.123456789' in data
    decoded = json.loads(data, parse_float=Decimal)
    assert decoded["properties"]["amount"] == amount
    assert isinstance(decoded["properties"]["amount"], Decimal)  # a number, not a string
    assert decoded["properties"]["tiny"] == Decimal("0.1")


def test_decimal_integer_beyond_64_bits_stays_exact() -> None:
    data = dumps({"n": Decimal("123456789012345678901234567890")})
    assert json.loads(data) == {"n": 123456789012345678901234567890}


def test_datetime_values_are_iso_8601_strings() -> None:
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)
    decoded = json.loads(dumps({"aware": aware, "naive": naive, "day": dt.date(2024, 1, 2)}))
    assert parse_iso(decoded["aware"]) == aware
    assert parse_iso(decoded["naive"]) == naive.replace(tzinfo=dt.timezone.utc)  # naive is UTC
    assert decoded["day"] == "2024-01-02"


def test_dumps_is_compact_json() -> None:
    assert dumps({"a": [1, 2], "b": "c"}) == b'{"a":[1,2],"b":"c"}'


# -- include / exclude ----------------------------------------------------------------------------


def test_include_fields_keeps_only_listed_fields() -> None:
    event = mapper(include_fields=["total", "currency", "absent"]).map(
        {"id": 1, "userId": "u", "total": 5, "currency": "EUR", "secret": "x"}
    )
    assert event.body["properties"] == {"total": 5, "currency": "EUR"}
    assert event.body["userId"] == "u"  # ids are still read from the whole record


def test_exclude_fields_drops_listed_fields_from_traits() -> None:
    event = mapper("users", type="identify", exclude_fields=["password", "ssn"]).map(
        {"id": 1, "userId": "u", "password": "p", "ssn": "s", "name": "Ann"}
    )
    assert event.body["traits"] == {"id": 1, "userId": "u", "name": "Ann"}


def test_mapping_does_not_mutate_the_record() -> None:
    record = {"id": 1, "userId": "u", "nested": {"a": 1}}
    snapshot = json.loads(json.dumps(record))
    mapper(exclude_fields=["nested"]).map(record)
    mapper("users", type="identify").map(record)
    assert record == snapshot


# -- passthrough -------------------------------------------------------------------------------


def test_passthrough_keeps_fields_and_fills_in_what_is_missing() -> None:
    record = {
        "type": "track",
        "event": "Signed Up",
        "userId": "u-1",
        "messageId": "m-1",
        "timestamp": "2020-01-01T00:00:00.000Z",
        "sentAt": "2020-01-01T00:00:01.000Z",
        "properties": {"plan": "pro"},
        "context": {"ip": "1.2.3.4"},
        "integrations": {"All": True},
    }
    event = mapper("raw", type="passthrough").map(dict(record), "2024-01-01T00:00:00Z")
    body = event.body
    for key in ("type", "event", "userId", "messageId", "timestamp", "sentAt", "properties", "integrations"):
        assert body[key] == record[key], key
    assert body["context"] == {"ip": "1.2.3.4", "library": LIBRARY}
    assert event.name == "Signed Up"
    assert event.message_id == "m-1"
    assert "anonymousId" not in body
    assert record["context"] == {"ip": "1.2.3.4"}  # the record's context is not mutated


def test_passthrough_fills_every_required_field() -> None:
    record = {"type": "identify", "traits": {"email": "a@b.c"}}
    body = mapper("raw", type="passthrough", key_properties=()).map(dict(record), "2024-01-01T00:00:00Z").body
    assert body["type"] == "identify"
    assert body["traits"] == {"email": "a@b.c"}
    uuid.UUID(body["messageId"])
    assert parse_iso(body["timestamp"]) == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_iso(body["sentAt"]).tzinfo is not None
    assert body["anonymousId"]  # deterministic fallback: no user at all
    assert body["context"]["library"] == LIBRARY
    again = mapper("raw", type="passthrough", key_properties=()).map(dict(record), "2024-02-01T00:00:00Z").body
    assert again["messageId"] == body["messageId"]
    assert again["anonymousId"] == body["anonymousId"]


def test_passthrough_keeps_an_existing_context_library() -> None:
    lib = {"name": "analytics.js", "version": "4.0"}
    body = mapper("raw", type="passthrough").map({"type": "page", "userId": "u", "context": {"library": lib}}).body
    assert body["context"]["library"] == lib
    assert body["properties"] == {}


def test_passthrough_track_without_event_uses_the_configured_name() -> None:
    body = mapper("raw", type="passthrough", event="Imported").map({"userId": "u"}).body
    assert body["type"] == "track"
    assert body["event"] == "Imported"


def test_passthrough_treats_null_as_missing() -> None:
    m = mapper("raw", type="passthrough")
    body = m.map({"type": "track", "event": "E", "userId": "u", "sentAt": None, "properties": None}).body
    assert body["sentAt"]
    assert parse_iso(body["sentAt"]).tzinfo is not None
    assert body["properties"] == {}
    assert m.map({"type": "identify", "userId": "u", "traits": None}).body["traits"] == {}


def test_passthrough_with_unknown_type_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        mapper("raw", type="passthrough").map({"type": "purchase", "userId": "u"})
    assert "raw" in str(info.value)
    assert "purchase" in str(info.value)


# -- audiences: Segment format -----------------------------------------------------------------------

AUDIENCE = {"type": "audience", "audience_field": "audience", "member_field": "member"}


@pytest.mark.parametrize(
    ("name", "trait"),
    [
        ("High Value Customers", "high_value_customers"),
        ("order completed last 30 days", "order_completed_last_30_days"),
        ("HighValue", "high_value"),
        ("churn-risk", "churn_risk"),
    ],
)
def test_segment_audience_is_identify_with_snake_cased_trait(name: str, trait: str) -> None:
    event = mapper("audiences", **AUDIENCE).map({"id": 1, "userId": "u", "audience": name, "member": True})
    assert event.type == "identify"
    assert event.body["type"] == "identify"
    assert event.body["traits"] == {trait: True}
    assert event.body["userId"] == "u"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        (1, True),
        (0, False),
        ("entered", True),
        ("exited", False),
    ],
)
def test_segment_audience_membership_values(value: object, expected: bool) -> None:
    event = mapper("audiences", **AUDIENCE).map({"id": 1, "userId": "u", "audience": "VIP", "member": value})
    assert event.body["traits"] == {"vip": expected}


@pytest.mark.parametrize("value", ["maybe", 2, None, [True]])
def test_non_boolean_member_value_is_an_input_error(value: object) -> None:
    with pytest.raises(InputError) as info:
        mapper("audiences", **AUDIENCE).map({"id": 1, "userId": "u", "audience": "VIP", "member": value})
    assert "audiences" in str(info.value)
    assert "member" in str(info.value)


def test_missing_audience_name_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        mapper("audiences", **AUDIENCE).map({"id": 1, "userId": "u", "member": True})
    assert "audiences" in str(info.value)
    assert "audience" in str(info.value)


# -- audiences: mParticle format -------------------------------------------------------------------

MPARTICLE = {**AUDIENCE, "audience_format": "mparticle", "audience_id_field": "audience_id"}
MPARTICLE_KEYS = {"AudienceName", "AudienceId", "IsMember", "UserIdentities", "MembershipChangedTimestamp"}


def test_mparticle_audience_has_exactly_the_mparticle_keys() -> None:
    record = {"id": 1, "userId": "p.fogg138", "audience": "LowEngagement", "audience_id": 123123, "member": True}
    body = mapper("audiences", **MPARTICLE).map(record).body
    assert set(body) == MPARTICLE_KEYS
    assert body["AudienceName"] == "LowEngagement"
    assert body["AudienceId"] == 123123
    assert body["IsMember"] is True
    assert body["UserIdentities"] == {"CustomerId": "p.fogg138"}
    assert json.loads(dumps(body)).keys() == MPARTICLE_KEYS


def test_mparticle_is_member_false() -> None:
    body = mapper("audiences", **MPARTICLE).map({"id": 1, "userId": "u", "audience": "A", "member": "exit"}).body
    assert body["IsMember"] is False


def test_mparticle_default_identity_fields_take_email_when_present() -> None:
    body = (
        mapper("audiences", **MPARTICLE)
        .map({"id": 1, "userId": "u", "email": "a@b.c", "audience": "A", "member": True})
        .body
    )
    assert body["UserIdentities"] == {"CustomerId": "u", "Email": "a@b.c"}


def test_mparticle_identity_fields_setting() -> None:
    m = mapper("audiences", **MPARTICLE, identity_fields={"Email": "mail", "Other": "crm_id"})
    body = m.map(
        {"id": 1, "userId": "u", "mail": "x@y.z", "crm_id": "C9", "email": "ignored@b.c", "audience": "A", "member": 1}
    ).body
    assert body["UserIdentities"] == {"CustomerId": "u", "Email": "x@y.z", "Other": "C9"}


def test_mparticle_without_user_id_has_no_customer_id() -> None:
    body = mapper("audiences", **MPARTICLE).map({"id": 1, "email": "a@b.c", "audience": "A", "member": True}).body
    assert body["UserIdentities"] == {"Email": "a@b.c"}


def test_mparticle_membership_timestamp_is_unix_seconds_text_from_timestamp_field() -> None:
    m = mapper("audiences", **MPARTICLE, timestamp_field="changed_at")
    body = m.map({"id": 1, "userId": "u", "audience": "A", "member": True, "changed_at": "2024-01-02T03:04:05Z"}).body
    expected = int(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp())
    assert body["MembershipChangedTimestamp"] == str(expected)


def test_mparticle_membership_timestamp_defaults_to_now() -> None:
    body = (
        mapper("audiences", clock=NOW, **MPARTICLE).map({"id": 1, "userId": "u", "audience": "A", "member": True}).body
    )
    stamp = body["MembershipChangedTimestamp"]
    assert isinstance(stamp, str)
    assert stamp.isdigit()
    assert int(stamp) == int(NOW)


# -- EventSpec.from_setting -----------------------------------------------------------------------


def test_from_setting_defaults_to_track() -> None:
    spec = EventSpec.from_setting("s", {})
    assert spec.type == "track"
    assert spec.audience_format == "segment"


def test_from_setting_type_is_case_insensitive() -> None:
    assert EventSpec.from_setting("s", {"type": "Identify"}).type == "identify"


def test_from_setting_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError) as info:
        EventSpec.from_setting("orders", {"type": "track", "evnt_field": "x"})
    assert "orders" in str(info.value)
    assert "evnt_field" in str(info.value)


@pytest.mark.parametrize("bad", ["trak", "purchase", ""])
def test_from_setting_rejects_bad_type(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        EventSpec.from_setting("orders", {"type": bad})
    assert "orders" in str(info.value)
    assert "type" in str(info.value)


def test_from_setting_rejects_bad_audience_format() -> None:
    with pytest.raises(ConfigError):
        EventSpec.from_setting("a", {**AUDIENCE, "audience_format": "braze"})


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "audience"},
        {"type": "audience", "audience_field": "name"},
        {"type": "audience", "member_field": "member"},
    ],
)
def test_from_setting_rejects_audience_without_fields(raw: dict) -> None:
    with pytest.raises(ConfigError) as info:
        EventSpec.from_setting("aud", raw)
    assert "aud" in str(info.value)


def test_from_setting_rejects_include_and_exclude_together() -> None:
    with pytest.raises(ConfigError) as info:
        EventSpec.from_setting("orders", {"include_fields": ["a"], "exclude_fields": ["b"]})
    assert "include_fields" in str(info.value)
    assert "exclude_fields" in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        "track",
        {"include_fields": "a,b"},
        {"include_fields": [1, 2]},
        {"event_field": 5},
        {"identity_fields": ["Email"]},
    ],
)
def test_from_setting_rejects_wrong_value_types(raw: object) -> None:
    with pytest.raises(ConfigError):
        EventSpec.from_setting("orders", raw)


def test_message_id_ignores_tap_bookkeeping_fields() -> None:
    """`_sdc_*` columns (file mtimes, extraction times) change between runs of the same data;
    a replay must still produce the same messageId."""
    schema = {"properties": {"id": {"type": "integer"}, "_sdc_last_modified": {"type": "string"}}}
    mapper = EventMapper("s", EventSpec(), key_properties=["id"], schema=schema)
    first = mapper.map({"id": 1, "user_id": "u", "_sdc_last_modified": "2026-01-01T00:00:00Z"})
    again = mapper.map({"id": 1, "user_id": "u", "_sdc_last_modified": "2026-02-02T00:00:00Z"})
    changed = mapper.map({"id": 1, "user_id": "u2", "_sdc_last_modified": "2026-02-02T00:00:00Z"})
    assert first.message_id == again.message_id
    assert changed.message_id != first.message_id


def test_deterministic_id_is_a_standard_uuid5() -> None:
    """Our fast path must give exactly what uuid.uuid5 gives, or stored ids would change."""
    from target_kinesis.events.ids import NAMESPACE, deterministic_id
    from target_kinesis.events.serialize import canonical

    parts = ("orders", [7], {"total": 1.5, "name": "é"})
    assert deterministic_id(*parts) == str(uuid.uuid5(NAMESPACE, canonical(parts).decode()))


# -- ids that are objects or lists ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [{"id": 7}, [7], []])
def test_a_user_id_that_is_an_object_or_list_is_no_id_and_is_flagged(value: object) -> None:
    event = mapper("users", type="identify").map({"id": 1, "userId": value})
    assert "userId" not in event.body and event.user_id is None
    assert event.body["anonymousId"] == event.anonymous_id, "anonymous, as the SPEC gives an event without a user"
    assert event.id_not_text
    raw = mapper("raw", type="passthrough").map({"type": "track", "event": "E", "userId": value, "anonymousId": "a"})
    assert "userId" not in raw.body and raw.body["anonymousId"] == "a" and raw.id_not_text


def test_ids_that_are_text_numbers_or_missing_are_not_flagged() -> None:
    for record in ({"id": 1, "userId": "u"}, {"id": 1, "userId": 42}, {"id": 1}, {"id": 1, "userId": None}):
        assert not mapper("users", type="identify").map(record).id_not_text
    assert mapper("a", anonymous_id_field="anon").map({"id": 1, "anon": {"x": 1}}).id_not_text
