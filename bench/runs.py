"""One measured run of a contender against the null endpoint, and runs alternating over repeats.

A run is checked against the endpoint's counters (every record received, else MISMATCH), and
contenders alternate run by run so that the drift of a shared machine weighs on all alike.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.base import LOGS, log
from bench.contenders import Contender
from bench.endpoints import Endpoint
from bench.fmt import _fmt_int
from bench.inputs import ensure_input
from bench.process import _tail, run_child, system_busy_seconds, timeout_for


@dataclass
class Run:
    key: str
    label: str
    records: int
    status: str = "ok"
    wall: float = 0.0
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    rss_mib: float = 0.0
    received: int | None = None
    calls: int | None = None
    aws_records: int | None = None  # AWS records that carried `received` events (packed contenders)
    endpoint_cpu: float = 0.0
    other_cpu: float = 0.0  # CPU used meanwhile by processes other than child and endpoint
    state_lines: int = 0
    rc: int | None = None
    detail: str = ""
    walls: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)  # rss_mib of each repeat (rss_mib: the largest)

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys

    @property
    def rps(self) -> float:
        return self.records / self.wall if self.wall > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _count_state_lines(path: Path) -> int:
    n = 0
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        for line in fh:
            if b'"bookmarks"' in line:
                n += 1
    return n


def measure(
    contender: Contender,
    input_path: Path,
    records: int,
    endpoint: Endpoint,
    timeout: float,
    env: dict[str, str],
    tag: str = "",
) -> Run:
    run = Run(contender.key, contender.label, records)
    if contender.argv is None:
        run.status = "SKIPPED"
        run.detail = contender.missing
        return run
    if not endpoint.alive():
        raise RuntimeError("null endpoint died; see bench/out/logs/null_endpoint.stderr")
    endpoint.reset()
    ep_cpu0 = endpoint.cpu_seconds()
    sys_cpu0 = system_busy_seconds()
    stem = f"{contender.key}-{records}{tag}"
    try:
        child = run_child(contender.argv, input_path, stem, timeout, env)
    except OSError as exc:  # e.g. the command cannot be executed
        run.status = "FAILED"
        run.detail = f"cannot start {contender.argv[0]}: {exc}"
        log(f"!!! {contender.label}: {run.detail}")
        return run
    counts = endpoint.counts()
    run.endpoint_cpu = endpoint.cpu_seconds() - ep_cpu0
    sys_cpu = system_busy_seconds() - sys_cpu0
    rc, wall, timed_out = child.rc, child.wall, child.timed_out
    run.rc = rc
    run.wall = wall
    run.walls = [wall]
    run.cpu_user, run.cpu_sys = child.rusage.ru_utime, child.rusage.ru_stime
    run.rss_mib = child.rss_mib
    run.peaks = [child.rss_mib]
    run.other_cpu = max(0.0, sys_cpu - run.cpu - run.endpoint_cpu)
    if run.other_cpu > 0.25 * max(wall, 1.0):
        log(
            f"warning: other processes used {run.other_cpu:.1f} CPU-s during this {wall:.1f}s run "
            "(busy machine: numbers are noisy; rerun on an idle machine or use --repeat)"
        )
    run.state_lines = _count_state_lines(LOGS / f"{stem}.stdout")
    if contender.counted_api:
        run.received = counts.get(contender.received_key or f"{contender.counted_api}_records", 0)
        run.calls = counts.get(f"{contender.counted_api}_calls", 0)
        if contender.received_key:
            run.aws_records = counts.get(f"{contender.counted_api}_records", 0)
    else:
        run.received = counts.get("kinesis_records", 0) + counts.get("firehose_records", 0)
    if timed_out:
        run.status = "TIMEOUT"
        run.detail = f"killed after {timeout:.0f}s"
    elif rc != 0:
        run.status = "FAILED"
        run.detail = f"exit code {rc}"
    elif contender.counted_api and run.received != records:
        run.status = "MISMATCH"
        run.detail = f"endpoint received {run.received:,} of {records:,} records"
    if not run.ok:
        log(f"!!! {contender.label}: {run.status} {run.detail}")
        tail = _tail(LOGS / f"{stem}.stderr")
        if tail:
            log(f"stderr tail ({LOGS / (stem + '.stderr')}):\n{tail}")
    if run.status == "MISMATCH":
        print(
            f"\n*** MISMATCH *** {contender.label}: {run.detail}\n",
            file=sys.stderr,
            flush=True,
        )
    return run


def merge(runs: list[Run]) -> Run:
    """Combine repeats: median wall/CPU, max RSS, worst status."""
    if len(runs) == 1:
        return runs[0]
    bad = [r for r in runs if not r.ok]
    base = bad[0] if bad else runs[0]
    good = [r for r in runs if r.ok] or runs
    merged = Run(base.key, base.label, base.records, base.status, detail=base.detail)
    merged.walls = [r.wall for r in good]
    merged.wall = statistics.median(merged.walls)
    merged.cpu_user = statistics.median(r.cpu_user for r in good)
    merged.cpu_sys = statistics.median(r.cpu_sys for r in good)
    merged.rss_mib = max(r.rss_mib for r in runs)
    merged.peaks = [r.rss_mib for r in good]
    merged.endpoint_cpu = statistics.median(r.endpoint_cpu for r in good)
    merged.other_cpu = max(r.other_cpu for r in runs)
    merged.received = base.received
    merged.calls = base.calls
    merged.aws_records = base.aws_records
    merged.state_lines = base.state_lines
    merged.rc = base.rc
    return merged


@dataclass
class Bench:
    """What every measured run shares."""

    contenders: dict[str, Contender]
    endpoint: Endpoint
    env: dict[str, str]
    repeat: int
    min_rate: float


def run_alternating(
    bench: Bench, keys: list[str], input_path: Path, records: int, what: str, tag: str = "", extra_timeout: float = 0.0
) -> dict[str, Run]:
    """Each of ``keys`` ``bench.repeat`` times on one input, the contenders alternating run
    by run, so that the drift of a shared machine weighs on all of them alike. Returns each
    one's repeats merged (median); a missing contender gets one SKIPPED run."""
    reps: dict[str, list[Run]] = {key: [] for key in keys}
    timeout = timeout_for(records, bench.min_rate) + extra_timeout
    for rep in range(bench.repeat):
        for key in keys:
            c = bench.contenders[key]
            if c.argv is None and reps[key]:
                continue  # already recorded as SKIPPED
            if c.argv is not None:
                log(f"{what} {rep + 1}/{bench.repeat}: {c.label}, {records:,} records")
            r = measure(c, input_path, records, bench.endpoint, timeout, bench.env, tag=f"{tag}-r{rep}")
            if r.status != "SKIPPED":
                aws = "" if r.aws_records is None else f" in {r.aws_records:,} AWS records"
                log(
                    f"  {r.wall:.2f}s  {r.rps:,.0f} rec/s  cpu {r.cpu:.2f}s  "
                    f"rss {r.rss_mib:.1f} MiB  received {_fmt_int(r.received)}{aws}  "
                    f"endpoint cpu {r.endpoint_cpu:.2f}s  {r.status}"
                )
            reps[key].append(r)
    return {key: merge(runs) for key, runs in reps.items()}


def measure_startup(bench: Bench, keys: list[str], seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds of each contender on an input with no records (SCHEMA + STATE)."""
    startup: dict[str, float] = {}
    startup_cpu: dict[str, float] = {}
    runnable = [key for key in keys if bench.contenders[key].argv is not None]
    if not runnable:
        return startup, startup_cpu
    runs = run_alternating(bench, runnable, ensure_input(0, seed), 0, "startup")
    for key, r in runs.items():
        if r.status in ("ok", "MISMATCH"):  # 0 == 0 received: always ok
            startup[key], startup_cpu[key] = r.wall, r.cpu
            log(f"startup {r.label}: {r.wall:.2f}s, cpu {r.cpu:.2f}s")
    return startup, startup_cpu
