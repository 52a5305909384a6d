"""From a Singer record to a Segment-spec event (pure: no I/O, no AWS).

The shape of what lands in a stream is a public interface, so every rule of the SPEC's
`events` table lives here and nowhere else. Ids are derived deterministically from the
input, so replaying a tail of input after a crash produces the same messageIds and
consumers can drop the duplicates.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from target_kinesis import __version__
from target_kinesis.config.events import EVENT_TYPES, EventSpec
from target_kinesis.errors import InputError
from target_kinesis.events.event import Event
from target_kinesis.events.ids import deterministic_id
from target_kinesis.events.timestamps import is_iso_text, to_iso, to_unix_seconds

#: Where an event type carries its record fields, as Segment's libraries build them.
_PAYLOAD_KEY = {
    "track": "properties",
    "page": "properties",
    "screen": "properties",
    "identify": "traits",
    "group": "traits",
}

_LIBRARY = {"name": "target-kinesis", "version": __version__}
_CONTEXT = {"library": _LIBRARY}

_TRUE = frozenset({"true", "t", "yes", "y", "1", "enter", "entered", "add", "added", "member", "in"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "exit", "exited", "remove", "removed", "nonmember", "out"})


def snake_case(name: str) -> str:
    """Segment's trait name for an audience: 'Order Completed Last30Days' -> 'order_completed_last30_days'."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    text = re.sub(r"[^0-9A-Za-z]+", "_", text)
    return text.strip("_").lower()


def _id_text(value: Any) -> str | None:
    """Segment ids are strings; numbers from a database become their text."""
    if type(value) is str:  # the usual case, first
        return value or None
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text or None


def _not_an_id(text: str | None, raw: Any) -> bool:
    """An id field that held an object or a list (`_id_text` found no id in it)."""
    return text is None and isinstance(raw, (dict, list))


def _is_date_time(prop: Any) -> bool:
    """Whether a schema property is a date-time (also as one option of anyOf). Any value is
    accepted: with validation off, a schema's properties are not checked to be schemas."""
    if not isinstance(prop, Mapping):
        return False
    if prop.get("format") == "date-time":
        return True
    options = prop.get("anyOf")
    return isinstance(options, list) and any(_is_date_time(option) for option in options)


class EventMapper:
    """Builds the events of one Singer stream; one instance per stream and schema."""

    def __init__(
        self,
        stream: str,
        spec: EventSpec,
        *,
        key_properties: Sequence[str] = (),
        schema: Mapping[str, Any] | None = None,
        replication_key: str | None = None,
        clock: Any = None,
    ) -> None:
        self.stream = stream
        self.spec = spec
        self.key_properties = tuple(key_properties)
        properties = (schema or {}).get("properties", {})
        self.timestamp_field = spec.timestamp_field or (
            replication_key if replication_key and _is_date_time(properties.get(replication_key)) else None
        )
        # Tap bookkeeping (`_sdc_*`: file mtimes, extraction times) changes between runs
        # of the same data; it must not change the ids a replay produces.
        self._volatile = tuple(name for name in properties if name.startswith("_sdc_"))
        self._clock = clock or time.time
        self._keys_only = spec.message_id == "keys"
        if self._keys_only and not self.key_properties:
            # Every record of the stream would get the same id, and consumers would drop all but one.
            raise InputError(
                f"stream '{stream}': events.{stream}.message_id is keys, but its SCHEMA declares no key_properties "
                "(set key_properties in the tap, or message_id: content)"
            )
        self._now_second = -1
        self._now_text = ""
        self._plan_map()

    # -- small helpers -------------------------------------------------------------

    def _now(self) -> str:
        """The current time as ISO text, computed once per second of wall time.

        Millisecond precision for sentAt costs a datetime per record; a sent-at that is
        at most one second early is within what Segment's own batching produces.
        """
        now = self._clock()
        second = int(now)
        if second != self._now_second:
            self._now_second = second
            self._now_text = dt.datetime.fromtimestamp(second, dt.timezone.utc).isoformat().replace("+00:00", ".000Z")
        return self._now_text

    def _field(self, record: Mapping[str, Any], configured: str | None, *defaults: str) -> Any:
        if configured:
            return record.get(configured)
        for name in defaults:
            value = record.get(name)
            if value is not None:
                return value
        return None

    def _keys(self, record: Mapping[str, Any]) -> list[Any]:
        return list(map(record.get, self.key_properties))

    def _message_id(self, record: Mapping[str, Any]) -> str:
        if self.spec.message_id_field:
            value = _id_text(record.get(self.spec.message_id_field))
            if value:
                return value
        keys = list(map(record.get, self.key_properties))  # _keys(record), once per record
        if self._keys_only:
            return deterministic_id(self.stream, keys)
        return deterministic_id(self.stream, keys, self._content(record) if self._volatile else record)

    def _content(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self._volatile:
            return record
        return {name: value for name, value in record.items() if name not in self._volatile}

    def _anonymous_fallback(self, record: Mapping[str, Any]) -> str:
        """An anonymousId for a record with no user: stable per stream and primary key."""
        if self.key_properties:
            return deterministic_id("anonymousId", self.stream, self._keys(record))
        return deterministic_id("anonymousId", self.stream, self._content(record))

    def _timestamp(self, record: Mapping[str, Any], time_extracted: Any) -> tuple[str, bool]:
        """The event's timestamp, and whether the record's own value was there but not a
        date-time (then replaced: a consumer must be able to parse every timestamp)."""
        replaced = False
        if self.timestamp_field:
            raw = record.get(self.timestamp_field)
            value = to_iso(raw)
            if value:
                return value, False
            replaced = raw is not None and raw != ""
        return to_iso(time_extracted) or self._now(), replaced

    def _fields(self, record: dict[str, Any]) -> dict[str, Any]:
        spec = self.spec
        if spec.include_fields is not None:
            return {name: record[name] for name in spec.include_fields if name in record}
        if spec.exclude_fields is not None:
            excluded = spec.exclude_fields
            return {name: value for name, value in record.items() if name not in excluded}
        # The record itself: it is ours (parsed for this event alone), and the privacy
        # switches copy any container before they change it.
        return record

    # -- the mapping ---------------------------------------------------------------

    def map(self, record: dict[str, Any], time_extracted: Any = None) -> Event:
        """One Singer record -> one event. Raises InputError naming the field at fault.

        The hot path of a run (once per record): written out here rather than through the
        helpers above, with what depends only on the stream's spec decided once in
        `_plan_map`. Each inlined step says which helper it stands for and takes the
        helper's own path for any value but the usual (text, or nothing);
        tests/unit/events/test_mapper_fast_path.py holds it to the helpers.
        """
        if self._passthrough_spec:
            return self._passthrough(record, time_extracted)
        get = record.get
        # _field(record, spec.user_id_field, "userId", "user_id"), then _id_text and _not_an_id.
        raw_user = get(self._user_field)
        if raw_user is None and self._user_default is not None:
            raw_user = get(self._user_default)
        raw_anonymous = get(self._anonymous_field)
        if raw_anonymous is None and self._anonymous_default is not None:
            raw_anonymous = get(self._anonymous_default)
        id_not_text = False
        if type(raw_user) is str:
            user_id: str | None = raw_user or None
        elif raw_user is None:
            user_id = None
        else:
            user_id = _id_text(raw_user)
            id_not_text = _not_an_id(user_id, raw_user)
        if type(raw_anonymous) is str:
            anonymous_id: str | None = raw_anonymous or None
        elif raw_anonymous is None:
            anonymous_id = None
        else:
            anonymous_id = _id_text(raw_anonymous)
            id_not_text = id_not_text or _not_an_id(anonymous_id, raw_anonymous)
        if self._derived_id:  # _message_id(record), which it is for the streams without message_id_field
            keys = list(map(get, self.key_properties))
            if self._keys_only:
                message_id = deterministic_id(self.stream, keys)
            else:
                message_id = deterministic_id(self.stream, keys, self._content(record) if self._volatile else record)
        else:
            message_id = self._message_id(record)
        if self._mparticle_spec:
            return self._mparticle(record, user_id, anonymous_id, message_id, id_not_text)
        # _timestamp(record, time_extracted), with to_iso's ISO-text check for text values.
        timestamp: str | None = None
        timestamp_replaced = False
        timestamp_field = self.timestamp_field
        if timestamp_field:
            raw = get(timestamp_field)
            if type(raw) is str:
                if raw:
                    if is_iso_text(raw):
                        timestamp = raw
                    else:
                        timestamp_replaced = True
            else:
                timestamp = to_iso(raw)
                timestamp_replaced = not timestamp and raw is not None
        if not timestamp:
            timestamp = to_iso(time_extracted) or self._now()
        if not user_id and not anonymous_id:
            anonymous_id = self._anonymous_fallback(record)

        event_type = self._event_type
        body: dict[str, Any] = {"type": event_type}
        name: str | None = None
        if event_type == "track":
            name = self._event_name(record) if self._constant_name is None else self._constant_name
            body["event"] = name
        if user_id:
            body["userId"] = user_id
        if anonymous_id:
            body["anonymousId"] = anonymous_id
        body["messageId"] = message_id
        body["timestamp"] = timestamp
        if int(self._clock()) == self._now_second:  # _now(), without its call within the second
            body["sentAt"] = self._now_text
        else:
            body["sentAt"] = self._now()
        body["context"] = _CONTEXT  # shared and never mutated (privacy switches copy first)

        payload = self._payload
        if payload is not None:  # properties (track, page, screen) or traits (identify, group)
            if self._page_name_field:
                page_name = get(self._page_name_field)
                if page_name is not None:
                    body["name"] = str(page_name)
            if event_type == "group":
                body["groupId"] = self._required_id(record, self.spec.group_id_field, "group_id_field")
            body[payload] = self._fields(record) if self._select_fields else record
        elif self._audience_spec:
            body["traits"] = {snake_case(self._audience_name(record)): self._is_member(record)}
        elif event_type == "alias":
            body["previousId"] = self._required_id(record, self.spec.previous_id_field, "previous_id_field")
        return Event(body, event_type, name, message_id, user_id, anonymous_id, timestamp_replaced, id_not_text)

    def _plan_map(self) -> None:
        """What `map` decides once per stream: which fields hold the ids, the event type,
        where the record's fields go."""
        spec = self.spec
        self._passthrough_spec = spec.type == "passthrough"
        self._audience_spec = spec.type == "audience"
        self._mparticle_spec = self._audience_spec and spec.audience_format == "mparticle"
        # _field: the configured field alone, else the first of the defaults holding a value.
        self._user_field = spec.user_id_field or "userId"
        self._user_default = None if spec.user_id_field else "user_id"
        self._anonymous_field = spec.anonymous_id_field or "anonymousId"
        self._anonymous_default = None if spec.anonymous_id_field else "anonymous_id"
        self._event_type = "identify" if self._audience_spec else spec.type
        self._payload: str | None = None
        if not self._audience_spec:
            self._payload = {"track": "properties", "page": "properties", "screen": "properties"}.get(
                spec.type, "traits" if spec.type in ("identify", "group") else None
            )
        self._page_name_field = spec.name_field if spec.type in ("page", "screen") else None
        self._select_fields = spec.include_fields is not None or spec.exclude_fields is not None
        self._derived_id = not spec.message_id_field
        #: _event_name's answer when it depends on no field of the record.
        self._constant_name = None if spec.event_field else (spec.event or self.stream)

    def _event_name(self, record: Mapping[str, Any]) -> str:
        if self.spec.event_field:
            value = record.get(self.spec.event_field)
            if value is None or value == "":
                raise InputError(
                    f"stream '{self.stream}': record has no value in event_field '{self.spec.event_field}'"
                )
            return str(value)
        return self.spec.event or self.stream

    def _required_id(self, record: Mapping[str, Any], field_name: str | None, setting: str) -> str:
        if not field_name:
            raise InputError(f"stream '{self.stream}': events.{self.stream}.{setting} is required for {self.spec.type}")
        value = _id_text(record.get(field_name))
        if not value:
            raise InputError(f"stream '{self.stream}': record has no value in {setting} '{field_name}'")
        return value

    def _audience_name(self, record: Mapping[str, Any]) -> str:
        value = record.get(self.spec.audience_field or "")
        if value is None or value == "":
            raise InputError(
                f"stream '{self.stream}': record has no value in audience_field '{self.spec.audience_field}'"
            )
        return str(value)

    def _is_member(self, record: Mapping[str, Any]) -> bool:
        value = record.get(self.spec.member_field or "")
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float, Decimal)) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower() if value is not None else ""
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InputError(
            f"stream '{self.stream}': member_field '{self.spec.member_field}' must be a boolean "
            "(true/false, enter/exit, added/removed)"
        )

    def _mparticle(
        self,
        record: Mapping[str, Any],
        user_id: str | None,
        anonymous_id: str | None,
        message_id: str,
        id_not_text: bool,
    ) -> Event:
        spec = self.spec
        identities: dict[str, Any] = {}
        if user_id:
            identities["CustomerId"] = user_id
        identity_fields = spec.identity_fields
        if identity_fields is None:
            identity_fields = {"Email": "email"} if "email" in record else {}
        for identity, field_name in identity_fields.items():
            value = record.get(field_name)
            if value is not None:
                identities[identity] = value
        # SPEC: from timestamp_field, else now (not the replication key of track events).
        seconds = to_unix_seconds(record.get(spec.timestamp_field)) if spec.timestamp_field else None
        if seconds is None:
            seconds = int(self._clock())
        audience_id = record.get(spec.audience_id_field) if spec.audience_id_field else None
        body = {
            "AudienceName": self._audience_name(record),
            "AudienceId": audience_id,
            "IsMember": self._is_member(record),
            "UserIdentities": identities,
            "MembershipChangedTimestamp": str(seconds),
        }
        return Event(body, "audience", None, message_id, user_id, anonymous_id, id_not_text=id_not_text)

    def _passthrough(self, record: dict[str, Any], time_extracted: Any) -> Event:
        """The record already is a Segment event: keep its fields, fill in what is missing."""
        spec = self.spec
        body = dict(record)
        event_type = str(body.get("type") or "track").lower()
        if event_type not in EVENT_TYPES:
            raise InputError(
                f"stream '{self.stream}': passthrough record has type '{event_type}', "
                f"expected one of {', '.join(EVENT_TYPES)}"
            )
        body["type"] = event_type
        name: str | None = None
        if event_type == "track":
            name = _id_text(body.get("event")) or self._event_name(record)
            body["event"] = name
        message_id = _id_text(body.get("messageId")) or self._message_id(record)
        body["messageId"] = message_id
        own_user, own_anonymous = body.get("userId"), body.get("anonymousId")
        raw_user = self._field(record, spec.user_id_field, "user_id")
        raw_anonymous = self._field(record, spec.anonymous_id_field, "anonymous_id")
        user_id = _id_text(own_user) or _id_text(raw_user)
        anonymous_id = _id_text(own_anonymous) or _id_text(raw_anonymous)
        id_not_text = (user_id is None and (_not_an_id(None, own_user) or _not_an_id(None, raw_user))) or (
            anonymous_id is None and (_not_an_id(None, own_anonymous) or _not_an_id(None, raw_anonymous))
        )
        if user_id is None and _not_an_id(None, own_user):  # an object or a list is sent on as no id
            del body["userId"]
        if anonymous_id is None and _not_an_id(None, own_anonymous):
            del body["anonymousId"]
        if not user_id and not anonymous_id:
            anonymous_id = self._anonymous_fallback(record)
        if user_id:
            body["userId"] = user_id
        if anonymous_id:
            body["anonymousId"] = anonymous_id
        timestamp = to_iso(body.get("timestamp"))
        timestamp_replaced = False
        if timestamp is None:
            timestamp, timestamp_replaced = self._timestamp(record, time_extracted)
            timestamp_replaced = timestamp_replaced or body.get("timestamp") not in (None, "")
        body["timestamp"] = timestamp
        if not body.get("sentAt"):  # a null sentAt is missing too: every event carries one
            body["sentAt"] = self._now()
        context = body.get("context")
        context = dict(context) if isinstance(context, Mapping) else {}
        context.setdefault("library", dict(_LIBRARY))
        body["context"] = context
        payload = _PAYLOAD_KEY.get(event_type)
        if payload and body.get(payload) is None:  # a null payload is missing too
            body[payload] = {}
        return Event(body, event_type, name, message_id, user_id, anonymous_id, timestamp_replaced, id_not_text)
