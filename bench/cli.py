"""The benchmark from its command line: measure every part the plan asks for, print the report, keep the raw figures.

bench/run.py calls ``main``; every other module of the package is below this one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field

from bench import process
from bench.base import BENCH, OUT, ROOT, log
from bench.capacity import CapacityRun, capacity_contenders, run_capacity
from bench.capacity_report import capacity_section, capacity_verdicts
from bench.contenders import build_contenders
from bench.endpoints import Endpoint, null_endpoint_argv
from bench.fmt import _shorten
from bench.inputs import ensure_input, ensure_streams_input, input_meta
from bench.options import Plan, _parser, _plan
from bench.process import child_env
from bench.profiling import profile
from bench.refs import REF_BASES, compile_bytecode, ref_key
from bench.report import (
    goals_section,
    linearity_section,
    machine_info,
    memory_verdicts,
    ratios_section,
    ref_section,
    results_table,
    startup_table,
    streams_section,
)
from bench.runs import Bench, Run, measure_startup, run_alternating
from bench.scenarios import CAPACITY_LEAN_INPUT, SCENARIOS

STREAM_TIMEOUT_S = 0.1  # --streams: timeout added per stream, on top of timeout_for(records)


@dataclass
class Measured:
    startup: dict[str, float] = field(default_factory=dict)
    startup_cpu: dict[str, float] = field(default_factory=dict)
    main: dict[str, Run] = field(default_factory=dict)
    by_size: dict[str, list[Run]] = field(default_factory=dict)
    streams: dict[str, Run] = field(default_factory=dict)
    all_runs: list[Run] = field(default_factory=list)  # main and linearity (not --streams)
    labels: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, dict[str, CapacityRun]] = field(default_factory=dict)  # scenario -> contender -> run


def _run_linearity(bench: Bench, plan: Plan, main_runs: dict[str, Run], args: argparse.Namespace) -> dict:
    """Every --linearity-contenders at every size; contenders alternate run by run."""
    by_size: dict[str, list[Run]] = {}
    runnable = []
    for key in plan.linearity:
        c = bench.contenders[key]
        by_size[key] = []
        if c.argv is None:
            by_size[key].append(Run(key, c.label, 0, "SKIPPED", detail=c.missing))
        else:
            runnable.append(key)
    for size in plan.sizes:
        todo = [key for key in runnable if not (size == args.records and key in main_runs)]
        runs = run_alternating(bench, todo, ensure_input(size, args.seed), size, "linearity") if todo else {}
        for key in runnable:
            by_size[key].append(runs.get(key) or main_runs[key])
    return by_size


def _measure_all(args: argparse.Namespace, plan: Plan) -> Measured:
    m = Measured()
    if plan.every:
        _measure_null(args, plan, m)
    if plan.capacity:
        contenders = capacity_contenders(args.target_cmd, plan.ref)
        for c in contenders:
            if c.argv is None:
                log(f"SKIPPING {c.label} in the capacity scenarios: {c.missing}")
        m.capacity = run_capacity(plan.capacity, args.capacity_scale, args.repeat, contenders, args.seed)
    return m


def _measure_null(args: argparse.Namespace, plan: Plan, m: Measured) -> None:
    """The parts run against the null endpoint: start-up, --records, --sizes, --streams."""
    endpoint = Endpoint(null_endpoint_argv(args.null_shards))
    endpoint.start()
    try:
        contenders = build_contenders(endpoint, args.target_cmd, plan.ref)
        bench = Bench(contenders, endpoint, child_env(), args.repeat, args.min_rate)
        m.labels = {k: c.label for k, c in contenders.items()}
        for key in plan.every:
            if contenders[key].argv is None:
                log(f"SKIPPING {contenders[key].label}: {contenders[key].missing}")
        # startup cost: the same contenders on a 0-record input (SCHEMA + STATE only)
        if not args.no_startup:
            m.startup, m.startup_cpu = measure_startup(bench, plan.every, args.seed)
        if plan.main:
            m.main = run_alternating(bench, plan.main, ensure_input(args.records, args.seed), args.records, "run")
            m.all_runs.extend(m.main.values())
        m.by_size = _run_linearity(bench, plan, m.main, args)
        seen = {id(r) for r in m.all_runs}  # a size equal to --records reuses the main run
        m.all_runs.extend(r for runs in m.by_size.values() for r in runs if id(r) not in seen and r.status != "SKIPPED")
        if plan.streams:
            m.streams = run_alternating(
                bench,
                plan.streams,
                ensure_streams_input(args.streams, args.streams_records, args.seed),
                args.streams * args.streams_records,
                f"streams ({args.streams:,})",
                tag=f"-streams{args.streams}",
                extra_timeout=args.streams * STREAM_TIMEOUT_S,
            )
    finally:
        endpoint.stop()


def _report(args: argparse.Namespace, plan: Plan, m: Measured) -> tuple[str, dict]:
    """The markdown report and the goals' verdicts."""
    verdicts: dict = {}
    what = [f"{args.records:,} records"] if plan.main else []
    what += [f"{args.streams:,} streams"] if plan.streams else []
    what += ["capacity scenarios"] if plan.capacity else []
    out = [f"## Results ({', '.join(what) or 'linearity'}, repeat {args.repeat})", ""]
    if plan.ref:
        ref = plan.ref
        out += [
            f"Ref: `{ref.rev}` = {ref.short} ({_shorten(ref.subject)}), extracted to `{ref.path.relative_to(ROOT)}/`, "
            f"run through its own console script entry `{ref.entry}` with this interpreter's packages. "
            f"Contenders marked @{ref.short} are it; they alternate run by run with the current ones.",
            "",
        ]
    if plan.main:
        meta = input_meta(ensure_input(args.records, args.seed))
        ratios, verdicts = ratios_section(m.main, m.startup)
        out += [
            f"Input: {meta['bytes'] / 2**20:.1f} MiB, "
            f"{meta['avg_record_line_bytes']:.0f} bytes per RECORD line, "
            f"stream `orders`, seed {args.seed}. Endpoint: bench/null_endpoint.py "
            f"(separate process; no limits: a {args.null_shards}-shard stream, whose ListShards the target paces "
            f"by). Each contender runs alone, one after the other.",
            "",
            results_table(list(m.main.values()), m.startup),
            "",
            "*records/s* = records / wall time of the child process, start to exit. "
            "*net records/s* = records / (wall - startup), startup measured on a 0-record "
            "input. CPU comes from `wait4` on the child (its mapping processes included: it waits "
            "for them); *CPUs busy* = CPU s / wall s, the cores kept working on average. *peak RSS MiB* is the child's peak RSS, or, when larger, the peak of the "
            "PSS summed over its whole process tree (target-kinesis forks mapping processes; PSS "
            "counts the pages they share once), sampled 4 times a second. *other CPU s*: CPU used during "
            "the run by processes other than the child and the endpoint (noise; should be ~0).",
            "",
        ]
    if plan.every:
        out += ["### Startup", "", startup_table(m.startup, m.startup_cpu, m.labels) if m.startup else "(skipped)", ""]
    if plan.main:
        out += ["### Ratios", "", ratios, ""]
    if plan.ref and (plan.main or plan.sizes):
        pairs = [(key, ref_key(key, plan.ref)) for key in REF_BASES]
        out += [
            f"### Current vs `{plan.ref.rev}` ({plan.ref.short})",
            "",
            ref_section(m.all_runs, pairs, m.startup),
            "",
            "Medians of the --repeat runs (peak MiB: median of the runs' peaks). *ratio* = current / ref: "
            "above 1 for records/s, below 1 for CPU µs/rec and peak MiB, means the current code is better. "
            "*net of startup*: records/s ratio with each one's start-up taken off.",
            "",
        ]
    verdicts.update(memory_verdicts(m.all_runs))
    if plan.sizes:
        linearity, lin_verdicts = linearity_section(m.by_size, m.startup, m.startup_cpu)
        verdicts.update(lin_verdicts)
        out += ["### Linearity and memory across sizes", "", linearity, ""]
    if plan.streams:
        meta = input_meta(ensure_streams_input(args.streams, args.streams_records, args.seed))
        out += [
            f"### Many streams: {args.streams:,} streams, {args.streams_records:,} "
            f"record{'s' if args.streams_records != 1 else ''} each",
            "",
            f"Input: {meta['bytes'] / 2**20:.1f} MiB; {args.streams:,} streams (`table_00000`...), each with its "
            "own schema of 6 to 10 properties (integer key, string, date-time, nullable string, number, boolean, "
            "then some of: integer, nullable number, enum, array, object), a SCHEMA then its records, stream after "
            "stream, and a final STATE bookmarking every stream.",
            "",
            streams_section(m.streams, args.streams, m.startup, m.startup_cpu),
            "",
            "*ms/stream (net)* = (wall or CPU of the run - the same contender's 0-record start-up) / streams: what "
            "one more stream costs, its SCHEMA (checks, validator, sink) and its records. *peak MiB*: median of "
            "the runs' peaks (RSS, or PSS of the process tree when larger). The endpoint must receive "
            "streams x records, else MISMATCH."
            + (" *current / ref*: ratios of the columns above (below 1: current is cheaper)." if plan.ref else ""),
            "",
        ]
    if plan.capacity:
        out += [
            f"### Capacity: {len(plan.capacity)} scenario{'s' if len(plan.capacity) != 1 else ''}"
            f"{'' if args.capacity_scale == 1 else f', record counts x {args.capacity_scale:g}'}",
            "",
            "Each run against a fresh tests/support/capacity_endpoint.py (separate process): per-shard token buckets "
            "of 1,000 records and 1 MiB a second, ProvisionedThroughputExceededException per refused record; "
            'Firehose: the stream\'s bytes a second, ServiceUnavailableException "Slow down.". Scenarios: '
            + "; ".join(
                f"`{name}` {SCENARIOS[name].scaled(args.capacity_scale) * SCENARIOS[name].pipelines:,} records, "
                f"{SCENARIOS[name].what}"
                for name in plan.capacity
            )
            + "."
            + (
                " Input: lean orders (generate.py --lean: each order's header and first item), ~456-byte events "
                "on the wire, the size the goals are stated for."
                if CAPACITY_LEAN_INPUT
                else ""
            ),
            "",
            capacity_section(m.capacity, args.capacity_scale, args.repeat),
            "",
        ]
        verdicts.update(capacity_verdicts(m.capacity, args.capacity_scale))
    if plan.main or plan.sizes or plan.capacity:  # the goals are about --records, --sizes and --capacity
        out += ["### Goals", "", goals_section(verdicts)]
    return "\n".join(out), verdicts


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    process.TIMEOUT_BASE = args.timeout_base  # read at each use (see bench.process)
    plan = _plan(args, parser)
    compile_bytecode(ROOT / "target_kinesis")
    if args.profile:
        return profile(args)

    started = time.time()
    m = _measure_all(args, plan)
    info = machine_info()
    report, verdicts = _report(args, plan, m)
    every_run = [*m.all_runs, *m.streams.values()]
    capacity_runs = [r for runs in m.capacity.values() for r in runs.values()]
    mismatches = [r for r in every_run if r.status == "MISMATCH"]

    cmdline = "python bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    print(report)
    if mismatches:
        print("\n" + "!" * 72)
        for r in mismatches:
            print(f"MISMATCH: {r.label} at {r.records:,} records: {r.detail}")
        print("!" * 72)
    for r in capacity_runs:
        if r.status == "MISMATCH":
            print(f"\nMISMATCH: {r.label} in capacity scenario {r.scenario}: {r.detail}")

    def _raw(runs: list[Run]) -> list[dict]:
        return [{**dict(r.__dict__.items()), "rps": r.rps, "cpu": r.cpu} for r in runs]

    raw = {
        "machine": info,
        "args": vars(args),
        "ref": None if plan.ref is None else {**plan.ref.__dict__, "path": str(plan.ref.path)},
        "startup": m.startup,
        "startup_cpu": m.startup_cpu,
        "runs": _raw(m.all_runs),
        "streams": {
            "streams": args.streams,
            "records_per_stream": args.streams_records,
            "runs": _raw(list(m.streams.values())),
        },
        "capacity": {
            "scale": args.capacity_scale,
            "runs": [
                {**r.__dict__, "efficiency_accepts": r.efficiency_accepts, "efficiency_wall": r.efficiency_wall}
                for r in capacity_runs
            ],
        },
        "verdicts": {k: {"pass": ok, "value": text} for k, (ok, text) in verdicts.items()},
    }
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    (OUT / f"results-{stamp}.json").write_text(json.dumps(raw, indent=2, default=str))
    if args.write_results:
        machine = (
            f"- date: {info['date']}\n"
            f"- machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, "
            f"{info['platform']}\n"
            f"- python {info['python']}; "
            + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
            + f"\n- command: `{cmdline}`\n"
        )
        (BENCH / "RESULTS.md").write_text("# target-kinesis benchmark results\n\n" + machine + "\n" + report + "\n")
        log("wrote bench/RESULTS.md")
    log(f"raw results: {(OUT / f'results-{stamp}.json').relative_to(ROOT)}")
    failed = [r for r in [*every_run, *capacity_runs] if r.status in ("FAILED", "TIMEOUT", "MISMATCH")]
    return 1 if failed else 0
