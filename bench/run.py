"""Benchmark harness for target-kinesis.

Runs, sequentially and on the same generated Singer input against the same local null
endpoint (a separate process, so its CPU is not charged to anyone):

* ``tk-kinesis``        target-kinesis -> Kinesis PutRecords
* ``tk-firehose``       target-kinesis -> Firehose PutRecordBatch
* ``baseline``          bench/baseline_producer.py (the hand-written producer) -> Kinesis
* ``null-target``       bench/null_target.py (Singer SDK target that drops records)
* ``baseline-firehose`` (optional, via --contenders) the baseline producer -> Firehose

and reports wall time, records/s, CPU seconds and peak memory of each child (RSS from
``wait4``, or the PSS of its whole process tree when larger), the records the endpoint received, the throughput ratios, the linearity of
records/s across ``--sizes`` and the memory ceiling.

Usage::

    .venv/bin/python bench/run.py [--records 100000] [--sizes 10000,100000,1000000]
                                  [--repeat 1] [--write-results]
    .venv/bin/python bench/run.py --profile [--records 100000] [--write-results]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import pstats
import re
import resource
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
PY = sys.executable
BIN = Path(sys.executable).parent

sys.path.insert(0, str(BENCH))
import generate  # noqa: E402  (bench/ is not a package)

GOAL_RATIO = 2.0  # target-kinesis (Kinesis) records/s vs the hand-written producer
GOAL_RSS_MIB = 150.0
GOAL_LINEARITY_PCT = 15.0

# --------------------------------------------------------------------------------------
# child-process bookkeeping: everything we start is killed on exit
# --------------------------------------------------------------------------------------

_LIVE: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


def _register(proc: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc


def _unregister(proc: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(proc.pid, None)


def _killpg(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by ``pid`` (every child runs in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _cleanup() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
        _LIVE.clear()
    for proc in procs:
        if proc.returncode is None:
            _killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    for proc in procs:
        if proc.returncode is not None:
            continue
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                proc.wait(timeout=2.0)
        except ChildProcessError:
            pass


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_sigterm)
signal.signal(signal.SIGHUP, _on_sigterm)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------


def _generator_digest() -> str:
    return hashlib.sha256((BENCH / "generate.py").read_bytes()).hexdigest()[:16]


def ensure_input(records: int, seed: int) -> Path:
    """Generate (or reuse the cached) input of ``records`` records."""
    path = OUT / f"orders-{records}-s{seed}.singer"
    meta_path = path.with_suffix(".meta.json")
    digest = _generator_digest()
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
        if meta.get("generator") == digest and meta.get("bytes") == path.stat().st_size:
            return path
    log(f"generating {records:,} records -> {path.relative_to(ROOT)}")
    t0 = time.perf_counter()
    stats = generate.write(records, str(path), seed)
    stats["generator"] = digest
    stats["seed"] = seed
    meta_path.write_text(json.dumps(stats))
    log(
        f"generated {stats['bytes'] / 2**20:.1f} MiB, "
        f"{stats['avg_record_line_bytes']:.0f} bytes/RECORD line in "
        f"{time.perf_counter() - t0:.1f}s"
    )
    return path


def input_meta(path: Path) -> dict:
    return json.loads(path.with_suffix(".meta.json").read_text())


# --------------------------------------------------------------------------------------
# null endpoint
# --------------------------------------------------------------------------------------

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Endpoint:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.url = ""

    def start(self, timeout: float = 20.0) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        err = open(LOGS / "null_endpoint.stderr", "wb")  # noqa: SIM115 (lives with proc)
        self.proc = subprocess.Popen(
            [PY, str(BENCH / "null_endpoint.py"), "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        err.close()
        _register(self.proc)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            raise RuntimeError(
                f"null endpoint did not print its port within {timeout}s (see {LOGS / 'null_endpoint.stderr'})"
            )
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if _NO_PROXY.open(self.url + "/__health", timeout=2).read() == b"ok":
                    log(f"null endpoint pid {self.proc.pid} on {self.url}")
                    return
            time.sleep(0.1)
        raise RuntimeError("null endpoint not healthy")

    def _call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with _NO_PROXY.open(req, timeout=10) as resp:
            return json.loads(resp.read())

    def counts(self) -> dict:
        return self._call("/__counts")

    def reset(self) -> dict:
        return self._call("/__reset", "POST")

    def cpu_seconds(self) -> float:
        """user+sys CPU of the endpoint process (all threads), from /proc."""
        if self.proc is None:
            return 0.0
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)
                proc.wait(timeout=5)
        _unregister(proc)
        if proc.stdout:
            proc.stdout.close()


# --------------------------------------------------------------------------------------
# contenders
# --------------------------------------------------------------------------------------


@dataclass
class Contender:
    key: str
    label: str
    argv: list[str] | None  # None: missing
    counted_api: str | None  # "kinesis" / "firehose": the endpoint must receive every record
    missing: str = ""


def _config(endpoint: Endpoint, service: str) -> Path:
    cfg = {
        "stream_name": "bench",
        "service": service,
        "endpoint_url": endpoint.url,
        "region": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "y",
        "preflight_check": True,
    }
    path = OUT / f"config-{service}.json"
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def target_command(override: str | None) -> tuple[list[str] | None, str]:
    if override:
        argv = shlex.split(override)
        exe = shutil.which(argv[0]) or (argv[0] if Path(argv[0]).exists() else None)
        if exe is None:
            return None, f"--target-cmd {argv[0]!r} not found"
        return argv, ""
    for candidate in (BIN / "target-kinesis", ROOT / ".venv" / "bin" / "target-kinesis"):
        if candidate.exists():
            return [str(candidate)], ""
    return None, (
        f"target-kinesis CLI not found at {BIN / 'target-kinesis'} (install the package: .venv/bin/pip install -e .)"
    )


def build_contenders(endpoint: Endpoint, target_cmd: str | None) -> dict[str, Contender]:
    cfg_k = str(_config(endpoint, "kinesis"))
    cfg_f = str(_config(endpoint, "firehose"))
    tk, missing = target_command(target_cmd)
    baseline = [PY, str(BENCH / "baseline_producer.py")]
    return {
        "tk-kinesis": Contender(
            "tk-kinesis",
            "target-kinesis -> Kinesis",
            [*tk, "--config", cfg_k] if tk else None,
            "kinesis",
            missing,
        ),
        "tk-firehose": Contender(
            "tk-firehose",
            "target-kinesis -> Firehose",
            [*tk, "--config", cfg_f] if tk else None,
            "firehose",
            missing,
        ),
        "baseline": Contender("baseline", "baseline producer -> Kinesis", [*baseline, "--config", cfg_k], "kinesis"),
        "baseline-firehose": Contender(
            "baseline-firehose",
            "baseline producer -> Firehose",
            [*baseline, "--config", cfg_f],
            "firehose",
        ),
        "null-target": Contender(
            "null-target",
            "null SDK target (validation on)",
            [PY, str(BENCH / "null_target.py"), "--config", cfg_k],
            None,
        ),
    }


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    no_proxy = "127.0.0.1,localhost"
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = f"{env[key]},{no_proxy}" if env.get(key) else no_proxy
    # keep the host's AWS setup out of the measurement
    for key in list(env):
        if key.startswith("AWS_"):
            del env[key]
    missing = str(OUT / "no-such-aws-file")
    env.update(
        AWS_CONFIG_FILE=missing,
        AWS_SHARED_CREDENTIALS_FILE=missing,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
    )
    return env


# --------------------------------------------------------------------------------------
# one measured run
# --------------------------------------------------------------------------------------


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
    endpoint_cpu: float = 0.0
    other_cpu: float = 0.0  # CPU used meanwhile by processes other than child and endpoint
    state_lines: int = 0
    rc: int | None = None
    detail: str = ""
    walls: list[float] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys

    @property
    def rps(self) -> float:
        return self.records / self.wall if self.wall > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def system_busy_seconds() -> float:
    """CPU seconds (all cores, all processes) spent busy since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # guest time is already counted in user
    return busy / os.sysconf("SC_CLK_TCK")


TIMEOUT_BASE = 60.0  # seconds; --timeout-base


def timeout_for(records: int, min_rate: float, factor: float = 1.0) -> float:
    return factor * (TIMEOUT_BASE + records / min_rate)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        data = path.read_bytes()[-8192:].decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in data[-lines:])


def _count_state_lines(path: Path) -> int:
    n = 0
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        for line in fh:
            if b'"bookmarks"' in line:
                n += 1
    return n


@dataclass
class ChildResult:
    rc: int
    wall: float
    rusage: os.struct_rusage
    timed_out: bool
    rss_mib: float  # peak memory: RSS of the child, or PSS of its process tree if larger


def _proc_kib(path: str, field: bytes) -> int:
    """A `Name:  N kB` line of a /proc file (0 when the process or the line is gone)."""
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _vm_hwm_kib(pid: int) -> int:
    return _proc_kib(f"/proc/{pid}/status", b"VmHWM:")


def _tree_pss_kib(pid: int) -> int:
    """PSS of `pid` and all its descendants: the memory a process tree really uses.

    target-kinesis forks mapping processes; each one's RSS counts the pages it shares
    with the others again, PSS divides shared pages among their sharers.
    """
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        total += _proc_kib(f"/proc/{current}/smaps_rollup", b"Pss:")
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", "rb") as fh:
                    pending.extend(int(child) for child in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_child(
    argv: list[str],
    input_path: Path,
    log_stem: str,
    timeout: float,
    env: dict[str, str],
) -> ChildResult:
    """Run argv with stdin from input_path, in its own session, killed after ``timeout`` s.

    Peak RSS: ``ru_maxrss`` from ``wait4`` is exact for the child, except that Linux carries
    the parent's high-water mark over a fork+exec. So when the child's ``ru_maxrss`` does not
    exceed this harness's own peak, the child's real peak is lower: it is then taken from
    ``VmHWM`` in /proc, sampled every 50 ms while the child runs (monotonic, so at most the
    growth of the last 50 ms can be missed).
    """
    LOGS.mkdir(parents=True, exist_ok=True)
    timed_out = threading.Event()
    done = threading.Event()
    hwm = [0]
    tree = [0]
    own_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with (
        open(input_path, "rb") as stdin,
        open(LOGS / f"{log_stem}.stdout", "wb") as stdout,
        open(LOGS / f"{log_stem}.stderr", "wb") as stderr,
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=OUT,
            start_new_session=True,
        )
        _register(proc)

        def _expire() -> None:
            timed_out.set()
            _killpg(proc.pid, signal.SIGKILL)

        def _sample() -> None:
            ticks = 0
            while not done.wait(0.05):
                hwm[0] = max(hwm[0], _vm_hwm_kib(proc.pid))
                if ticks % 5 == 0:  # reading PSS costs the kernel a page-table walk: 4x a second
                    tree[0] = max(tree[0], _tree_pss_kib(proc.pid))
                ticks += 1

        timer = threading.Timer(timeout, _expire)
        timer.daemon = True
        timer.start()
        sampler = threading.Thread(target=_sample, daemon=True)
        sampler.start()
        try:
            # wait for exit without reaping: the pid (and its group) stays ours, so the
            # group can be cleaned of stragglers safely before the zombie is reaped.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            wall = time.perf_counter() - t0
        finally:
            done.set()
            timer.cancel()
            _killpg(proc.pid, signal.SIGKILL)  # stragglers the child may have left
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            _unregister(proc)
            sampler.join(timeout=1.0)
    peak_kib = rusage.ru_maxrss if rusage.ru_maxrss > own_peak_kib else hwm[0]
    peak_kib = max(peak_kib, tree[0])  # a process tree: the larger of the two
    return ChildResult(proc.returncode, wall, rusage, timed_out.is_set(), peak_kib / 1024.0)


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
    run.other_cpu = max(0.0, sys_cpu - run.cpu - run.endpoint_cpu)
    if run.other_cpu > 0.25 * max(wall, 1.0):
        log(
            f"warning: other processes used {run.other_cpu:.1f} CPU-s during this {wall:.1f}s run "
            "(busy machine: numbers are noisy; rerun on an idle machine or use --repeat)"
        )
    run.state_lines = _count_state_lines(LOGS / f"{stem}.stdout")
    if contender.counted_api:
        run.received = counts.get(f"{contender.counted_api}_records", 0)
        run.calls = counts.get(f"{contender.counted_api}_calls", 0)
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
    merged.endpoint_cpu = statistics.median(r.endpoint_cpu for r in good)
    merged.other_cpu = max(r.other_cpu for r in runs)
    merged.received = base.received
    merged.calls = base.calls
    merged.state_lines = base.state_lines
    merged.rc = base.rc
    return merged


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _fmt_int(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


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


def results_table(runs: list[Run], startup: dict[str, float]) -> str:
    rows = [
        "| contender | records | wall s | records/s | net records/s | CPU s | CPU µs/rec "
        "| peak RSS MiB | endpoint received | endpoint CPU s | other CPU s | status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        if r.status == "SKIPPED":
            rows.append(f"| {r.label} | {r.records:,} | - | - | - | - | - | - | - | - | - | SKIPPED: {r.detail} |")
            continue
        net = _net_rps(r, startup)
        status = r.status if not r.detail else f"{r.status}: {r.detail}"
        rows.append(
            f"| {r.label} | {r.records:,} | {r.wall:.2f} | {r.rps:,.0f} | "
            f"{'-' if net is None else f'{net:,.0f}'} | {r.cpu:.2f} | "
            f"{(r.cpu / r.records * 1e6) if r.records else 0:.1f} | {r.rss_mib:.1f} | "
            f"{_fmt_int(r.received)} | {r.endpoint_cpu:.2f} | {r.other_cpu:.2f} | {status} |"
        )
    return "\n".join(rows)


def startup_table(startup: dict[str, float], labels: dict[str, str]) -> str:
    rows = ["| contender | startup s (0 records) |", "|---|---:|"]
    rows += [f"| {labels[k]} | {v:.2f} |" for k, v in startup.items()]
    return "\n".join(rows)


def _net_ratio(a: Run, b: Run, startup: dict[str, float]) -> str:
    """`a`'s records/s over `b`'s, each net of its start-up ("-" without start-up runs)."""
    a_net, b_net = _net_rps(a, startup), _net_rps(b, startup)
    return f"{a_net / b_net:.2f}x" if a_net and b_net else "-"


def _throughput_verdict(tk: Run, baseline: Run, startup: dict[str, float]) -> tuple[str, tuple[bool, str]]:
    """The throughput goal, judged end to end at one size; one wording wherever it is judged."""
    raw = tk.rps / baseline.rps
    return f"throughput at {tk.records:,} records (end to end)", (
        raw >= GOAL_RATIO,
        f"{raw:.2f}x the baseline producer, {_net_ratio(tk, baseline, startup)} net of start-up "
        f"(goal >= {GOAL_RATIO:.0f}x)",
    )


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
    return "\n".join(lines), verdicts


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
        if any(r.status == "SKIPPED" for r in runs):
            out.append(f"{label}: SKIPPED ({runs[0].detail})")
            continue
        rows = [
            f"**{label}**",
            "",
            "| records | wall s | records/s | net records/s | CPU µs/rec | marginal CPU µs/rec | peak RSS MiB | status |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        marginal = _marginal_cpu_us(runs, startup_cpu)
        for r, net_cpu in zip(runs, marginal, strict=True):
            net = _net_rps(r, startup)
            rows.append(
                f"| {r.records:,} | {r.wall:.2f} | {r.rps:,.0f} | "
                f"{'-' if net is None else f'{net:,.0f}'} | "
                f"{r.cpu / r.records * 1e6:.1f} | {'-' if net_cpu is None else f'{net_cpu:.1f}'} | "
                f"{r.rss_mib:.1f} | "
                f"{r.status if not r.detail else r.status + ': ' + r.detail} |"
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
                verdicts[f"cost per record {label} (marginal CPU between sizes)"] = (
                    dev_cpu <= GOAL_LINEARITY_PCT,
                    f"{dev_cpu:.1f}% spread of the CPU each further record costs, "
                    f"{' / '.join(f'{m:.1f}' for m in between)} µs (goal <= {GOAL_LINEARITY_PCT:.0f}%)",
                )
            if all(nets):
                dev_net = (max(nets) / min(nets) - 1) * 100
                rows.append(f"- net of startup ({startup[key]:.2f}s, measured on a 0-record input): **{dev_net:.1f}%**")
                verdicts[f"records/s across sizes {label}"] = (
                    dev_net <= GOAL_LINEARITY_PCT,
                    f"{dev_net:.1f}% net of startup, {dev_raw:.1f}% end to end (goal <= {GOAL_LINEARITY_PCT:.0f}%)",
                )
            else:
                verdicts[f"records/s across sizes {label}"] = (
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
    for key in ("tk-kinesis", "tk-firehose"):
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


# --------------------------------------------------------------------------------------
# profiling
# --------------------------------------------------------------------------------------


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
            if any(name.startswith("_worker_main") for name in names):
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
    endpoint = Endpoint()
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


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _parse_sizes(text: str) -> list[int]:
    if not text.strip():
        return []
    return sorted({int(float(s)) for s in text.replace("_", "").split(",") if s.strip()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="target-kinesis benchmark", formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=100_000, help="records for the side-by-side comparison (default 100000)"
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
        help="comma list of: tk-kinesis, tk-firehose, baseline, baseline-firehose, null-target",
    )
    parser.add_argument(
        "--linearity-contenders", default="tk-kinesis", help="contenders run at every --sizes (default tk-kinesis)"
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the 0-record startup runs (no 'net' figures)")
    parser.add_argument("--target-cmd", help="command for target-kinesis (default: target-kinesis next to this python)")
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
    args = parser.parse_args(argv)

    known = {"tk-kinesis", "tk-firehose", "baseline", "baseline-firehose", "null-target"}
    contender_keys = [c.strip() for c in args.contenders.split(",") if c.strip()]
    lin_keys = [c.strip() for c in args.linearity_contenders.split(",") if c.strip()]
    for key in [*contender_keys, *lin_keys, args.profile_contender]:
        if key not in known:
            parser.error(f"unknown contender {key!r}; known: {', '.join(sorted(known))}")
    if args.records < 1 or args.repeat < 1:
        parser.error("--records and --repeat must be >= 1")
    try:
        sizes = _parse_sizes(args.sizes)
    except ValueError:
        parser.error(f"bad --sizes {args.sizes!r}")
    OUT.mkdir(parents=True, exist_ok=True)
    global TIMEOUT_BASE
    TIMEOUT_BASE = args.timeout_base

    if args.profile:
        return profile(args)

    started = time.time()
    endpoint = Endpoint()
    endpoint.start()
    env = child_env()
    all_runs: list[Run] = []
    try:
        contenders = build_contenders(endpoint, args.target_cmd)
        for key in dict.fromkeys(contender_keys + (lin_keys if sizes else [])):
            if contenders[key].argv is None:
                log(f"SKIPPING {contenders[key].label}: {contenders[key].missing}")
        labels = {k: c.label for k, c in contenders.items()}

        # startup cost: the same contenders on a 0-record input (SCHEMA + STATE only)
        startup: dict[str, float] = {}
        startup_cpu: dict[str, float] = {}
        if not args.no_startup:
            empty = ensure_input(0, args.seed)
            for key in dict.fromkeys(contender_keys + (lin_keys if sizes else [])):
                c = contenders[key]
                if c.argv is None:
                    continue
                walls = []
                cpus = []
                for rep in range(args.repeat):
                    r = measure(c, empty, 0, endpoint, timeout_for(0, args.min_rate), env, tag=f"-r{rep}")
                    if r.status in ("ok", "MISMATCH"):  # 0 == 0 received: always ok
                        walls.append(r.wall)
                        cpus.append(r.cpu)
                if walls:
                    startup[key] = statistics.median(walls)
                    startup_cpu[key] = statistics.median(cpus)
                    log(f"startup {c.label}: {startup[key]:.2f}s, cpu {startup_cpu[key]:.2f}s")

        # side by side at --records
        input_path = ensure_input(args.records, args.seed)
        meta = input_meta(input_path)
        per_key: dict[str, list[Run]] = {k: [] for k in contender_keys}
        for rep in range(args.repeat):
            for key in contender_keys:
                c = contenders[key]
                if c.argv is None and per_key[key]:
                    continue  # already recorded as SKIPPED
                if c.argv is not None:
                    log(f"run {rep + 1}/{args.repeat}: {c.label}, {args.records:,} records")
                r = measure(
                    c, input_path, args.records, endpoint, timeout_for(args.records, args.min_rate), env, tag=f"-r{rep}"
                )
                if r.status != "SKIPPED":
                    log(
                        f"  {r.wall:.2f}s  {r.rps:,.0f} rec/s  cpu {r.cpu:.2f}s  "
                        f"rss {r.rss_mib:.1f} MiB  received {_fmt_int(r.received)}  "
                        f"endpoint cpu {r.endpoint_cpu:.2f}s  {r.status}"
                    )
                per_key[key].append(r)
        main_runs = {k: merge(v) for k, v in per_key.items()}
        all_runs.extend(main_runs.values())

        # linearity / memory across sizes; contenders alternate run by run, so that the
        # machine's drift (it is shared) weighs on all of them alike.
        by_size: dict[str, list[Run]] = {}
        runnable = []
        for key in lin_keys if sizes else []:
            c = contenders[key]
            by_size[key] = []
            if c.argv is None:
                by_size[key].append(Run(key, c.label, 0, "SKIPPED", detail=c.missing))
            else:
                runnable.append(key)
        for size in sizes:
            reps: dict[str, list[Run]] = {key: [] for key in runnable}
            todo = [key for key in runnable if not (size == args.records and key in main_runs)]
            path = ensure_input(size, args.seed) if todo else None
            for rep in range(args.repeat):
                for key in todo:
                    c = contenders[key]
                    log(f"linearity {rep + 1}/{args.repeat}: {c.label}, {size:,} records")
                    assert path is not None
                    r = measure(c, path, size, endpoint, timeout_for(size, args.min_rate), env, tag=f"-r{rep}")
                    log(f"  {r.wall:.2f}s  {r.rps:,.0f} rec/s  rss {r.rss_mib:.1f} MiB  {r.status}")
                    reps[key].append(r)
            for key in runnable:
                if key in todo:
                    merged = merge(reps[key])
                    by_size[key].append(merged)
                    all_runs.append(merged)
                else:
                    by_size[key].append(main_runs[key])
    finally:
        endpoint.stop()

    info = machine_info()
    ratios, verdicts = ratios_section(main_runs, startup)
    linearity, lin_verdicts = linearity_section(by_size, startup, startup_cpu)
    verdicts.update(memory_verdicts(all_runs))
    verdicts.update(lin_verdicts)
    mismatches = [r for r in all_runs if r.status == "MISMATCH"]

    cmdline = "python bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    report = "\n".join(
        [
            f"## Results ({args.records:,} records, repeat {args.repeat})",
            "",
            f"Input: {meta['bytes'] / 2**20:.1f} MiB, "
            f"{meta['avg_record_line_bytes']:.0f} bytes per RECORD line, "
            f"stream `orders`, seed {args.seed}. Endpoint: bench/null_endpoint.py "
            "(separate process). Each contender runs alone, one after the other.",
            "",
            results_table(list(main_runs.values()), startup),
            "",
            "*records/s* = records / wall time of the child process, start to exit. "
            "*net records/s* = records / (wall - startup), startup measured on a 0-record "
            "input. CPU comes from `wait4` on the child (its mapping processes included: it waits "
            "for them). *peak RSS MiB* is the child's peak RSS, or, when larger, the peak of the "
            "PSS summed over its whole process tree (target-kinesis forks mapping processes; PSS "
            "counts the pages they share once), sampled 4 times a second. *other CPU s*: CPU used during "
            "the run by processes other than the child and the endpoint (noise; should be ~0).",
            "",
            "### Startup",
            "",
            startup_table(startup, labels) if startup else "(skipped)",
            "",
            "### Ratios",
            "",
            ratios,
            "",
            "### Linearity and memory across sizes",
            "",
            linearity,
            "",
            "### Goals",
            "",
            goals_section(verdicts),
        ]
    )
    print(report)
    if mismatches:
        print("\n" + "!" * 72)
        for r in mismatches:
            print(f"MISMATCH: {r.label} at {r.records:,} records: {r.detail}")
        print("!" * 72)

    raw = {
        "machine": info,
        "args": vars(args),
        "startup": startup,
        "runs": [{**{k: v for k, v in r.__dict__.items()}, "rps": r.rps, "cpu": r.cpu} for r in all_runs],
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
    failed = [r for r in all_runs if r.status in ("FAILED", "TIMEOUT", "MISMATCH")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
