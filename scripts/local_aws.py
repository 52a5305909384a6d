"""What the two demos (scripts/demo.py, scripts/meltano_demo.py) share: a scratch folder and
a local AWS endpoint (moto's server) on 127.0.0.1, both gone when the demo ends, whichever
way it ends: success, failure, Ctrl-C (SIGINT), SIGTERM or a closed terminal (SIGHUP).

SIGTERM and SIGHUP are turned into SystemExit so the `finally` blocks run (Python's default
for them ends the process without any); once clean-up has begun, further signals are ignored
so a second Ctrl-C cannot leave the endpoint running or the folder half-removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from target_kinesis.tools.local_endpoint import HOST, EndpointError, free_port, ignore_signals, moto_server

#: A step of the demo failed; the message says which and why (printed without a traceback). The
#: endpoint's own failures are of this class too: the demos and `target-kinesis-local` start moto
#: the same way, from `target_kinesis/tools/local_endpoint.py`.
DemoError = EndpointError

__all__ = ["DemoError", "banner", "free_port", "moto_server", "prepare_process", "run_main", "scratch_dir"]


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def prepare_process() -> None:
    """Call first: run the clean-up on SIGTERM/SIGHUP too, and never send loopback calls to a proxy."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h.strip()]
        os.environ[name] = ",".join([*hosts, *(h for h in (HOST, "localhost") if h not in hosts)])


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary folder (under $TMPDIR), removed when the block ends, however it ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        ignore_signals()
        shutil.rmtree(path, ignore_errors=True)


def banner(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run_main(
    name: str,
    prefix: str,
    run: Callable[[Path], int],
    *,
    cleaned: str,
    port_hint: str | None = None,
) -> int:
    """Both demos' frame: `run` in a fresh scratch folder (`prefix`), then, whichever way it ends,
    one line saying so as `name` (no traceback) and what was cleaned up; 130 after Ctrl-C, 1 after
    a failed step. `port_hint`: what to do when the endpoint's port is taken."""
    prepare_process()
    try:
        with scratch_dir(prefix) as workdir:
            code = run(workdir)
    except KeyboardInterrupt:
        print(f"\n{name}: interrupted; {cleaned}", file=sys.stderr)
        return 130
    except DemoError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        if port_hint and "in use" in str(exc):
            print(f"{name}: {port_hint}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"{name}: {Path(exc.cmd[0]).name} exited {exc.returncode}", file=sys.stderr)
        return 1
    if code == 0:
        banner(f"done: {cleaned}; nothing left running")
    return code
