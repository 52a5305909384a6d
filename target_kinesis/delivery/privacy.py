"""The SPEC's privacy switches, applied to every finished event before anything reads it.

Pure functions; the encoder applies them in this order: privacy, partition key, bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

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
        self._exclude = [p for p in (split_path(f) for f in exclude_fields) if p]
        self._hash = [p for p in (split_path(f) for f in hash_fields) if p]
        self.send_anonymous_users = send_anonymous_users

    def keep(self, event: Event) -> bool:
        """False for an event that must not be sent (no userId while anonymous users are off)."""
        return self.send_anonymous_users or bool(event.user_id)

    def apply(self, event: Event) -> None:
        for path in self._exclude:
            remove_path(event.body, path)
        for path in self._hash:
            hash_path(event.body, path)
