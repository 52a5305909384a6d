"""The README's demo (scripts/demo.py, which `bash scripts/demo.sh` runs after bootstrapping):
it prints what landed, its summary is the README's sample, and it leaves nothing behind:
no scratch folder in $TMPDIR and no endpoint running, whether it succeeds, fails or is
interrupted (Ctrl-C, SIGTERM).

Each test runs the demo under a TMPDIR of its own (so "nothing left" means an empty folder)
and on a free port. A run takes about 5 s.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.servers import HOST, free_port
from tests.unit.test_readme_summary import readme_summary_lines, without_figures

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "scripts" / "demo.py"
TIMEOUT_S = 120

pytestmark = pytest.mark.e2e


def _env(tmpdir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"TMPDIR": str(tmpdir), "DEMO_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    return env


def _run_demo(tmpdir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """The demo as a user runs it, its scratch folder under `tmpdir`, its endpoint on `port`."""
    return subprocess.run(
        [sys.executable, str(DEMO)],
        env=_env(tmpdir, port),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _tmpdir(tmp_path: Path) -> Path:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return tmpdir


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


def _assert_nothing_left(tmpdir: Path, port: int) -> None:
    assert sorted(p.name for p in tmpdir.iterdir()) == [], "the demo left files in its TMPDIR"
    assert not _listening(port), f"something still listens on {HOST}:{port} after the demo ended"


def _summary_shape(line: str) -> str:
    """A summary or capacity line with the figures of one run masked: its floats (seconds, rates)
    everywhere, every figure of a capacity line. Counts (records, bytes, calls) stay."""
    if line.startswith("capacity "):
        return without_figures(line)
    return re.sub(r"\d+\.\d+", "#", line)


@pytest.mark.slow
def test_demo_prints_what_landed_and_leaves_nothing(tmp_path: Path) -> None:
    tmpdir, port = _tmpdir(tmp_path), free_port()
    done = _run_demo(tmpdir, port)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _assert_nothing_left(tmpdir, port)

    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(events) == 11  # 9 in Kinesis, 2 orders through Firehose
    assert sum(e.get("event") == "Order Completed" for e in events) == 2
    assert "done: the endpoint is stopped and its scratch folder removed" in done.stdout

    # The README's sample summary is this run's, apart from its timings.
    logged = [line.split("log: ", 1)[1] for line in done.stdout.splitlines() if line.startswith("  log: ")]
    assert [_summary_shape(line) for line in readme_summary_lines()] == [_summary_shape(line) for line in logged], (
        "README's sample summary differs from what the demo prints now:\n" + "\n".join(logged)
    )


def test_demo_that_fails_leaves_nothing(tmp_path: Path) -> None:
    """The endpoint cannot start (its port is taken): a one-line error, exit 1, no scratch folder."""
    tmpdir = _tmpdir(tmp_path)
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run_demo(tmpdir, port)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"demo: port {port} on {HOST} is in use" in done.stderr
    assert "Traceback" not in done.stderr
    _assert_nothing_left(tmpdir, port)


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("signum", "whole_group", "exit_code"),
    [
        pytest.param(signal.SIGINT, True, 130, id="ctrl-c"),  # a terminal's Ctrl-C reaches the whole group
        pytest.param(signal.SIGTERM, False, 128 + signal.SIGTERM, id="sigterm"),
    ],
)
def test_demo_interrupted_leaves_nothing(tmp_path: Path, signum: int, whole_group: bool, exit_code: int) -> None:
    tmpdir, port = _tmpdir(tmp_path), free_port()
    demo = subprocess.Popen(
        [sys.executable, str(DEMO)],
        env=_env(tmpdir, port),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a shell job would be
        # Ctrl-C as a terminal's shell leaves it: a test run started in the background inherits
        # SIGINT ignored (what a non-interactive shell does to `cmd &`), and Python then never
        # raises KeyboardInterrupt, in the demo or the target.
        preexec_fn=_sigint_default,
    )
    try:
        seen = []
        deadline = time.monotonic() + TIMEOUT_S
        assert demo.stdout is not None
        for line in demo.stdout:  # until the endpoint is up and the target is running
            seen.append(line)
            if line.startswith("== tap | target-kinesis") or time.monotonic() > deadline:
                break
        assert any(line.startswith("== tap | target-kinesis") for line in seen), "".join(seen)
        assert list(tmpdir.iterdir()), "the demo's scratch folder should exist while it runs"
        if whole_group:
            os.killpg(demo.pid, signum)
        else:
            demo.send_signal(signum)
        out, err = demo.communicate(timeout=TIMEOUT_S)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == exit_code, "".join(seen) + out + err
    _assert_nothing_left(tmpdir, port)
