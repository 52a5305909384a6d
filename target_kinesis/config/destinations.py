"""Where events go: one stream of one service, and the rule that sends events there."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Destination:
    """One stream of one service; the unit that batching limits and statistics apply to."""

    service: str
    stream: str

    def __str__(self) -> str:
        return f"{self.service}:{self.stream}"


@dataclass(frozen=True)
class Rule:
    event: str
    destination: Destination
    #: The rule's own `aggregation`; None: the top-level setting.
    aggregation: str | None = None
