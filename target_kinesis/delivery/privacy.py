"""The SPEC's privacy switches, applied to every finished event before anything reads it.

Pure functions; the encoder applies them in this order: privacy, partition key, bytes.

A privacy path that matches nothing must never let a value through in clear silently:
`hash_fields: ["email"]` (the path is `traits.email`) would hash nothing and send every
email as it is. So a path must start with a field of a Segment event (checked at start-up,
`config.events.privacy_path_problem`, unless a passthrough mapping keeps a record's own fields), and a valid path that matched nothing in a run that sent events it could
apply to is warned about at the end (`unmatched_paths`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from target_kinesis.config.events import EVENT_FIELDS, SPEC_TYPES
from target_kinesis.delivery.stats import RunStats
from target_kinesis.events.event import Event


def split_path(path: str) -> list[str]:
    return [part for part in path.split(".") if part]


def _writable_parent(body: dict[str, Any], path: Sequence[str]) -> dict[str, Any] | None:
    """The object holding a dotted path's last part, copying every container on the way.

    Copying matters because nested objects of a record can be shared by the events of
    a fan-out or by the SDK's own message. None when the path does not exist.
    """
    node: Any = body
    for part in path[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            return None
        child = dict(child)
        node[part] = child
        node = child
    return node if isinstance(node, dict) else None


def remove_path(body: dict[str, Any], path: Sequence[str]) -> bool:
    """Delete a dotted path if present; whether it was."""
    parent = _writable_parent(body, path)
    return parent is not None and parent.pop(path[-1], _ABSENT) is not _ABSENT


def hash_path(body: dict[str, Any], path: Sequence[str]) -> bool:
    """Replace a dotted path's value by the hex SHA-256 of its trimmed, lower-cased text;
    whether it held a value to hash."""
    parent = _writable_parent(body, path)
    if parent is None or parent.get(path[-1]) is None:
        return False
    parent[path[-1]] = sha256_text(parent[path[-1]])
    return True


_ABSENT = object()


def sha256_text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return hashlib.sha256(text.strip().lower().encode("utf-8")).hexdigest()


class Privacy:
    """The SPEC's privacy switches, applied to every finished event."""

    def __init__(
        self, exclude_fields: Sequence[str] = (), hash_fields: Sequence[str] = (), send_anonymous_users: bool = True
    ) -> None:
        self._exclude = [(f"exclude_fields:{f}", p) for f in exclude_fields if (p := split_path(f))]
        self._hash = [(f"hash_fields:{f}", p) for f in hash_fields if (p := split_path(f))]
        self.send_anonymous_users = send_anonymous_users
        #: Whether any path is configured (else `apply` has nothing to do).
        self.active = bool(self._exclude or self._hash)

    def keep(self, event: Event) -> bool:
        """False for an event that must not be sent (no userId while anonymous users are off)."""
        return self.send_anonymous_users or bool(event.user_id)

    def apply(self, event: Event, stats: RunStats) -> None:
        """Remove and hash the paths in `event`; counted in `stats` (which path found a value,
        and the event's type), for `unmatched_paths`."""
        body = event.body
        matched = stats.privacy_matched
        for label, path in self._exclude:
            if remove_path(body, path):
                matched[label] += 1
        for label, path in self._hash:
            if hash_path(body, path):
                matched[label] += 1
        stats.privacy_types[event.type] += 1

    def unmatched_paths(self, stats: RunStats) -> Iterable[str]:
        """One line per path that matched nothing although events it could apply to were sent
        (a path starting with `traits` applies to identify and group events, ...)."""
        for label, path in (*self._exclude, *self._hash):
            if stats.privacy_matched[label]:
                continue
            # A first part that is no Segment field was let through for passthrough records,
            # which can carry it whatever their type.
            types = EVENT_FIELDS.get(path[0], SPEC_TYPES)
            sent = {kind: n for kind, n in sorted(stats.privacy_types.items()) if kind in types}
            if not sent:
                continue
            setting, dotted = label.split(":", 1)
            action = "removed" if setting == "exclude_fields" else "hashed"
            counts = ", ".join(f"{n} {kind}" for kind, n in sent.items())
            yield (
                f"{setting} path '{dotted}' matched nothing in the {counts} event(s) sent: no value was {action}; "
                "check the path against what lands in the stream (target-kinesis-tail shows it)"
            )
