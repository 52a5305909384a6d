"""What the two demos (scripts/demo.py, scripts/meltano_demo.py) share: a scratch folder and
a local AWS endpoint (moto's server) on 127.0.0.1, both gone when the demo ends, whichever
way it ends: success, failure, Ctrl-C (SIGINT), SIGTERM or a closed terminal (SIGHUP).

SIGTERM and SIGHUP are turned into SystemExit so the `finally` blocks run (Python's default
for them ends the process without any); once clean-up has begun, further signals are ignored
so a second Ctrl-C cannot leave the endpoint running or the folder half-removed.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DemoError(Exception):
    """A step of the demo failed; the message says which and why (printed without a traceback)."""


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def prepare_process() -> None:
    """Call first: run the clean-up on SIGTERM/SIGHUP too, and never send loopback calls to a proxy."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h.strip()]
        os.environ[name] = ",".join([*hosts, *(h for h in (HOST, "localhost") if h not in hosts)])


def _ignore_signals() -> None:
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary folder (under $TMPDIR), removed when the block ends, however it ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        _ignore_signals()
        shutil.rmtree(path, ignore_errors=True)


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", "/moto-api/")
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def moto_server(port: int, log_path: Path) -> Iterator[str]:
    """moto's server (Kinesis, Firehose, S3) on 127.0.0.1:`port`; yields its URL, stops it after."""
    with socket.socket() as probe:
        if probe.connect_ex((HOST, port)) == 0:
            raise DemoError(f"port {port} on {HOST} is in use")
    env = {k: v for k, v in os.environ.items() if k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: Ctrl-C reaches us, we stop it
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise DemoError(f"the local endpoint did not start on {HOST}:{port}:\n{_log_tail(log_path)}")
            time.sleep(0.2)
        yield f"http://{HOST}:{port}"
    finally:
        _ignore_signals()
        _stop(server)


def _stop(server: subprocess.Popen[bytes]) -> None:
    for signum, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signum)
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


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
