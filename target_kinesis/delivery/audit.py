"""What a run routed, per Singer stream, and the configuration mistakes that shows (pure).

A configuration can be valid and still route nothing: tap-postgres names its streams
`<schema>-<table>` (`public-users`), so `events: {"users": {"type": "identify"}}` matches no
stream, every record becomes a track event named `public-users`, and a `destinations` rule
for identify events takes none of them. Such a run used to end with exit 0 and its STATE,
so the orchestrator stored a bookmark past records that went nowhere. The rule (SPEC,
"Routing"):

* a run that read records, routed none of them anywhere, and has an `events` key naming no
  stream the input declared (no SCHEMA of that name: the mark of a naming mistake) is not a
  success: no STATE is printed for it, and it ends with the line `failure_line` gives;
* in any other run, each `events` key that matched no stream, and each stream whose records
  were all routed nowhere, gets one warning with the closest names (`warnings`).

A run whose records are all routed nowhere on purpose (every `events` key names a declared
stream) is a success, with its counts, as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from target_kinesis.config.events import EventSpec

#: Streams listed in a line at most (a tap may declare thousands).
_LISTED = 12
#: Where taps join a schema and a table (tap-postgres `public-users`, others `public.users`).
_NAME_PARTS = re.compile(r"[-._]")


def closest_names(name: str, candidates: Iterable[str], most: int = 3) -> list[str]:
    """The candidates a user most likely meant by `name`: those whose last part is `name`
    (`public-users` for `users`, `schema-table` naming), then the most similar spellings."""
    pool = sorted(set(candidates))
    wanted = name.lower()
    found = [c for c in pool if c.lower() != wanted and _NAME_PARTS.split(c.lower())[-1] == wanted]
    import difflib  # here: only a warning or error line needs it (start-up time)

    similar = difflib.get_close_matches(name, pool, n=most, cutoff=0.5)
    return [*found, *(c for c in similar if c not in found and c != name)][:most]


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


class RoutingAudit:
    """Records read and routed nowhere, per Singer stream, against the `events` keys."""

    def __init__(self, events: Mapping[str, EventSpec], rule_matches: Iterable[str]) -> None:
        self._events = dict(events)
        self._rule_matches = sorted({match for match in rule_matches})
        #: Streams the input declared (a SCHEMA), in the order they came.
        self._declared: dict[str, None] = {}
        #: Per stream: [records read, records no rule routed anywhere].
        self._tallies: dict[str, list[int]] = {}

    def declare(self, stream: str) -> None:
        self._declared.setdefault(stream, None)

    def tally(self, stream: str) -> list[int]:
        """The stream's [records read, records routed nowhere], for the sink to count in
        (a list, so that counting a record costs an item increment, and a new sink of the
        stream after a SCHEMA change counts on in the same place)."""
        found = self._tallies.get(stream)
        if found is None:
            found = self._tallies[stream] = [0, 0]
        return found

    def count(self, stream: str, read: int, unmapped: int) -> None:
        """Records of `stream` a mapping process took, `unmapped` of them routed nowhere."""
        tally = self.tally(stream)
        tally[0] += read
        tally[1] += unmapped

    def unmatched_keys(self) -> list[str]:
        """`events` keys naming no stream the input declared."""
        return [key for key in self._events if key not in self._declared]

    def mistaken(self) -> bool:
        """Records were read, none was routed anywhere, and an `events` key names no declared
        stream: while this holds, no STATE may be printed (and at the end the run fails)."""
        read = sum(tally[0] for tally in self._tallies.values())
        routed_nowhere = sum(tally[1] for tally in self._tallies.values())
        return read > 0 and routed_nowhere == read and bool(self.unmatched_keys())

    def failure_line(self) -> str | None:
        """The run's error when it is `mistaken`, else None."""
        if not self.mistaken():
            return None
        read = sum(tally[0] for tally in self._tallies.values())
        declared = list(self._declared)
        parts = []
        for key in self.unmatched_keys():
            close = closest_names(key, declared)
            parts.append(f"events key '{key}' matched no stream" + (f" (closest: {', '.join(close)})" if close else ""))
        return (
            "; ".join(parts)
            + f"; streams read: {_listed(declared)}; none of the {read} record(s) read was routed anywhere, so no "
            "STATE was printed (taps such as tap-postgres name streams <schema>-<table>: use those names as the "
            "events keys)"
        )

    def warnings(self) -> list[str]:
        """One line per `events` key that matched no stream, and per stream whose records
        were all routed nowhere (with what they became, and the closest names)."""
        declared = list(self._declared)
        lines = []
        for key in self.unmatched_keys():
            close = closest_names(key, declared)
            hint = f"; closest: {', '.join(close)}" if close else ""
            lines.append(
                f"events key '{key}' matched no stream read (streams read: {_listed(declared) or 'none'}{hint}); "
                "its settings were not used"
            )
        for stream, (read, unmapped) in self._tallies.items():
            if not read or unmapped != read:
                continue
            spec = self._events.get(stream)
            if spec is None:
                close = closest_names(stream, self._events)
                became = f"track events named '{stream}' (no events key names the stream"
                became += f"; closest: {', '.join(close)})" if close else ")"
            elif spec.type == "track":
                named = f"by field '{spec.event_field}'" if spec.event_field else f"'{spec.event or stream}'"
                became = f"track events named {named}"
            elif spec.type == "passthrough":
                became = "the events they hold (passthrough)"
            else:
                became = f"{spec.type} events"
            rules = ", ".join(f"'{match}'" for match in self._rule_matches)
            lines.append(
                f"stream '{stream}': all {read} record(s) were routed nowhere: they became {became}, and no "
                f"destinations rule matches them (rules: {rules}); counted as unmapped in the summary"
            )
        return lines


__all__ = ["RoutingAudit", "closest_names"]
