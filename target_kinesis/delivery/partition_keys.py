"""The SPEC's `partition_key`: which Kinesis shard each event goes to.

Read from the finished event, after the privacy switches, so a hashed userId never leaks
into a partition key in clear text.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from target_kinesis.aws.kinesis import LIMITS
from target_kinesis.delivery.privacy import split_path
from target_kinesis.events.event import Event

PARTITION_KEY_MAX_CHARS = LIMITS.max_partition_key_chars


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
    """A dotted path into the finished event, `messageId`, or `random`."""

    def __init__(self, setting: str = "userId", rng: random.Random | None = None) -> None:
        self.setting = setting
        self._path = split_path(setting)
        self._user_id = setting == "userId"
        self._rng = rng or random.Random()

    def key_for(self, event: Event) -> str:
        """The event's partition key; its messageId when the setting finds nothing there."""
        return self.found_key(event) or clamp_key(event.message_id)

    def found_key(self, event: Event) -> str | None:
        """The partition key the setting names, or None when the event has no such value
        (missing or empty): the caller falls back to the messageId, and counts it."""
        if self._user_id:  # the default setting, and a userId (text) in the usual case
            user_id = event.body.get("userId")
            if type(user_id) is str and user_id:
                return user_id if len(user_id) <= PARTITION_KEY_MAX_CHARS else clamp_key(user_id)
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
