"""The command line of bench/run.py and the plan it makes: which contenders run in which part.

Checked before anything runs (unknown contenders or scenarios, bad sizes), so that a typo fails
at once and not after minutes of measuring; ``--ref`` is extracted here, for the same reason.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from bench.base import OUT
from bench.endpoints import NULL_SHARDS
from bench.refs import REF_BASES, RefTree, extract_ref, with_refs
from bench.scenarios import SCENARIOS, parse_scenarios


def _parse_sizes(text: str) -> list[int]:
    if not text.strip():
        return []
    return sorted({int(float(s)) for s in text.replace("_", "").split(",") if s.strip()})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="target-kinesis benchmark", formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help="records for the side-by-side comparison (default 100000;\nwith --streams it runs only when given)",
    )
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="input sizes for the linearity/memory check ('' to skip)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per contender and size; the median wall time is reported"
    )
    parser.add_argument(
        "--contenders",
        default="tk-kinesis,tk-firehose,baseline,null-target",
        help="comma list of: tk-kinesis, tk-kinesis-kpl (aggregation kpl), tk-kinesis-serial (no mapping\n"
        "processes), tk-firehose, baseline, baseline-firehose, null-target",
    )
    parser.add_argument(
        "--linearity-contenders", default="tk-kinesis", help="contenders run at every --sizes (default tk-kinesis)"
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the 0-record startup runs (no 'net' figures)")
    parser.add_argument("--target-cmd", help="command for target-kinesis (default: target-kinesis next to this python)")
    parser.add_argument(
        "--ref",
        metavar="REV",
        help="also run tk-kinesis / tk-firehose / tk-kinesis-serial / tk-kinesis-kpl as they are at git revision REV\n"
        "(tree extracted to bench/out/ref-SHA/), alternating with the others; report side by side",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=0,
        metavar="N",
        help="also measure the target contenders on N streams, each with its own schema\n"
        "(SCHEMA then its records, stream after stream): the cost of opening a stream",
    )
    parser.add_argument(
        "--streams-records", type=int, default=1, metavar="K", help="records per stream with --streams (default 1)"
    )
    parser.add_argument(
        "--capacity",
        nargs="?",
        const="all",
        metavar="SCENARIO,...",
        help="also run the capacity scenarios (default: all) against tests/support/capacity_endpoint.py,\n"
        "a fresh one per run: the target (and its --ref twin) writing to streams that refuse\n"
        "beyond AWS's limits; scenarios:\n" + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--capacity-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply the record counts of the capacity scenarios by F (e.g. 0.25 for a quick check)",
    )
    parser.add_argument(
        "--null-shards",
        type=int,
        default=NULL_SHARDS,
        metavar="N",
        help=f"open shards of the null endpoint's streams (default {NULL_SHARDS}): the target paces each\n"
        "shard at 1,000 records/s, so N x 1,000 records/s must stay above what it can send",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--min-rate",
        type=float,
        default=1000.0,
        help="timeout per run = TIMEOUT_BASE + records / MIN_RATE (default 1000/s)",
    )
    parser.add_argument(
        "--timeout-base", type=float, default=60.0, help="fixed part of every run's timeout (default 60s)"
    )
    parser.add_argument(
        "--write-results", action="store_true", help="write bench/RESULTS.md (or bench/PROFILE.md with --profile)"
    )
    parser.add_argument("--profile", action="store_true", help="profile one contender instead of benchmarking")
    parser.add_argument("--profile-contender", default="tk-kinesis")
    parser.add_argument("--profiler", default="auto", choices=["auto", "py-spy", "pyinstrument"])
    return parser


@dataclass
class Plan:
    """Which contenders run in which part of the benchmark (--ref twins included)."""

    main: list[str]  # side by side at --records ([] when not run)
    linearity: list[str]  # at every --sizes
    streams: list[str]  # on the --streams input
    sizes: list[int]
    ref: RefTree | None
    capacity: list[str] = field(default_factory=list)  # --capacity scenarios

    @property
    def every(self) -> list[str]:
        return list(dict.fromkeys(self.main + self.linearity + self.streams))


def _plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Plan:
    known = {
        "tk-kinesis",
        "tk-kinesis-kpl",
        "tk-kinesis-serial",
        "tk-firehose",
        "baseline",
        "baseline-firehose",
        "null-target",
    }
    contender_keys = [c.strip() for c in args.contenders.split(",") if c.strip()]
    lin_keys = [c.strip() for c in args.linearity_contenders.split(",") if c.strip()]
    for key in [*contender_keys, *lin_keys, args.profile_contender]:
        if key not in known:
            parser.error(f"unknown contender {key!r}; known: {', '.join(sorted(known))}")
    try:
        capacity = parse_scenarios(args.capacity) if args.capacity is not None else []
    except ValueError as exc:
        parser.error(f"--capacity: {exc}")
    if args.capacity_scale <= 0 or args.null_shards < 1:
        parser.error("--capacity-scale must be > 0 and --null-shards >= 1")
    run_main = args.records is not None or not (args.streams or capacity)
    if args.records is None:
        args.records = 100_000
    if args.records < 1 or args.repeat < 1:
        parser.error("--records and --repeat must be >= 1")
    if args.streams < 0 or args.streams_records < 0:
        parser.error("--streams and --streams-records must be >= 0")
    stream_keys = [key for key in contender_keys if key in REF_BASES] if args.streams else []
    if args.streams and not stream_keys:
        parser.error(f"--streams runs the target contenders: put {' or '.join(REF_BASES)} in --contenders")
    if args.profile and (args.ref or args.streams or capacity):
        parser.error("--ref, --streams and --capacity do not apply to --profile")
    try:
        sizes = _parse_sizes(args.sizes)
    except ValueError:
        parser.error(f"bad --sizes {args.sizes!r}")
    OUT.mkdir(parents=True, exist_ok=True)
    ref = extract_ref(args.ref) if args.ref and not args.profile else None
    return Plan(
        with_refs(contender_keys, ref) if run_main else [],
        with_refs(lin_keys, ref) if sizes else [],
        with_refs(stream_keys, ref),
        sizes,
        ref,
        capacity,
    )
