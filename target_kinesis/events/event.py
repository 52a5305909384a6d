"""A finished event and the facts routing and partitioning need about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    #: The record's userId or anonymousId field held an object or a list, which is no id: the
    #: event went without it (counted).
    id_not_text: bool = False
