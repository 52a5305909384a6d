"""What happens to a finished event on its way out: privacy switches, partition key, bytes.

Pure functions; the writer applies them in this order: privacy, partition key, encode.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from target_kinesis.mapping import Event
from target_kinesis.services import KinesisService

PARTITION_KEY_MAX_CHARS = KinesisService.limits.max_partition_key_chars  # the limit lives in services.py


def _split(path: str) -> list[str]:
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


def remove_path(body: dict[str, Any], path: Sequence[str]) -> None:
    """Delete a dotted path if present."""
    parent = _writable_parent(body, path)
    if parent is not None:
        parent.pop(path[-1], None)


def hash_path(body: dict[str, Any], path: Sequence[str]) -> None:
    """Replace a dotted path's value by the hex SHA-256 of its trimmed, lower-cased text."""
    parent = _writable_parent(body, path)
    if parent is not None and parent.get(path[-1]) is not None:
        parent[path[-1]] = sha256_text(parent[path[-1]])


def sha256_text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return hashlib.sha256(text.strip().lower().encode("utf-8")).hexdigest()


class Privacy:
    """The SPEC's privacy switches, applied to every finished event."""

    def __init__(
        self, exclude_fields: Sequence[str] = (), hash_fields: Sequence[str] = (), send_anonymous_users: bool = True
    ) -> None:
        self._exclude = [p for p in (_split(f) for f in exclude_fields) if p]
        self._hash = [p for p in (_split(f) for f in hash_fields) if p]
        self.send_anonymous_users = send_anonymous_users

    def keep(self, event: Event) -> bool:
        """False for an event that must not be sent (no userId while anonymous users are off)."""
        return self.send_anonymous_users or bool(event.user_id)

    def apply(self, event: Event) -> None:
        for path in self._exclude:
            remove_path(event.body, path)
        for path in self._hash:
            hash_path(event.body, path)


def _lookup(body: dict[str, Any], path: Sequence[str]) -> Any:
    node: Any = body
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _text(value: Any) -> str | None:
    if type(value) is str:  # the usual case, first
        return value or None
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text or None


class PartitionKeys:
    """The SPEC's `partition_key`: a dotted path into the finished event, or `random`.

    Read from the finished event, after the privacy switches, so a hashed userId never
    leaks into a partition key in clear text.
    """

    def __init__(self, setting: str = "userId", rng: random.Random | None = None) -> None:
        self.setting = setting
        self._path = _split(setting)
        self._rng = rng or random.Random()

    def key_for(self, event: Event) -> str:
        """The event's partition key; its messageId when the setting finds nothing there."""
        return self.found_key(event) or clamp_key(event.message_id)

    def found_key(self, event: Event) -> str | None:
        """The partition key the setting names, or None when the event has no such value
        (missing or empty): the caller falls back to the messageId, and counts it."""
        if self.setting == "random":
            return f"{self._rng.getrandbits(128):032x}"
        if self.setting == "messageId":
            return clamp_key(event.message_id)
        value = _text(_lookup(event.body, self._path))
        if value is None and self.setting == "userId":
            # Segment: userId || anonymousId; mParticle audience records carry the user
            # as UserIdentities.CustomerId, so one user's enter/exit stay on one shard.
            value = _text(event.body.get("anonymousId")) or _text(_lookup(event.body, ("UserIdentities", "CustomerId")))
        return clamp_key(value) if value else None


def clamp_key(key: str) -> str:
    """Kinesis takes 1..256 characters; a longer key becomes its SHA-256 (stable, same shard)."""
    if len(key) <= PARTITION_KEY_MAX_CHARS:
        return key
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
