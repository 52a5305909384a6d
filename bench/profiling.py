"""``--profile``: one contender run under py-spy or pyinstrument, and the summary of where its time went.

Instead of a benchmark, not beside it: a profiler's overhead makes the run's figures meaningless.
"""

from __future__ import annotations

import argparse
import pstats
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from bench.base import BENCH, BIN, LOGS, OUT, PY, ROOT, log
from bench.contenders import build_contenders
from bench.endpoints import Endpoint, null_endpoint_argv
from bench.inputs import ensure_input
from bench.process import _tail, child_env, run_child, timeout_for
from bench.report import machine_info


def _spy_summary(raw: Path, top: int = 25) -> str:
    """Top functions by self and inclusive samples from py-spy's collapsed stacks.

    Recorded with --subprocesses: target-kinesis's mapping processes are forks of it (their
    stacks run `_worker_main`) and are reported apart from the main process.
    """
    groups: dict[str, tuple[Counter[str], Counter[str]]] = {}
    per_process: Counter[str] = Counter()
    mapping_processes: set[str] = set()
    stacks: list[tuple[str, list[str], int]] = []
    with open(raw, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            process = "process ?"
            while frames and frames[0].startswith("process "):  # parent;child;...: the last is ours
                process = frames[0].split(":", 1)[0]
                frames = frames[1:]
            if frames and frames[0].startswith("thread "):
                frames = frames[1:]
            if not frames:
                continue
            names = [re.sub(r":\d+\)$", ")", f) for f in frames]
            if any(name.startswith(("_worker_main", "worker_main")) for name in names):
                mapping_processes.add(process)
            stacks.append((process, names, n))
            per_process[process] += n
    total = sum(per_process.values())
    if not total:
        return "(no samples)"
    for process, names, n in stacks:
        group = "mapping processes" if process in mapping_processes else "main process"
        self_c, incl = groups.setdefault(group, (Counter(), Counter()))
        self_c[names[-1]] += n
        for name in set(names):
            incl[name] += n
    lines = [
        f"{total:,} py-spy samples (--gil --subprocesses: in each process, whichever thread held its "
        "GIL, i.e. where Python time goes).",
        "",
        "| process | samples | share |",
        "|---|---:|---:|",
    ]
    for process, n in per_process.most_common():
        role = "mapping" if process in mapping_processes else "main"
        lines.append(f"| {process} ({role}) | {n:,} | {n / total * 100:.1f}% |")
    for group in ("main process", "mapping processes"):
        if group not in groups:
            continue
        self_c, incl = groups[group]
        group_total = sum(self_c.values())
        lines += ["", f"### {group}: {group_total:,} samples", "", "| self % | function |", "|---:|---|"]
        lines += [f"| {c / group_total * 100:.1f} | `{name}` |" for name, c in self_c.most_common(top)]
        lines += ["", "| inclusive % | function |", "|---:|---|"]
        lines += [f"| {c / group_total * 100:.1f} | `{name}` |" for name, c in incl.most_common(top)]
    return "\n".join(lines)


def _pstats_summary(path: Path, top: int = 25) -> str:
    st = pstats.Stats(str(path))
    entries = st.stats  # type: ignore[attr-defined]
    total = getattr(st, "total_tt", 0) or sum(v[2] for v in entries.values()) or 1.0

    def name(k: tuple) -> str:
        file, line, func = k
        short = re.sub(r"^.*(site-packages|lib/python3\.\d+)/", "", file)
        short = short.replace(str(ROOT) + "/", "")
        return f"{func} ({short}:{line})"

    by_self = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    by_cum = sorted(entries.items(), key=lambda kv: kv[1][3], reverse=True)[:top]
    lines = [
        f"{total:.2f}s sampled on the main thread (pyinstrument; worker threads not included).",
        "",
        "| self s | self % | function |",
        "|---:|---:|---|",
    ]
    lines += [f"| {v[2]:.2f} | {v[2] / total * 100:.1f} | `{name(k)}` |" for k, v in by_self]
    lines += ["", "| cumulative s | function |", "|---:|---|"]
    lines += [f"| {v[3]:.2f} | `{name(k)}` |" for k, v in by_cum]
    return "\n".join(lines)


def profile(args: argparse.Namespace) -> int:
    input_path = ensure_input(args.records, args.seed)
    endpoint = Endpoint(null_endpoint_argv(args.null_shards))
    endpoint.start()
    try:
        contenders = build_contenders(endpoint, args.target_cmd)
        contender = contenders[args.profile_contender]
        if contender.argv is None:
            log(f"SKIPPED profile of {contender.label}: {contender.missing}")
            return 2
        profiler = args.profiler
        if profiler == "auto":
            has_spy = (BIN / "py-spy").exists() or shutil.which("py-spy")
            profiler = "py-spy" if has_spy else "pyinstrument"
        stem = f"profile-{contender.key}-{args.records}"
        argv = list(contender.argv)
        # run python scripts / console scripts through the profiler
        script_argv = argv[1:] if argv[0] == PY else argv
        if profiler == "py-spy":
            spy = str(BIN / "py-spy") if (BIN / "py-spy").exists() else "py-spy"
            raw = OUT / f"{stem}.collapsed.txt"
            cmd = [
                spy,
                "record",
                "--rate",
                "250",
                "--format",
                "raw",
                "--nolineno",
                "--gil",
                "--subprocesses",
                "--output",
                str(raw),
                "--",
                *argv,
            ]
        elif profiler == "pyinstrument":
            pyi = str(BIN / "pyinstrument") if (BIN / "pyinstrument").exists() else "pyinstrument"
            session = OUT / f"{stem}.pyisession"
            cmd = [pyi, "-r", "pyisession", "-o", str(session), *script_argv]
        else:
            raise SystemExit(f"unknown profiler {profiler}")
        log(f"profiling {contender.label} with {profiler} on {args.records:,} records")
        timeout = timeout_for(args.records, args.min_rate, factor=3.0)
        child = run_child(cmd, input_path, stem, timeout, child_env())
        rc, wall, timed_out = child.rc, child.wall, child.timed_out
        counts = endpoint.counts()
        if timed_out or rc != 0:
            log(f"profile run failed (rc={rc}, timeout={timed_out}):\n{_tail(LOGS / (stem + '.stderr'))}")
            return 1
        header = [
            f"## Profile: {contender.label}, {args.records:,} records ({profiler})",
            "",
            f"- date: {machine_info()['date']}; wall under profiler {wall:.2f}s "
            f"({args.records / wall:,.0f} records/s, profiler overhead included)",
            f"- endpoint received: kinesis {counts.get('kinesis_records', 0):,}, "
            f"firehose {counts.get('firehose_records', 0):,}",
        ]
        if profiler == "py-spy":
            header.append(f"- collapsed stacks: `{raw.relative_to(ROOT)}` (open in speedscope.app, or flamegraph.pl)")
            body = _spy_summary(raw)
        else:
            text = OUT / f"{stem}.txt"
            pst = OUT / f"{stem}.pstats"
            html = OUT / f"{stem}.html"
            for renderer, dest, extra in (
                (
                    "text",
                    text,
                    ["--no-color", "--show", "*/target_kinesis/*", "-p", "processor_options.filter_threshold=0.01"],
                ),
                ("pstats", pst, []),
                ("html", html, []),
            ):
                subprocess.run(
                    [pyi, "--load", str(session), "-r", renderer, "-o", str(dest), *extra],
                    check=True,
                    timeout=300,
                    stdin=subprocess.DEVNULL,
                )
            header.append(f"- call tree: `{text.relative_to(ROOT)}`, `{html.relative_to(ROOT)}`")
            tree = "\n".join(text.read_text().splitlines()[:60])
            body = (
                _pstats_summary(pst)
                + "\n\nCall tree (library frames hidden, target_kinesis frames shown):\n\n```\n"
                + tree
                + "\n```"
            )
        report = "\n".join(header) + "\n\n" + body + "\n"
        (OUT / "PROFILE.md").write_text(report)
        print(report)
        if args.write_results:
            (BENCH / "PROFILE.md").write_text("# target-kinesis profile\n\n" + report)
            log("wrote bench/PROFILE.md")
        else:
            log(f"wrote {OUT.relative_to(ROOT) / 'PROFILE.md'} (--write-results: bench/PROFILE.md)")
        return 0
    finally:
        endpoint.stop()
