"""The endpoints the contenders write to, each in its own process so that its CPU is not charged to them.

The null endpoint (bench/null_endpoint.py) answers every call with no limit, so that the
throughput figures measure the producer; the capacity endpoints (tests/support/capacity_endpoint.py,
bench/capacity_readback.py) refuse beyond AWS's limits. Both are child scripts run by path.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.base import BENCH, LOGS, PY, ROOT, _killpg, _register, _unregister, log

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

NULL_SHARDS = 256  # --null-shards: the open shards of every stream of the null endpoint
CAPACITY_ENDPOINT = ROOT / "tests" / "support" / "capacity_endpoint.py"
CAPACITY_READBACK = BENCH / "capacity_readback.py"  # the capacity endpoint plus GET /__records


def null_endpoint_argv(shards: int = NULL_SHARDS) -> list[str]:
    return [PY, str(BENCH / "null_endpoint.py"), "0", "--shards", str(shards)]


class Endpoint:
    """An endpoint in its own process: prints its port on its first stdout line, answers
    ``GET /__health`` with 200. The null endpoint unless told another command."""

    def __init__(self, argv: list[str] | None = None, name: str = "null_endpoint", log_stem: str = "") -> None:
        self.argv = argv or null_endpoint_argv()
        self.name = name
        self.log_path = LOGS / f"{log_stem or name}.stderr"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.url = ""

    def start(self, timeout: float = 20.0, quiet: bool = False) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        err = open(self.log_path, "wb")  # noqa: SIM115 (lives with proc)
        self.proc = subprocess.Popen(
            self.argv,
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
            raise RuntimeError(f"{self.name} did not print its port within {timeout}s (see {self.log_path})")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), _NO_PROXY.open(self.url + "/__health", timeout=2) as resp:
                if resp.status == 200:
                    if not quiet:
                        log(f"{self.name} pid {self.proc.pid} on {self.url}")
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy (see {self.log_path})")

    def _call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with _NO_PROXY.open(req, timeout=10) as resp:
            return json.loads(resp.read())

    def counts(self) -> dict:
        return self._call("/__counts")

    def reset(self) -> dict:
        return self._call("/__reset", "POST")

    def stats(self, stream: str) -> dict:
        """The capacity endpoint's counters of one stream (``GET /__stats?stream=NAME``)."""
        return self._call(f"/__stats?stream={urllib.parse.quote(stream)}")

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
