"""What every part of the harness shares: where things are, the log line, and the children it starts.

Every child process (an endpoint, a contender) is registered here and its process group is
killed when the harness exits, on SIGTERM and SIGHUP too: a benchmark stopped halfway must not
leave a target or an endpoint running on a shared machine. Importing this module installs
those handlers, so every entry point that measures anything gets them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
PY = sys.executable
BIN = Path(sys.executable).parent


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
