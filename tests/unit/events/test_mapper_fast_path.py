"""EventMapper.map is written out for speed (once per record); this holds it to the clear
version: the same steps through the mapper's own helpers (`_field`, `_id_text`,
`_message_id`, `_timestamp`, `_event_name`, `_now`, `_fields`), in the same order. Drawn:
specs of every type, and records whose id, timestamp and name fields hold values of every
kind (text, empty, numbers, booleans, objects, lists, Decimals, nothing at all). And the
JSON the hot paths write first without OPT_NON_STR_KEYS is the JSON `dumps` and `canonical`
write.
"""

from __future__ import annotations

import datetime as dt
import typing as t
import uuid
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_kinesis.config.events import EventSpec
from target_kinesis.errors import InputError
from target_kinesis.events import mapper as mapper_module
from target_kinesis.events.event import Event
from target_kinesis.events.ids import NAMESPACE, deterministic_id
from target_kinesis.events.mapper import EventMapper, snake_case
from target_kinesis.events.serialize import (
    CANONICAL_OPTS,
    JSON_OPTS,
    TEXT_KEYS_CANONICAL_OPTS,
    TEXT_KEYS_JSON_OPTS,
    canonical,
    canonical_default,
    json_default,
)


def clear_map(m: EventMapper, record: dict[str, t.Any], time_extracted: t.Any) -> Event:
    """EventMapper.map as it reads through its helpers (the version before it was inlined)."""
    spec = m.spec
    if spec.type == "passthrough":
        return m._passthrough(record, time_extracted)
    raw_user = m._field(record, spec.user_id_field, "userId", "user_id")
    raw_anonymous = m._field(record, spec.anonymous_id_field, "anonymousId", "anonymous_id")
    user_id = mapper_module._id_text(raw_user)
    anonymous_id = mapper_module._id_text(raw_anonymous)
    id_not_text = mapper_module._not_an_id(user_id, raw_user) or mapper_module._not_an_id(anonymous_id, raw_anonymous)
    message_id = m._message_id(record)
    if spec.type == "audience" and spec.audience_format == "mparticle":
        return m._mparticle(record, user_id, anonymous_id, message_id, id_not_text)
    timestamp, timestamp_replaced = m._timestamp(record, time_extracted)
    if not user_id and not anonymous_id:
        anonymous_id = m._anonymous_fallback(record)
    event_type = "identify" if spec.type == "audience" else spec.type
    body: dict[str, t.Any] = {"type": event_type}
    name: str | None = None
    if event_type == "track":
        name = m._event_name(record)
        body["event"] = name
    if user_id:
        body["userId"] = user_id
    if anonymous_id:
        body["anonymousId"] = anonymous_id
    body["messageId"] = message_id
    body["timestamp"] = timestamp
    body["sentAt"] = m._now()
    body["context"] = mapper_module._CONTEXT
    if spec.type == "audience":
        body["traits"] = {snake_case(m._audience_name(record)): m._is_member(record)}
    elif event_type in ("track", "page", "screen"):
        if event_type != "track" and spec.name_field:
            page_name = record.get(spec.name_field)
            if page_name is not None:
                body["name"] = str(page_name)
        body["properties"] = m._fields(record)
    elif event_type in ("identify", "group"):
        if event_type == "group":
            body["groupId"] = m._required_id(record, spec.group_id_field, "group_id_field")
        body["traits"] = m._fields(record)
    elif event_type == "alias":
        body["previousId"] = m._required_id(record, spec.previous_id_field, "previous_id_field")
    return Event(body, event_type, name, message_id, user_id, anonymous_id, timestamp_replaced, id_not_text)


ANY_VALUE = st.one_of(
    st.none(),
    st.sampled_from(["", "u-1", "x" * 300, "Zoë", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00z", "2024-01-01"]),
    st.sampled_from(["2024-01-01T10:00:00+02:00", "2024-13-01T00:00:00Z", "not a date", "Z", "true", "enter"]),
    st.text(max_size=8),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 1_700_000_000, 1_700_000_000_123, 10**30]),
    st.floats(allow_nan=False),
    st.sampled_from([Decimal("7"), Decimal("7.5"), Decimal("1700000000.25")]),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
)
FIELDS = ["id", "userId", "user_id", "anonymousId", "anonymous_id", "uid", "aid", "ts", "name", "grp", "prev"]
FIELDS += ["aud", "member", "mid", "email", "_sdc_extracted_at"]
RECORDS = st.dictionaries(st.sampled_from(FIELDS), ANY_VALUE, max_size=10)
SPECS = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "audience", "passthrough"])},
    optional={
        "event": st.just("Order Completed"),
        "event_field": st.just("name"),
        "user_id_field": st.sampled_from(["uid", "email"]),
        "anonymous_id_field": st.just("aid"),
        "timestamp_field": st.just("ts"),
        "message_id_field": st.just("mid"),
        "message_id": st.sampled_from(["content", "keys"]),
        "group_id_field": st.just("grp"),
        "previous_id_field": st.just("prev"),
        "name_field": st.just("name"),
        "include_fields": st.just(["id", "email", "ts"]),
        "audience_field": st.just("aud"),
        "member_field": st.just("member"),
        "audience_format": st.sampled_from(["segment", "mparticle"]),
    },
)
SCHEMA = {"properties": {"ts": {"type": ["string", "null"], "format": "date-time"}, "_sdc_extracted_at": {}}}


def outcome(map_: t.Callable[[], Event]) -> tuple[t.Any, ...]:
    try:
        event = map_()
    except InputError as exc:
        return ("error", str(exc))
    return ("event", event.body, event.type, event.name, event.message_id, event.user_id, event.anonymous_id,
            event.timestamp_replaced, event.id_not_text)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    spec=SPECS,
    record=RECORDS,
    time_extracted=st.sampled_from([None, "2024-02-02T00:00:00Z", "bad", 5]),
    key_properties=st.sampled_from([(), ("id",), ("id", "email")]),
    replication_key=st.sampled_from([None, "ts"]),
    seconds=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_map_makes_what_its_helpers_make(
    spec: dict[str, t.Any],
    record: dict[str, t.Any],
    time_extracted: t.Any,
    key_properties: tuple[str, ...],
    replication_key: str | None,
    seconds: float,
) -> None:
    if spec["type"] == "audience":
        spec = {**spec, "audience_field": "aud", "member_field": "member"}
    try:
        event_spec = EventSpec.from_setting("s", spec)
        clock = [1_700_000_000.25]
        m = EventMapper(
            "s", event_spec, key_properties=key_properties, schema=SCHEMA, replication_key=replication_key,
            clock=lambda: clock[0],
        )  # fmt: skip
    except Exception:
        return  # a spec or stream the target refuses at start-up
    fast = outcome(lambda: m.map(dict(record), time_extracted))
    clock[0] += seconds  # sentAt: the cached second and a new one
    twin = EventMapper(
        "s", event_spec, key_properties=key_properties, schema=SCHEMA, replication_key=replication_key,
        clock=lambda: clock[0] - seconds,
    )  # fmt: skip
    assert fast == outcome(lambda: clear_map(twin, dict(record), time_extracted))
    again = outcome(lambda: m.map(dict(record), time_extracted))  # its sentAt cache, maybe a second later
    assert again == outcome(lambda: clear_map(m, dict(record), time_extracted))


# -- the JSON of the hot paths: tried without OPT_NON_STR_KEYS first ----------------------------

TEXT_KEYED = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from([Decimal("2.50"), Decimal("1234567890.12345678901234"), Decimal("1e3")])
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(value=TEXT_KEYED)
def test_text_keyed_values_are_written_alike_without_non_str_keys(value: t.Any) -> None:
    for fast, full, default in (
        (TEXT_KEYS_JSON_OPTS, JSON_OPTS, json_default),
        (TEXT_KEYS_CANONICAL_OPTS, CANONICAL_OPTS, canonical_default),
    ):
        assert orjson.dumps(value, default=default, option=fast) == orjson.dumps(value, default=default, option=full)


def test_keys_that_are_not_text_take_the_full_way() -> None:
    parts = ("s", [1], {1: "a", "b": {dt.date(2024, 1, 1): 2}})
    assert deterministic_id(*parts) == str(uuid.uuid5(NAMESPACE, canonical(parts).decode()))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(parts, option=TEXT_KEYS_CANONICAL_OPTS)
