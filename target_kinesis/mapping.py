"""From a Singer record to a Segment-spec event (pure: no I/O, no AWS).

The shape of what lands in a stream is a public interface, so every rule of the SPEC's
`events` table lives here and nowhere else. Ids are derived deterministically from the
input, so replaying a tail of input after a crash produces the same messageIds and
consumers can drop the duplicates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from target_kinesis import __version__
from target_kinesis.errors import ConfigError, InputError

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
SPEC_TYPES = (*EVENT_TYPES, "passthrough", "audience")
AUDIENCE_FORMATS = ("segment", "mparticle")
#: Where an event type carries its record fields, as Segment's libraries build them.
_PAYLOAD_KEY = {
    "track": "properties",
    "page": "properties",
    "screen": "properties",
    "identify": "traits",
    "group": "traits",
}

#: Fixed namespace: changing it would change every messageId users have stored.
_NAMESPACE = uuid.UUID("6f1f6a5e-2b7c-4c1e-9a55-7a1d3c0b5e11")
_LIBRARY = {"name": "target-kinesis", "version": __version__}
_CONTEXT = {"library": _LIBRARY}

_TRUE = frozenset({"true", "t", "yes", "y", "1", "enter", "entered", "add", "added", "member", "in"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "exit", "exited", "remove", "removed", "nonmember", "out"})


@dataclass(frozen=True)
class EventSpec:
    """How one Singer stream becomes events (one value of the `events` setting)."""

    type: str = "track"
    event: str | None = None
    event_field: str | None = None
    user_id_field: str | None = None
    anonymous_id_field: str | None = None
    timestamp_field: str | None = None
    message_id_field: str | None = None
    group_id_field: str | None = None
    previous_id_field: str | None = None
    name_field: str | None = None
    include_fields: tuple[str, ...] | None = None
    exclude_fields: tuple[str, ...] | None = None
    audience_field: str | None = None
    member_field: str | None = None
    audience_id_field: str | None = None
    audience_format: str = "segment"
    identity_fields: Mapping[str, str] | None = None

    @classmethod
    def from_setting(cls, stream: str, raw: Any) -> EventSpec:
        """Validate one `events` entry; the error names the stream and the key."""
        where = f"events.{stream}"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"setting '{where}' must be an object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"setting '{where}' has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if value is None:
                continue
            if key in ("include_fields", "exclude_fields"):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"setting '{where}.{key}' must be a list of field names")
                values[key] = tuple(value)
            elif key == "identity_fields":
                if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
                    raise ConfigError(f"setting '{where}.identity_fields' must map identity names to field names")
                values[key] = dict(value)
            elif not isinstance(value, str) or not value:
                raise ConfigError(f"setting '{where}.{key}' must be a non-empty string")
            else:
                values[key] = value
        for key in ("type", "audience_format"):
            if key in values:
                values[key] = values[key].lower()
        spec = cls(**values)
        if spec.type not in SPEC_TYPES:
            raise ConfigError(f"setting '{where}.type' must be one of {', '.join(SPEC_TYPES)}")
        if spec.audience_format not in AUDIENCE_FORMATS:
            raise ConfigError(f"setting '{where}.audience_format' must be one of {', '.join(AUDIENCE_FORMATS)}")
        if spec.type == "audience" and not (spec.audience_field and spec.member_field):
            raise ConfigError(f"setting '{where}': type audience needs audience_field and member_field")
        if spec.include_fields is not None and spec.exclude_fields is not None:
            raise ConfigError(f"setting '{where}': use include_fields or exclude_fields, not both")
        return spec


@dataclass(slots=True)
class Event:
    """A finished event and the facts routing and partitioning need about it."""

    body: dict[str, Any]
    type: str
    name: str | None
    message_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    #: The record's timestamp_field value was not a date-time and was replaced (counted).
    timestamp_replaced: bool = False


def json_default(value: Any) -> Any:
    """Serialize the types singer-sdk hands sinks without changing their value.

    A Decimal (a line holding a number a double cannot represent is parsed with Decimal
    throughout) is written as orjson writes the same number read as a float (`2.50` as
    `2.5`, `1e3` as `1000.0`) when a double holds it exactly, so a number's form does not
    depend on what else its line holds; otherwise with the digits it was read with. NaN
    and infinities are not JSON, so they become null as JSON encoders do.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        as_float = float(value)
        if Decimal(repr(as_float)) == value:
            return as_float
        return orjson.Fragment(str(value).encode())
    return _other_default(value)


def _canonical_default(value: Any) -> Any:
    """As `json_default`, but a Decimal keeps its text: messageIds derived from it must stay
    what earlier versions derived, so replays keep their ids."""
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode()) if value.is_finite() else None
    return _other_default(value)


def _other_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot serialize {type(value).__name__}")


#: orjson writes containers at most this deep (its limit, not ours to raise).
MAX_DEPTH = 254
_JSON_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Compact JSON for what is written to a stream."""
    return _json(value, _JSON_OPTS, json_default)


def _canonical(value: Any) -> bytes:
    return _json(value, _CANONICAL_OPTS, _canonical_default)


_CANONICAL_OPTS = _JSON_OPTS | orjson.OPT_SORT_KEYS


def _json(value: Any, option: int, default: Callable[[Any], Any]) -> bytes:
    try:
        return orjson.dumps(value, default=default, option=option)
    except orjson.JSONEncodeError as exc:
        reason = str(exc)
    if "64-bit" not in reason:
        raise _unwritable(reason)
    try:
        return orjson.dumps(_exact_big_ints(value), default=default, option=option)
    except RecursionError:
        raise _unwritable("Recursion limit reached") from None
    except orjson.JSONEncodeError as exc:
        raise _unwritable(str(exc)) from None


def _unwritable(reason: str) -> InputError:
    """A record JSON output cannot hold, as the one line an operator reads."""
    if "ecursion" in reason:
        return InputError(f"record is nested more than {MAX_DEPTH} levels deep, deeper than JSON output allows")
    if "surrogate" in reason:
        return InputError("record holds a lone surrogate escape (\\ud800-\\udfff), which is not valid Unicode")
    return InputError(f"record cannot be written as JSON ({reason.split(chr(10), 1)[0]})")


def _exact_big_ints(value: Any) -> Any:
    """orjson refuses integers beyond 64 bits (and never asks `default`); write their digits."""
    if isinstance(value, dict):
        return {k: _exact_big_ints(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_exact_big_ints(v) for v in value]
    if type(value) is int and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value).encode())
    return value


_NAMESPACE_SHA1 = hashlib.sha1(_NAMESPACE.bytes)
#: The variant bits of a UUID's 17th hex digit (RFC 4122: 10xx), by the digit's value.
_VARIANT_DIGIT = {f"{v:x}": f"{(v & 0x3) | 0x8:x}" for v in range(16)}


def deterministic_id(*parts: Any) -> str:
    """A UUID (version 5) that depends only on `parts`, so a replay yields the same id.

    Computed as uuid.uuid5 does (SHA-1 of namespace and name, version and variant bits
    set), on the hex text and without building UUID objects: this runs once per record.
    """
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(_canonical(parts))
    h = sha1.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


def to_iso(value: Any) -> str | None:
    """A date-time value from a record as an ISO-8601 string; None when there is none, or
    when it is not a date-time (text that is not ISO 8601, a boolean, an object).

    ISO text is kept exactly as the tap wrote it; numbers are Unix seconds, or milliseconds
    when larger than 1e11.
    """
    if type(value) is str:  # the usual case, first
        return value if _is_iso_text(value) else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        try:
            seconds = float(value)
            if seconds > 1e11:  # epoch milliseconds
                seconds /= 1000
            return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):  # beyond what a date can be, or NaN
            return None
    return None


def _is_iso_text(text: str) -> bool:
    """Whether `text` is an ISO-8601 date or date-time (a trailing Z is UTC, on every Python)."""
    if not text:
        return False
    try:
        dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        return False
    return True


def to_unix_seconds(value: Any) -> int | None:
    """Unix seconds of a date-time value, for mParticle's MembershipChangedTimestamp."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        seconds = float(value)
        return int(seconds / 1000 if seconds > 1e11 else seconds)
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp())


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
        self._now_second = -1
        self._now_text = ""

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
        return [record.get(key) for key in self.key_properties]

    def _message_id(self, record: Mapping[str, Any]) -> str:
        if self.spec.message_id_field:
            value = _id_text(record.get(self.spec.message_id_field))
            if value:
                return value
        return deterministic_id(self.stream, self._keys(record), self._content(record))

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

    def _fields(self, record: Mapping[str, Any]) -> dict[str, Any]:
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
        """One Singer record -> one event. Raises InputError naming the field at fault."""
        spec = self.spec
        if spec.type == "passthrough":
            return self._passthrough(record, time_extracted)
        user_id = _id_text(self._field(record, spec.user_id_field, "userId", "user_id"))
        anonymous_id = _id_text(self._field(record, spec.anonymous_id_field, "anonymousId", "anonymous_id"))
        message_id = self._message_id(record)
        if spec.type == "audience" and spec.audience_format == "mparticle":
            return self._mparticle(record, user_id, anonymous_id, message_id)
        timestamp, timestamp_replaced = self._timestamp(record, time_extracted)
        if not user_id and not anonymous_id:
            anonymous_id = self._anonymous_fallback(record)

        event_type = "identify" if spec.type == "audience" else spec.type
        body: dict[str, Any] = {"type": event_type}
        name: str | None = None
        if event_type == "track":
            name = self._event_name(record)
            body["event"] = name
        if user_id:
            body["userId"] = user_id
        if anonymous_id:
            body["anonymousId"] = anonymous_id
        body["messageId"] = message_id
        body["timestamp"] = timestamp
        body["sentAt"] = self._now()
        body["context"] = _CONTEXT  # shared and never mutated (privacy switches copy first)

        if spec.type == "audience":
            body["traits"] = {snake_case(self._audience_name(record)): self._is_member(record)}
        elif event_type in ("track", "page", "screen"):
            if event_type != "track" and spec.name_field:
                page_name = record.get(spec.name_field)
                if page_name is not None:
                    body["name"] = str(page_name)
            body["properties"] = self._fields(record)
        elif event_type in ("identify", "group"):
            if event_type == "group":
                body["groupId"] = self._required_id(record, spec.group_id_field, "group_id_field")
            body["traits"] = self._fields(record)
        elif event_type == "alias":
            body["previousId"] = self._required_id(record, spec.previous_id_field, "previous_id_field")
        return Event(body, event_type, name, message_id, user_id, anonymous_id, timestamp_replaced)

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
        self, record: Mapping[str, Any], user_id: str | None, anonymous_id: str | None, message_id: str
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
        return Event(body, "audience", None, message_id, user_id, anonymous_id)

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
        user_id = _id_text(body.get("userId")) or _id_text(self._field(record, spec.user_id_field, "user_id"))
        anonymous_id = _id_text(body.get("anonymousId")) or _id_text(
            self._field(record, spec.anonymous_id_field, "anonymous_id")
        )
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
        return Event(body, event_type, name, message_id, user_id, anonymous_id, timestamp_replaced)
