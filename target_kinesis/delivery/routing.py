"""Which destination streams an event goes to (pure).

The rule every reference system shares: an event's name (track events) beats its type,
which beats `*`; matching ignores case, stream names are exact. All rules at the winning
level receive the event, so several rules with one MATCH fan an event out.
"""

from __future__ import annotations

from collections.abc import Iterable

from target_kinesis.config.destinations import Destination, Rule


class Router:
    """Resolves (type, name) to destinations; results are cached since events repeat."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._by_match: dict[str, list[Destination]] = {}
        for rule in rules:
            targets = self._by_match.setdefault(rule.event.strip().lower(), [])
            if rule.destination not in targets:  # the same rule twice must not send twice
                targets.append(rule.destination)
        self._cache: dict[tuple[str, str | None], tuple[Destination, ...]] = {}

    @property
    def destinations(self) -> list[Destination]:
        """Every destination any rule names, each once, in a stable order."""
        return sorted({d for targets in self._by_match.values() for d in targets})

    def route(self, event_type: str, name: str | None) -> tuple[Destination, ...]:
        """The destinations of the most specific matching level; empty when none matches."""
        cache_key = (event_type, name)
        found = self._cache.get(cache_key)
        if found is not None:
            return found
        found = ()
        levels = ([name.lower()] if name is not None and event_type == "track" else []) + [event_type.lower(), "*"]
        for match in levels:
            targets = self._by_match.get(match)
            if targets:
                found = tuple(targets)
                break
        if len(self._cache) < 10_000:  # bounded: event names come from data
            self._cache[cache_key] = found
        return found
