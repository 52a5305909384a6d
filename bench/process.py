"""Measuring one child process: its environment, its timeout, its CPU and its peak memory.

Apart from the contenders' bookkeeping because the capacity scenarios and the profiler run
children the same way (same environment, same kill on timeout, same memory sampling).
``TIMEOUT_BASE`` is set once from ``--timeout-base`` by the command line (bench.cli); read it as
``process.TIMEOUT_BASE`` where it is needed, so the value set is the value seen.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.base import LOGS, OUT, _killpg, _register, _unregister


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
