"""The capacity scenarios (``--capacity``): the streams, their limits, their goals, and where the input's records land.

What a stream is and what is asked of it, apart from how a run is measured (bench.capacity) and
reported (bench.capacity_report), so that both read the same definitions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bench.base import PY
from bench.endpoints import CAPACITY_ENDPOINT, CAPACITY_READBACK

CAPACITY_STREAM = "bench"
SHARD_RECORDS_PER_S = 1_000  # what a Kinesis shard takes a second (AWS quotas; the capacity endpoint's)
SHARD_BYTES_PER_S = 2**20


HOT_SHARD_GOAL = 0.6  # hot key: the cold shards' last accept at most this share of the hot shard's
#: The capacity scenarios run on lean orders (generate.py --lean): ~456-byte events on the wire, the
#: size the goals of issues 12 and 13 are stated for (the full orders make ~680-byte events).
CAPACITY_LEAN_INPUT = True


@dataclass(frozen=True)
class Scenario:
    """One stream at the capacity endpoint and what is written to it (record counts at scale 1)."""

    name: str
    what: str
    service: str  # "kinesis" or "firehose"
    records: int  # per pipeline
    shards: int = 1
    other_share: float = 0.0  # --other-producer: another producer takes this share of each shard
    firehose_bytes_per_s: int = 0
    hot_share: float = 0.0  # that share of the events has one userId (one partition key)
    pipelines: int = 1  # target processes writing at once, each its own input
    min_efficiency: float | None = None  # the goal (None: reported, not judged)
    max_refused: float | None = None
    #: "kpl" / "lines": the target with that `aggregation` runs beside the target without it, and
    #: every stored record is read back (events lost, duplicated, misplaced; billed units)
    aggregation: str = ""
    min_events_per_s: float | None = None  # goal of the aggregating target: events / wall s
    max_units_per_event: float | None = None  # goal of the aggregating target: billed units / event

    def scaled(self, scale: float) -> int:
        return max(1, round(self.records * scale))

    def endpoint_argv(self) -> list[str]:
        # the aggregation scenarios read every stored record back: the capacity endpoint with a
        # /__records route (Firehose has no read API)
        server = CAPACITY_READBACK if self.aggregation else CAPACITY_ENDPOINT
        argv = [PY, str(server), "--port", "0"]
        if self.service == "firehose":
            argv += ["--firehose", f"{CAPACITY_STREAM}:{self.firehose_bytes_per_s}"]
        else:
            argv += ["--kinesis", f"{CAPACITY_STREAM}:{self.shards}"]
        if self.other_share:
            argv += ["--other-producer", f"{CAPACITY_STREAM}:{self.other_share}"]
        return argv


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("kinesis-1-shard", "1 shard", "kinesis", 40_000, min_efficiency=0.95, max_refused=0.05),
        Scenario("kinesis-2-shards", "2 shards", "kinesis", 40_000, shards=2, min_efficiency=0.95, max_refused=0.05),
        Scenario(
            "kinesis-shared",
            "1 shard, another producer takes 75% of it",
            "kinesis",
            10_000,
            other_share=0.75,
            min_efficiency=0.85,
            max_refused=0.10,
        ),
        Scenario(
            "kinesis-hot-key", "4 shards, 30% of the events on one userId", "kinesis", 40_000, shards=4, hot_share=0.3
        ),
        Scenario(
            "firehose-1mib",
            "a Firehose stream of 1 MiB/s",
            "firehose",
            40_000,
            firehose_bytes_per_s=2**20,
            min_efficiency=0.90,
            max_refused=0.05,
        ),
        Scenario(
            "two-pipelines",
            "two target processes at once into one 2-shard stream",
            "kinesis",
            20_000,
            shards=2,
            pipelines=2,
            min_efficiency=0.95,
            max_refused=0.05,
        ),
        Scenario(
            "kinesis-kpl",
            "1 shard, aggregation kpl beside none",
            "kinesis",
            40_000,
            max_refused=0.05,
            aggregation="kpl",
            min_events_per_s=2_000,
        ),
        Scenario(
            "firehose-lines",
            "a Firehose stream of 1 MiB/s, aggregation lines beside none",
            "firehose",
            20_000,
            firehose_bytes_per_s=2**20,
            aggregation="lines",
            max_refused=0.05,
            max_units_per_event=0.12,
        ),
    )
}


def parse_scenarios(text: str) -> list[str]:
    """``all`` or a comma list of scenario names (ValueError naming the unknown ones)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or names == ["all"]:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: all, {', '.join(SCENARIOS)}")
    return list(dict.fromkeys(names))


def _user_ids(path: Path) -> list[str]:
    """The user_id of every RECORD of an input: the target's default partition key (userId)."""
    ids = []
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b'{"type":"RECORD"'):
                ids.append(str(json.loads(line)["record"].get("user_id", "")))
    return ids


_SHARD_COUNTS: dict[tuple[str, int], list[int]] = {}


def expected_shard_records(path: Path, shards: int) -> list[int]:
    """Records of an input per shard of a stream of ``shards`` even shards: where Kinesis puts a
    record is the MD5 of its partition key (here the userId) against the shards' hash ranges."""
    key = (str(path), shards)
    if key not in _SHARD_COUNTS:
        step = 2**128 // shards
        counts = [0] * shards
        for user_id in _user_ids(path):
            digest = hashlib.md5(user_id.encode("utf-8"), usedforsecurity=False).digest()
            counts[min(int.from_bytes(digest, "big") // step, shards - 1)] += 1
        _SHARD_COUNTS[key] = counts
    return _SHARD_COUNTS[key]
