"""The tables and verdicts of the runs against the null endpoint: results, start-up, ratios, --ref, streams, linearity, memory, goals.

The goals of the performance issue are here (``GOAL_*``), next to the verdicts that judge them,
so that a goal reads the same in every table that states it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import statistics
from pathlib import Path

from bench.fmt import _fmt, _fmt_int, _md_table, _ratio
from bench.refs import base_key, is_ref
from bench.runs import Run

GOAL_RATIO = 2.0  # target-kinesis (Kinesis) records/s vs the hand-written producer
GOAL_RSS_MIB = 150.0
GOAL_LINEARITY_PCT = 15.0
GOAL_KPL_THROUGHPUT_RATIO = 1.0  # target-kinesis with aggregation kpl vs without, records (events)/s


def _status_text(run: Run) -> str:
    return run.status if not run.detail else f"{run.status}: {run.detail}"


def _marginal_cpu_us(runs: list[Run], startup_cpu: dict[str, float]) -> list[float | None]:
    """CPU per record added from the next smaller size (from the 0-record run for the first).

    What cost growing linearly means: each record costs the same whatever the size, once
    the fixed start-up is paid. Differences of medians, so a noisy start-up weighs only on
    the first step.
    """
    out: list[float | None] = []
    previous: tuple[int, float] | None = None
    for run in runs:
        if previous is None and run.key in startup_cpu:
            previous = (0, startup_cpu[run.key])
        if previous is None or not run.ok or run.records <= previous[0]:
            out.append(None)
        else:
            out.append((run.cpu - previous[1]) / (run.records - previous[0]) * 1e6)
        previous = (run.records, run.cpu) if run.ok else previous
    return out


def _net_rps(run: Run, startup: dict[str, float]) -> float | None:
    s = startup.get(run.key)
    if s is None or not run.ok or run.wall - s <= 0:
        return None
    return run.records / (run.wall - s)


def _busy(run: Run) -> str:
    """CPUs kept busy on average: CPU seconds of the process tree over its wall time (2.00 on
    a 2-CPU machine means both cores worked the whole run)."""
    return f"{run.cpu / run.wall:.2f}" if run.ok and run.wall > 0 else "-"


def results_table(runs: list[Run], startup: dict[str, float]) -> str:
    rows = [
        "| contender | records | wall s | records/s | net records/s | CPU s | CPUs busy | CPU µs/rec "
        "| peak RSS MiB | endpoint received | endpoint CPU s | other CPU s | status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        if r.status == "SKIPPED":
            rows.append(f"| {r.label} | {r.records:,} | - | - | - | - | - | - | - | - | - | - | SKIPPED: {r.detail} |")
            continue
        net = _net_rps(r, startup)
        status = _status_text(r)
        rows.append(
            f"| {r.label} | {r.records:,} | {r.wall:.2f} | {r.rps:,.0f} | "
            f"{'-' if net is None else f'{net:,.0f}'} | {r.cpu:.2f} | {_busy(r)} | "
            f"{(r.cpu / r.records * 1e6) if r.records else 0:.1f} | {r.rss_mib:.1f} | "
            f"{_fmt_int(r.received)} | {r.endpoint_cpu:.2f} | {r.other_cpu:.2f} | {status} |"
        )
    return "\n".join(rows)


def startup_table(startup: dict[str, float], startup_cpu: dict[str, float], labels: dict[str, str]) -> str:
    rows = [[labels[k], f"{v:.2f}", _fmt(startup_cpu.get(k), ".2f")] for k, v in startup.items()]
    return _md_table(["contender", "startup s (0 records)", "CPU s"], rows, "lrr")


def _net_ratio(a: Run, b: Run, startup: dict[str, float]) -> str:
    """`a`'s records/s over `b`'s, each net of its start-up ("-" without start-up runs)."""
    return _ratio(_net_rps(a, startup), _net_rps(b, startup))


def _median_peak(run: Run) -> float:
    return statistics.median(run.peaks) if run.peaks else run.rss_mib


def ref_section(runs: list[Run], pairs: list[tuple[str, str]], startup: dict[str, float]) -> str:
    """Each target contender next to its --ref twin, at every size both ran (medians of the repeats)."""
    by = {(r.key, r.records): r for r in runs}
    rows: list[list[str]] = []
    for cur_key, ref_key_ in pairs:
        for records in sorted(n for k, n in by if k == cur_key):
            cur, ref = by[(cur_key, records)], by.get((ref_key_, records))
            if ref is None:
                continue
            both = cur.ok and ref.ok
            status = "ok" if both else f"current {_status_text(cur)}; ref {_status_text(ref)}"
            if not both:
                rows.append([cur.label, f"{records:,}", *["-"] * 10, status])
                continue
            cur_us, ref_us = cur.cpu / records * 1e6, ref.cpu / records * 1e6
            cur_mib, ref_mib = _median_peak(cur), _median_peak(ref)
            rows.append(
                [
                    cur.label,
                    f"{records:,}",
                    f"{cur.rps:,.0f}",
                    f"{ref.rps:,.0f}",
                    _ratio(cur.rps, ref.rps),
                    _net_ratio(cur, ref, startup),
                    f"{cur_us:.1f}",
                    f"{ref_us:.1f}",
                    _ratio(cur_us, ref_us),
                    f"{cur_mib:.1f}",
                    f"{ref_mib:.1f}",
                    _ratio(cur_mib, ref_mib),
                    status,
                ]
            )
    if not rows:
        return "(no size was run by both)"
    header = [
        "contender",
        "records",
        "records/s",
        "records/s ref",
        "ratio",
        "net of startup",
        "CPU µs/rec",
        "CPU µs/rec ref",
        "ratio",
        "peak MiB",
        "peak MiB ref",
        "ratio",
        "status",
    ]
    return _md_table(header, rows, "lrrrrrrrrrrrl")


def _throughput_verdict(tk: Run, baseline: Run, startup: dict[str, float]) -> tuple[str, tuple[bool, str]]:
    """The throughput goal, judged end to end at one size; one wording wherever it is judged."""
    raw = tk.rps / baseline.rps
    return f"throughput at {tk.records:,} records (end to end)", (
        raw >= GOAL_RATIO,
        f"{raw:.2f}x the baseline producer, {_net_ratio(tk, baseline, startup)} net of start-up "
        f"(goal >= {GOAL_RATIO:.0f}x)",
    )


def _ms_per_stream(run: Run, streams: int, startup: dict[str, float], startup_cpu: dict[str, float]) -> tuple:
    """Wall and CPU ms per stream net of the contender's start-up (None when unknown)."""
    if not run.ok or run.key not in startup or run.key not in startup_cpu:
        return None, None
    return (run.wall - startup[run.key]) / streams * 1e3, (run.cpu - startup_cpu[run.key]) / streams * 1e3


def streams_section(
    runs: dict[str, Run], streams: int, startup: dict[str, float], startup_cpu: dict[str, float]
) -> str:
    """One row per contender of the --streams scenario; after a --ref twin, current / ref."""
    rows: list[list[str]] = []
    for key, r in runs.items():
        if r.status == "SKIPPED":
            rows.append([r.label, *["-"] * 6, _status_text(r)])
            continue
        wall_ms, cpu_ms = _ms_per_stream(r, streams, startup, startup_cpu)
        rows.append(
            [
                r.label,
                f"{r.wall:.2f}",
                f"{r.cpu:.2f}",
                _fmt(wall_ms, ".2f"),
                _fmt(cpu_ms, ".2f"),
                f"{_median_peak(r):.1f}",
                _fmt_int(r.received),
                _status_text(r),
            ]
        )
        current = runs.get(base_key(key))
        if is_ref(key) and current is not None and current.ok and r.ok:
            cur_ms = _ms_per_stream(current, streams, startup, startup_cpu)
            rows.append(
                [
                    f"**current / ref** ({current.label})",
                    _ratio(current.wall, r.wall),
                    _ratio(current.cpu, r.cpu),
                    _ratio(cur_ms[0], wall_ms),
                    _ratio(cur_ms[1], cpu_ms),
                    _ratio(_median_peak(current), _median_peak(r)),
                    "",
                    "",
                ]
            )
    header = [
        "contender",
        "wall s",
        "CPU s",
        "wall ms/stream (net)",
        "CPU ms/stream (net)",
        "peak MiB",
        "endpoint received",
        "status",
    ]
    return _md_table(header, rows, "lrrrrrrl")


def ratios_section(runs: dict[str, Run], startup: dict[str, float]) -> tuple[str, dict]:
    verdicts: dict = {}
    lines = ["| ratio | records/s | net of startup |", "|---|---:|---:|"]
    tk = runs.get("tk-kinesis")
    if tk is None or not tk.ok:
        why = "not run" if tk is None else f"{tk.status} {tk.detail}".strip()
        return f"target-kinesis (Kinesis) has no result ({why}): no ratios.", verdicts
    for other_key, name in (
        ("baseline", "target-kinesis (Kinesis) / baseline producer"),
        ("null-target", "target-kinesis (Kinesis) / null SDK target"),
        ("baseline-firehose", "target-kinesis (Kinesis) / baseline producer (Firehose)"),
    ):
        other = runs.get(other_key)
        if other is None or not other.ok or other.rps == 0:
            continue
        lines.append(f"| {name} | {tk.rps / other.rps:.2f}x | {_net_ratio(tk, other, startup)} |")
        if other_key == "baseline":
            verdicts.update([_throughput_verdict(tk, other, startup)])
    fh, base_fh = runs.get("tk-firehose"), runs.get("baseline-firehose")
    if fh and fh.ok and base_fh and base_fh.ok:
        lines.append(f"| target-kinesis (Firehose) / baseline producer (Firehose) | {fh.rps / base_fh.rps:.2f}x | - |")
    kpl = runs.get("tk-kinesis-kpl")
    notes: list[str] = []
    if kpl is not None and kpl.status != "SKIPPED":
        verdicts.update([_kpl_throughput_verdict(kpl, tk, startup)])
        if kpl.ok:
            lines.append(
                f"| target-kinesis (Kinesis, aggregation kpl) / target-kinesis (Kinesis) | {kpl.rps / tk.rps:.2f}x "
                f"| {_net_ratio(kpl, tk, startup)} |"
            )
            per_record = kpl.received / kpl.aws_records if kpl.received and kpl.aws_records else None
            notes.append(
                f"Aggregation kpl: {_fmt_int(kpl.received)} events (counted inside the aggregates by the endpoint) "
                f"in {_fmt_int(kpl.aws_records)} AWS records ({_fmt(per_record, ',.1f')} events a record) over "
                f"{_fmt_int(kpl.calls)} PutRecords calls, against {_fmt_int(tk.calls)} without; CPU "
                f"{kpl.cpu / kpl.records * 1e6:.1f} µs/event against {tk.cpu / tk.records * 1e6:.1f} "
                f"({_ratio(kpl.cpu, tk.cpu)}); endpoint CPU {kpl.endpoint_cpu:.2f} s against "
                f"{tk.endpoint_cpu:.2f} s (it decodes every aggregate to count its events)."
            )
    if len(lines) == 2:
        return "(no other contender to compare target-kinesis (Kinesis) with)", verdicts
    return "\n".join(lines) + "".join(f"\n\n{note}" for note in notes), verdicts


def _kpl_throughput_verdict(kpl: Run, tk: Run, startup: dict[str, float]) -> tuple[str, tuple[bool, str]]:
    """Aggregation must not cost throughput: events/s with kpl at least those without it."""
    name = f"throughput with aggregation kpl at {kpl.records:,} records (null endpoint)"
    if not kpl.ok:
        return name, (False, _status_text(kpl))
    raw = kpl.rps / tk.rps
    return name, (
        raw >= GOAL_KPL_THROUGHPUT_RATIO,
        f"{raw:.2f}x the events/s without aggregation ({kpl.rps:,.0f} against {tk.rps:,.0f}), "
        f"{_net_ratio(kpl, tk, startup)} net of start-up (goal >= {GOAL_KPL_THROUGHPUT_RATIO:.2f}x)",
    )


def linearity_section(
    by_size: dict[str, list[Run]], startup: dict[str, float], startup_cpu: dict[str, float]
) -> tuple[str, dict]:
    """`startup` / `startup_cpu`: wall and CPU seconds of each contender on a 0-record input."""
    verdicts: dict = {}
    out: list[str] = []
    for key, runs in by_size.items():
        if not runs:
            continue
        label = runs[0].label
        judged = verdicts if not is_ref(key) else {}  # a --ref twin is shown, not judged
        if any(r.status == "SKIPPED" for r in runs):
            out.append(f"{label}: SKIPPED ({runs[0].detail})")
            continue
        rows = [
            f"**{label}**",
            "",
            "| records | wall s | records/s | net records/s | CPUs busy | CPU µs/rec | marginal CPU µs/rec "
            "| peak RSS MiB | status |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        marginal = _marginal_cpu_us(runs, startup_cpu)
        for r, net_cpu in zip(runs, marginal, strict=True):
            net = _net_rps(r, startup)
            rows.append(
                f"| {r.records:,} | {r.wall:.2f} | {r.rps:,.0f} | "
                f"{'-' if net is None else f'{net:,.0f}'} | {_busy(r)} | "
                f"{r.cpu / r.records * 1e6:.1f} | {'-' if net_cpu is None else f'{net_cpu:.1f}'} | "
                f"{r.rss_mib:.1f} | {_status_text(r)} |"
            )
        ok_runs = [r for r in runs if r.ok]
        if len(ok_runs) >= 2 and len(ok_runs) == len(runs):
            raw = [r.rps for r in ok_runs]
            dev_raw = (max(raw) / min(raw) - 1) * 100
            nets = [_net_rps(r, startup) for r in ok_runs]
            rows.append("")
            rows.append(f"- records/s spread (max/min - 1): **{dev_raw:.1f}%** end to end")
            cpu = [r.cpu / r.records for r in ok_runs]
            rows.append(
                f"- CPU per record spread: {(max(cpu) / min(cpu) - 1) * 100:.1f}% "
                "(start-up CPU included; insensitive to other load on the machine)"
            )
            steps = [m for m in marginal if m is not None]
            # Between the sizes run: what each further record costs. The step from the
            # 0-record run to the smallest size also carries one-time warm-up (forked
            # processes' first page copies, connections, caches); it is shown, not judged.
            between = [m for r, m in zip(runs, marginal, strict=True) if m is not None and r is not runs[0]]
            if len(steps) >= 2 and all(m > 0 for m in steps):
                dev_all = (max(steps) / min(steps) - 1) * 100
                rows.append(
                    "- marginal CPU per record, from a 0-record run to the smallest size and from each size "
                    f"to the next: **{dev_all:.1f}%** spread (the first step carries the one-time warm-up)"
                )
            if len(between) >= 2 and all(m > 0 for m in between):
                dev_cpu = (max(between) / min(between) - 1) * 100
                rows.append(f"- marginal CPU per record between the sizes run: **{dev_cpu:.1f}%** spread")
                judged[f"cost per record {label} (marginal CPU between sizes)"] = (
                    dev_cpu <= GOAL_LINEARITY_PCT,
                    f"{dev_cpu:.1f}% spread of the CPU each further record costs, "
                    f"{' / '.join(f'{m:.1f}' for m in between)} µs (goal <= {GOAL_LINEARITY_PCT:.0f}%)",
                )
            if all(nets):
                dev_net = (max(nets) / min(nets) - 1) * 100
                rows.append(f"- net of startup ({startup[key]:.2f}s, measured on a 0-record input): **{dev_net:.1f}%**")
                judged[f"records/s across sizes {label}"] = (
                    dev_net <= GOAL_LINEARITY_PCT,
                    f"{dev_net:.1f}% net of startup, {dev_raw:.1f}% end to end (goal <= {GOAL_LINEARITY_PCT:.0f}%)",
                )
            else:
                judged[f"records/s across sizes {label}"] = (
                    dev_raw <= GOAL_LINEARITY_PCT,
                    f"{dev_raw:.1f}% end to end (goal <= {GOAL_LINEARITY_PCT:.0f}%)",
                )
        out.append("\n".join(rows))
    tk, base = by_size.get("tk-kinesis"), by_size.get("baseline")
    if tk and base:
        rows = [
            "**target-kinesis (Kinesis) / baseline producer, at each size**",
            "",
            "| records | records/s ratio | net of startup |",
            "|---:|---:|---:|",
        ]
        largest: tuple[Run, Run] | None = None
        for t, b in zip(tk, base, strict=False):
            if t.records != b.records or not (t.ok and b.ok):
                continue
            rows.append(f"| {t.records:,} | {t.rps / b.rps:.2f}x | {_net_ratio(t, b, startup)} |")
            largest = (t, b)
        out.append("\n".join(rows))
        if largest is not None:
            verdicts.update([_throughput_verdict(*largest, startup)])
    return "\n\n".join(out) if out else "(no linearity runs)", verdicts


def memory_verdicts(all_runs: list[Run]) -> dict:
    verdicts: dict = {}
    for key in ("tk-kinesis", "tk-kinesis-kpl", "tk-firehose"):
        # a run that failed or timed out proves nothing about memory
        runs = [r for r in all_runs if r.key == key and r.status in ("ok", "MISMATCH")]
        if not runs:
            continue
        worst = max(runs, key=lambda r: r.rss_mib)
        verdicts[f"memory {worst.label}"] = (
            worst.rss_mib < GOAL_RSS_MIB,
            f"peak {worst.rss_mib:.1f} MiB at {worst.records:,} records "
            f"(goal < {GOAL_RSS_MIB:.0f} MiB; sizes run: "
            f"{', '.join(f'{r.records:,}' for r in sorted(runs, key=lambda r: r.records))})",
        )
    return verdicts


def machine_info() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if m:
            cpu = m.group(1).strip()
    mem = "unknown"
    with contextlib.suppress(OSError):
        m = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M)
        if m:
            mem = f"{int(m.group(1)) / 2**20:.1f} GiB"
    versions = {}
    from importlib import metadata

    for dist in ("target-kinesis", "singer-sdk", "boto3", "botocore", "orjson", "fastjsonschema", "msgspec"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def goals_section(verdicts: dict) -> str:
    if not verdicts:
        return "(no goal could be evaluated)"
    rows = ["| goal | result | value |", "|---|---|---|"]
    for name, (ok, text) in verdicts.items():
        rows.append(f"| {name} | {'PASS' if ok else '**FAIL**'} | {text} |")
    return "\n".join(rows)
