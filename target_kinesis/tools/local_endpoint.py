"""moto's server on 127.0.0.1: a local Kinesis, Firehose and S3 endpoint, gone when the block ends.

Shared by `target-kinesis-local` and the demos (scripts/local_aws.py imports it). moto runs as
its own process (``python -m moto.server``), in its own process group so that a Ctrl-C in the
terminal reaches only us and we stop it, however the block ends. moto is not a dependency of
the target: it comes with the ``local`` extra (``pip install 'target-kinesis[local]'``) or the
``dev`` one; `moto_installed` says whether it is there.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
#: What stops the endpoint; ignored once its clean-up has begun.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class EndpointError(Exception):
    """The local endpoint could not start; the message says why (printed without a traceback)."""


def moto_installed() -> bool:
    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None


def ignore_signals() -> None:
    """From here on, a second Ctrl-C cannot leave the endpoint running or a folder half-removed."""
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


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
    """moto's server (Kinesis, Firehose, S3, STS) on 127.0.0.1:`port`; yields its URL, stops it after."""
    if port_open(port):
        raise EndpointError(f"port {port} on {HOST} is in use")
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
                raise EndpointError(f"the local endpoint did not start on {HOST}:{port}:\n{_log_tail(log_path)}")
            time.sleep(0.2)
        yield f"http://{HOST}:{port}"
    finally:
        ignore_signals()
        stop(server)


def stop(server: subprocess.Popen[bytes]) -> None:
    """The server's whole process group: SIGTERM, then SIGKILL if it lingers."""
    for signum, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signum)
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


__all__ = [
    "HOST",
    "SIGNALS",
    "START_TIMEOUT_S",
    "EndpointError",
    "free_port",
    "ignore_signals",
    "moto_installed",
    "moto_server",
    "port_open",
    "stop",
]
