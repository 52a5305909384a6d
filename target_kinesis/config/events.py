"""One value of the `events` setting: how the records of one Singer stream become events.

Checked here, at start-up, so that a mistyped key or a wrong type stops the run before any
record is read; the mapping itself (`events/mapper.py`) then trusts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from target_kinesis.errors import ConfigError

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
SPEC_TYPES = (*EVENT_TYPES, "passthrough", "audience")
AUDIENCE_FORMATS = ("segment", "mparticle")
#: `message_id`: what a derived messageId depends on. `content` (the default): stream, key
#: properties and the record, so an updated row is a new event; `keys`: stream and key properties
#: alone, so an updated row re-sent keeps its id and consumers drop it as a duplicate.
MESSAGE_ID_RULES = ("content", "keys")

_SEGMENT_TYPES = frozenset(EVENT_TYPES)
#: The top-level fields of what the target writes, and the event types that carry each: the
#: Segment spec's common fields, each type's own, and the fields of mParticle-format audience
#: records (type `audience`).
EVENT_FIELDS: dict[str, frozenset[str]] = {
    **{
        name: _SEGMENT_TYPES
        for name in (
            "anonymousId",
            "channel",
            "context",
            "integrations",
            "messageId",
            "originalTimestamp",
            "receivedAt",
            "sentAt",
            "timestamp",
            "type",
            "userId",
            "version",
        )
    },
    "event": frozenset({"track"}),
    "properties": frozenset({"track", "page", "screen"}),
    "name": frozenset({"page", "screen"}),
    "category": frozenset({"page", "screen"}),
    "traits": frozenset({"identify", "group"}),
    "groupId": frozenset({"group"}),
    "previousId": frozenset({"alias"}),
    **{
        name: frozenset({"audience"})
        for name in ("AudienceName", "AudienceId", "IsMember", "UserIdentities", "MembershipChangedTimestamp")
    },
}
#: Where a record's own field usually is in an event, for the paths a mistaken one would mean.
_RECORD_FIELD_HOMES = ("traits", "properties", "context.traits")


def privacy_path_problem(setting: str, path: str) -> str | None:
    """Why a privacy path can match nothing in any event (None when it can): its first part
    is no field of a Segment event. The line names the paths that would match."""
    parts = [part for part in path.split(".") if part]
    if not parts:
        return f"setting '{setting}': '{path}' is not a dotted path (such as traits.email)"
    first = parts[0]
    if first in EVENT_FIELDS:
        return None
    rest = ".".join(parts[1:])
    same = [name for name in EVENT_FIELDS if name.lower() == first.lower()]
    if same:
        meant = [".".join(filter(None, (same[0], rest)))]
    else:
        meant = [f"{home}.{'.'.join(parts)}" for home in _RECORD_FIELD_HOMES]
    return (
        f"setting '{setting}': '{path}' matches nothing: a path starts with a field of the Segment event "
        f"(traits, properties, context, userId, ...), and '{first}' is none; paths that would match: "
        + ", ".join(meant)
    )


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
    message_id: str = "content"
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
        for key in ("type", "audience_format", "message_id"):
            if key in values:
                values[key] = values[key].lower()
        spec = cls(**values)
        if spec.type not in SPEC_TYPES:
            raise ConfigError(f"setting '{where}.type' must be one of {', '.join(SPEC_TYPES)}")
        if spec.audience_format not in AUDIENCE_FORMATS:
            raise ConfigError(f"setting '{where}.audience_format' must be one of {', '.join(AUDIENCE_FORMATS)}")
        if spec.message_id not in MESSAGE_ID_RULES:
            raise ConfigError(f"setting '{where}.message_id' must be one of {', '.join(MESSAGE_ID_RULES)}")
        if spec.type == "audience" and not (spec.audience_field and spec.member_field):
            raise ConfigError(f"setting '{where}': type audience needs audience_field and member_field")
        if spec.include_fields is not None and spec.exclude_fields is not None:
            raise ConfigError(f"setting '{where}': use include_fields or exclude_fields, not both")
        return spec
