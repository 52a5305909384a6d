"""Running the capacity scenarios: a fresh capacity endpoint per run, the contenders' pipelines against it, its counters.

Each run gets its own endpoint so that no token bucket or counter carries over; the ideal time
of a run is computed from what was sent, so that efficiency compares like with like.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import process
from bench.base import LOGS, OUT, PY, log
from bench.contenders import Contender, target_command, write_config
from bench.endpoints import Endpoint
from bench.fmt import _fmt, _fmt_int
from bench.inputs import ensure_input, input_meta
from bench.process import _tail, child_env, run_child
from bench.readback import Readback, read_back, summary_figures
from bench.refs import BOOT, RefTree, ref_key
from bench.scenarios import (
    CAPACITY_LEAN_INPUT,
    CAPACITY_STREAM,
    SCENARIOS,
    SHARD_BYTES_PER_S,
    SHARD_RECORDS_PER_S,
    Scenario,
    expected_shard_records,
)

CAPACITY_TIMEOUT_FACTOR = 4.0  # a run is killed after timeout-base + 4 x its ideal seconds


#: What the target's Segment envelope (type, event, userId, messageId, timestamp, sentAt, context)
#: adds to a RECORD line's size, about (the line's own Singer wrapper taken off): for timeouts only.
EVENT_OVER_LINE_BYTES = 300


@dataclass
class CapacityRun:
    """One run of one contender in one scenario (all its pipelines), and what the endpoint saw."""

    scenario: str
    key: str
    label: str
    sent: int
    status: str = "ok"
    detail: str = ""
    wall: float = 0.0  # first spawn to last exit
    cpu: float = 0.0  # user + sys of every pipeline
    rss_mib: float = 0.0  # the largest pipeline's peak
    ideal: float = 0.0  # seconds at the stream's capacity
    span: float | None = None  # the endpoint's first to last accept
    first_accept: float | None = None  # seconds from the first spawn to the first accept
    offered: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    failed_calls: dict[str, int] = field(default_factory=dict)
    landed: int = 0
    stored_bytes: int = 0  # what the endpoint stored: Kinesis data and partition keys, Firehose data
    endpoint_cpu: float = 0.0
    exits: list[int | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # last error line of each pipeline that failed
    #: shard id -> records, expected (from the input), bytes, last accept (s after the first accept)
    shards: dict[str, dict] = field(default_factory=dict)
    efficiencies: list[float] = field(default_factory=list)  # accepts-based, of every repeat (merged)
    runs: int = 1
    # aggregation scenarios: ``landed`` is then the events read back out of the stored records
    aggregation: str = ""  # the target's `aggregation` in this run ("" for none)
    aws_landed: int | None = None  # AWS records the endpoint stored
    summary: dict | None = None  # the target's summary line(s): events, aws_records, billed (None: absent)
    readback: dict | None = None  # Readback as a dict (None: not read back)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def events_ok(self) -> int:
        """Events that reached the stream, each once: sent less those lost."""
        lost = (self.readback or {}).get("lost")
        return self.sent - lost if lost is not None else min(self.landed, self.sent)

    @property
    def events_per_s(self) -> float | None:
        """Events that reached the stream / wall s (spawn to exit)."""
        return self.events_ok / self.wall if self.wall else None

    @property
    def events_per_s_accepts(self) -> float | None:
        """Events that reached the stream / the endpoint's first to last accept."""
        return self.events_ok / self.span if self.span else None

    @property
    def ceiling_events_per_s(self) -> float | None:
        """Events a second the stream's capacity allows for what was sent (records / ideal s)."""
        return self.sent / self.ideal if self.ideal else None

    @property
    def bytes_per_record(self) -> float | None:
        """Mean stored size of an AWS record (an event, without aggregation): Kinesis data and
        partition key, Firehose data (the event JSON and its newline)."""
        records = self.aws_landed if self.aws_landed is not None else self.landed
        return self.stored_bytes / records if records else None

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def refused_share(self) -> float | None:
        return self.refused_total / self.offered if self.offered else None

    @property
    def efficiency_accepts(self) -> float | None:
        """ideal / accepts s; None unless every record landed (else it measures nothing)."""
        return self.ideal / self.span if self.span and self.ideal and self.landed == self.sent else None

    @property
    def efficiency_wall(self) -> float | None:
        """ideal / wall s; None unless every record landed."""
        return self.ideal / self.wall if self.wall and self.ideal and self.landed == self.sent else None

    def hot_and_cold(self) -> tuple[tuple[str, float], float] | None:
        """(hot shard, its last accept) and the cold shards' latest last accept, in s after the
        first accept; the hot shard is the one with the most records. None without them."""
        timed = {sid: s for sid, s in self.shards.items() if s.get("last") is not None}
        if len(timed) < 2:
            return None
        hot = max(timed, key=lambda sid: timed[sid]["records"])
        return (hot, timed[hot]["last"]), max(s["last"] for sid, s in timed.items() if sid != hot)


def _last_error_line(path: Path) -> str:
    """The last line of a stderr log that reads as an error (else its last line)."""
    try:
        text = path.read_bytes()[-65536:].decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|exception|traceback|failed|fatal|critical", line, re.I)]
    return (errors or lines or [""])[-1]


def _kinesis_ideal(
    scenario: Scenario, inputs: list[Path], stats: dict, sent: int, events_landed: int | None = None
) -> tuple[float, dict[str, dict]]:
    """Seconds the busiest shard needs at its rate (records, or bytes if more binding), and the
    per-shard figures. Records per shard come from the input (where the userIds hash to), bytes
    from what the endpoint stored (scaled up to what was sent when records are missing).

    ``events_landed``: the events read back when the target packed them (``aggregation``); then
    a shard's records are the AWS records it stored (scaled up likewise), not the input's events."""
    share_left = 1.0 - scenario.other_share
    expected = [sum(col) for col in zip(*(expected_shard_records(p, scenario.shards) for p in inputs), strict=True)]
    landed = stats.get("accepted", 0) if events_landed is None else events_landed
    scale = sent / landed if landed else 1.0
    shard_stats = stats.get("shards", {})
    firsts = [s["first_accept"] for s in shard_stats.values() if s.get("first_accept") is not None]
    t0 = min(firsts) if firsts else None
    ideal = 0.0
    shards: dict[str, dict] = {}
    for index, (sid, s) in enumerate(sorted(shard_stats.items())):
        want = expected[index] if index < len(expected) else s.get("accepted", 0)
        aws_records = want if events_landed is None else s.get("accepted", 0) * scale
        by_records = aws_records / (SHARD_RECORDS_PER_S * share_left)
        by_bytes = s.get("bytes", 0) * scale / (SHARD_BYTES_PER_S * share_left)
        ideal = max(ideal, by_records, by_bytes)
        last = s.get("last_accept")
        shards[sid] = {
            "records": s.get("accepted", 0),
            "expected": want,
            "bytes": s.get("bytes", 0),
            "ideal": max(by_records, by_bytes),
            "last": None if last is None or t0 is None else last - t0,
        }
    return ideal, shards


def _firehose_ideal(stats: dict, sent: int, events_landed: int | None = None) -> float:
    """Seconds the stream needs at its bytes (or records) a second for what was sent: bytes as the
    endpoint counts them (each record's data: the event JSON and its newline), scaled up to what
    was sent when records are missing. ``events_landed``: the events read back when the target
    packed them (``aggregation: lines``), the AWS records being fewer."""
    capacity = stats.get("capacity", {})
    records, landed_bytes = stats.get("accepted", 0), stats.get("accepted_bytes", 0)
    landed = records if events_landed is None else events_landed
    if not landed:
        return 0.0
    scale = sent / landed
    by_bytes = landed_bytes * scale / capacity.get("bytes_per_second", SHARD_BYTES_PER_S)
    return max(by_bytes, records * scale / capacity.get("records_per_second", float("inf")))


def _nominal_ideal(scenario: Scenario, inputs: list[Path], records: int) -> float:
    """The ideal before the run (for its timeout): Firehose bytes guessed from the input's size."""
    if scenario.service == "firehose":
        line_bytes = sum(input_meta(p)["avg_record_line_bytes"] for p in inputs) / len(inputs)
        return records * (line_bytes + EVENT_OVER_LINE_BYTES) / scenario.firehose_bytes_per_s
    per_shard = [sum(c) for c in zip(*(expected_shard_records(p, scenario.shards) for p in inputs), strict=True)]
    return max(per_shard) / (SHARD_RECORDS_PER_S * (1.0 - scenario.other_share))


def _run_pipelines(argvs: list[list[str]], inputs: list[Path], stem: str, timeout: float) -> tuple[float, list]:
    """Every pipeline at once (each one a child on its own input); the wall from the first spawn to
    the last exit, and each one's ChildResult (or the OSError that kept it from starting)."""
    results: list = [None] * len(argvs)
    env = child_env()

    def one(i: int) -> None:
        try:
            results[i] = run_child(argvs[i], inputs[i], f"{stem}-p{i}", timeout, env)
        except OSError as exc:
            results[i] = exc

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(argvs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t0, results


def measure_capacity(
    scenario: Scenario, contender: Contender, inputs: list[Path], records: int, rep: int
) -> CapacityRun:
    """One run: a fresh capacity endpoint, the contender's pipelines against it, its counters."""
    sent = records * len(inputs)
    run = CapacityRun(scenario.name, contender.key, contender.label, sent)
    run.aggregation = contender.config.get("aggregation", "")
    if contender.argv is None:
        run.status, run.detail = "SKIPPED", contender.missing
        return run
    stem = f"capacity-{scenario.name}-{contender.key}-r{rep}"
    endpoint = Endpoint(scenario.endpoint_argv(), "capacity endpoint", f"{stem}.endpoint")
    endpoint.start(quiet=True)
    readback: Readback | None = None
    try:
        cfg = write_config(
            OUT / "capacity" / f"{stem}.json", endpoint.url, scenario.service, CAPACITY_STREAM, contender.config
        )
        argvs = [[*contender.argv, "--config", str(cfg)] for _ in inputs]
        timeout = process.TIMEOUT_BASE + CAPACITY_TIMEOUT_FACTOR * _nominal_ideal(scenario, inputs, sent)
        ep_cpu0 = endpoint.cpu_seconds()
        spawned = time.monotonic()
        run.wall, children = _run_pipelines(argvs, inputs, stem, timeout)
        run.endpoint_cpu = endpoint.cpu_seconds() - ep_cpu0
        if not endpoint.alive():
            run.status, run.detail = "FAILED", f"the capacity endpoint died (see {endpoint.log_path})"
            return run
        stats = endpoint.stats(CAPACITY_STREAM)
        if scenario.aggregation:
            readback = read_back(scenario, endpoint, inputs)
    finally:
        endpoint.stop()
    if scenario.aggregation:
        run.summary = summary_figures([LOGS / f"{stem}-p{i}.stderr" for i in range(len(inputs))])
        run.readback = readback.__dict__ if readback is not None else None
    _fill_capacity(run, scenario, inputs, stats, spawned)
    _judge_capacity(run, children, stem, timeout)
    if readback is not None and readback.error and run.ok:
        run.status, run.detail = "FAILED", f"reading the stored records back failed: {readback.error}"
    return run


def _fill_capacity(run: CapacityRun, scenario: Scenario, inputs: list[Path], stats: dict, spawned: float) -> None:
    """The endpoint's counters into ``run``; the ideal seconds for what was sent."""
    run.offered = stats.get("offered", 0)
    run.refused = dict(stats.get("refused", {}))
    run.failed_calls = dict(stats.get("failed_calls", {}))
    run.landed = run.aws_landed = stats.get("accepted", 0)
    run.stored_bytes = stats.get("accepted_bytes", 0)
    events = None
    if run.readback is not None and not run.readback.get("error"):
        run.landed = events = run.readback["events"]  # events read back: AWS records may carry many
    first, last = stats.get("first_accept"), stats.get("last_accept")
    if first is not None and last is not None:  # the endpoint's time.monotonic(): the same clock as ours
        run.span = last - first
        run.first_accept = first - spawned
    packed = events if run.aggregation else None
    if scenario.service == "firehose":
        run.ideal = _firehose_ideal(stats, run.sent, packed)
    else:
        run.ideal, run.shards = _kinesis_ideal(scenario, inputs, stats, run.sent, packed)


def _judge_capacity(run: CapacityRun, children: list, stem: str, timeout: float) -> None:
    """Exit codes, CPU and memory of the pipelines; the run's status (worst first)."""
    for i, child in enumerate(children):
        log_path = LOGS / f"{stem}-p{i}.stderr"
        if isinstance(child, OSError):
            run.exits.append(None)
            run.errors.append(f"cannot start: {child}")
            continue
        run.exits.append(child.rc)
        run.cpu += child.rusage.ru_utime + child.rusage.ru_stime
        run.rss_mib = max(run.rss_mib, child.rss_mib)
        if child.timed_out:
            run.status, run.detail = "TIMEOUT", f"killed after {timeout:.0f}s"
        elif child.rc != 0 and run.status != "TIMEOUT":
            run.status, run.detail = "FAILED", f"exit code {child.rc}"
        if child.timed_out or child.rc != 0:
            run.errors.append(_last_error_line(log_path))
            log(f"!!! {run.label} in {run.scenario}: {run.status} {run.detail}; stderr tail ({log_path}):")
            log(_tail(log_path))
    if any(isinstance(c, OSError) for c in children):
        run.status, run.detail = "FAILED", "a pipeline could not start"
    elif run.ok and run.landed != run.sent:
        run.status, run.detail = "MISMATCH", f"endpoint stored {run.landed:,} of {run.sent:,} records"
        print(f"\n*** MISMATCH *** {run.label} in {run.scenario}: {run.detail}\n", file=sys.stderr, flush=True)


def merge_capacity(runs: list[CapacityRun]) -> CapacityRun:
    """The repeats as one: the median run by efficiency over accepts (its figures, all of them),
    the status of the first run that went wrong, and every run's efficiency."""
    good = [r for r in runs if r.ok and r.efficiency_accepts is not None]
    bad = [r for r in runs if not r.ok]
    if good:
        ordered = sorted(good, key=lambda r: r.efficiency_accepts or 0.0)
        chosen = ordered[(len(ordered) - 1) // 2]
    else:
        chosen = runs[0]
    merged = CapacityRun(**{**chosen.__dict__})
    if bad:
        merged.status, merged.detail = bad[0].status, bad[0].detail
        merged.detail += f" ({len(bad)} of {len(runs)} runs)" if len(runs) > 1 else ""
        merged.errors = bad[0].errors
        merged.exits = bad[0].exits
    merged.efficiencies = [r.efficiency_accepts for r in good if r.efficiency_accepts is not None]
    merged.runs = len(runs)
    return merged


def capacity_contenders(target_cmd: str | None, ref: RefTree | None) -> list[Contender]:
    """The target (its argv without --config) and, with --ref, its twin at REV."""
    tk, missing = target_command(target_cmd)
    out = [Contender("tk", "target-kinesis", tk, None, missing)]
    if ref is not None:
        out.append(Contender(ref_key("tk", ref), f"target-kinesis @{ref.short}", [PY, "-c", BOOT, str(ref.path)], None))
    return out


def scenario_inputs(scenario: Scenario, scale: float, seed: int) -> tuple[list[Path], int]:
    """One input per pipeline (seeds seed, seed+1, ...: no two pipelines send the same records)."""
    records = scenario.scaled(scale)
    lean = CAPACITY_LEAN_INPUT
    return [ensure_input(records, seed + i, scenario.hot_share, lean) for i in range(scenario.pipelines)], records


def scenario_contenders(scenario: Scenario, contenders: list[Contender]) -> list[Contender]:
    """An aggregation scenario's contenders: the target with ``aggregation`` first, then the
    others as they are (the target without it, and the --ref twin, also without it: a commit from
    before aggregation would not know the setting)."""
    if not scenario.aggregation:
        return contenders
    tk = contenders[0]
    packed = Contender(
        f"tk-{scenario.aggregation}",
        f"target-kinesis, aggregation {scenario.aggregation}",
        tk.argv,
        None,
        tk.missing,
        config={"aggregation": scenario.aggregation},
    )
    plain = Contender(tk.key, "target-kinesis, no aggregation", tk.argv, None, tk.missing)
    return [packed, plain, *contenders[1:]]


def run_capacity(names: list[str], scale: float, repeat: int, contenders: list[Contender], seed: int) -> dict:
    """Every scenario: its contenders alternating run by run, ``repeat`` times. Returns
    {scenario: {contender key: merged run}}."""
    out: dict[str, dict[str, CapacityRun]] = {}
    all_contenders = contenders
    for name in names:
        scenario = SCENARIOS[name]
        contenders = scenario_contenders(scenario, all_contenders)
        inputs, records = scenario_inputs(scenario, scale, seed)
        reps: dict[str, list[CapacityRun]] = {c.key: [] for c in contenders}
        for rep in range(repeat):
            for c in contenders:
                if c.argv is None and reps[c.key]:
                    continue
                if c.argv is not None:
                    log(f"capacity {name} {rep + 1}/{repeat}: {c.label}, {records * len(inputs):,} records")
                r = measure_capacity(scenario, c, inputs, records, rep)
                if r.status != "SKIPPED":
                    log(
                        f"  wall {r.wall:.2f}s  ideal {r.ideal:.2f}s  efficiency {_fmt(r.efficiency_accepts, '.3f')} "
                        f"(wall {_fmt(r.efficiency_wall, '.3f')})  offered {r.offered:,}  refused {r.refused_total:,}  "
                        f"landed {r.landed:,}/{r.sent:,}  {_fmt(r.bytes_per_record, ',.0f')} bytes/AWS record  "
                        f"{r.status}"
                    )
                    if r.readback is not None:
                        b = r.readback
                        log(
                            f"  read back in {b['seconds']:.1f}s: {b['aws_records']:,} AWS records "
                            f"({b['aggregated']:,} packed), {b['events']:,} events, lost {b['lost']:,}, "
                            f"duplicated {b['duplicated']:,}, unknown {b['unknown']:,}, misplaced "
                            f"{_fmt_int(b['misplaced'])}, billed units {b['billed']:,} (summary: "
                            f"{_fmt_int((r.summary or {}).get('billed'))})" + (f"  {b['error']}" if b["error"] else "")
                        )
                reps[c.key].append(r)
        out[name] = {key: merge_capacity(runs) for key, runs in reps.items()}
    return out
