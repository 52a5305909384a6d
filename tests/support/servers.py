"""Local AWS endpoints for end-to-end tests: moto's server and kinesalite.

Why subprocesses and not moto's in-process decorators: the target under test runs as its
own process (the Singer CLI), so it needs a real HTTP endpoint. Each server here

* listens on 127.0.0.1 only (nothing may listen on other interfaces on this machine),
* runs in its own process group, so stopping it also ends any children it spawned,
* writes its output to a log file in a private temp dir, so a start failure (or a test
  failure) can show the last lines of what the server said.

kinesalite is a Node package; it is installed with ``npm ci`` from the committed
``tests/node/package-lock.json`` into ``tests/node/node_modules`` (git-ignored), the first
time it is needed on a machine, so a fresh CI clone needs nothing but node and npm.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # dummy: moto/kinesalite check no credentials
START_TIMEOUT_S = 30.0

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
KINESALITE_VERSION = "3.3.3"
# --omit=optional skips leveldown (kinesalite's optional LevelDB backend): it is only
# loaded when kinesalite gets a `path`, and we always run it in memory (memdown). Skipping
# it means no native module is ever built or loaded, whatever the machine's toolchain.
NPM_CI_COMMAND = ("npm", "ci", "--no-audit", "--no-fund", "--omit=optional")

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now.

    The OS picks it (bind to port 0); there is a small race until the server binds it, so
    ``LocalServer.launch`` retries with a new port when a server reports the port taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ServerStartError(RuntimeError):
    """A local server did not come up; the message carries the tail of its log."""


class LocalServer:
    """A server subprocess on 127.0.0.1 that the tests own.

    Use :meth:`launch` (or ``start_moto_server`` / ``start_kinesalite``); ``stop()`` kills the
    whole process group and removes the log directory. Usable as a context manager.
    """

    def __init__(
        self,
        name: str,
        process: subprocess.Popen[bytes],
        port: int,
        log_dir: Path,
        log_path: Path,
    ) -> None:
        self.name = name
        self.process = process
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.log_dir = log_dir
        self.log_path = log_path
        self._stopped = False

    @classmethod
    def launch(
        cls,
        name: str,
        argv_for_port: Callable[[int], Sequence[str]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/",
        timeout: float = START_TIMEOUT_S,
        attempts: int = 3,
    ) -> LocalServer:
        """Start ``argv_for_port(port)`` on a free port and wait until it answers HTTP.

        ``argv_for_port`` builds the command line for a port. Any HTTP answer on
        ``ready_path`` counts as ready (kinesalite answers 403 to a bare GET). If the process
        exits saying its address is in use (the free_port race), a new port is tried.
        """
        last_error: ServerStartError | None = None
        for _ in range(attempts):
            port = free_port()
            argv: Sequence[str] = argv_for_port(port)
            log_dir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
            log_path = log_dir / f"{name}.log"
            with open(log_path, "wb") as log_file:
                process = subprocess.Popen(
                    list(argv),
                    cwd=cwd,
                    env=dict(env) if env is not None else None,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: stop() kills it whole
                )
            server = cls(name, process, port, log_dir, log_path)
            try:
                server.wait_ready(ready_path, timeout)
            except ServerStartError as exc:
                # The message already holds the log tail; the log dir can go.
                port_taken = process.poll() is not None and "in use" in str(exc).lower()
                server.stop()
                if not port_taken:
                    raise
                last_error = exc  # EADDRINUSE (node) / "Address already in use" (werkzeug)
                continue
            return server
        assert last_error is not None
        raise last_error

    def wait_ready(self, path: str = "/", timeout: float = START_TIMEOUT_S) -> None:
        """Poll until the server answers any HTTP response, or raise with its log tail."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self.process.returncode} before answering"
                    f" on {self.url}{path}; log tail:\n{self.log_tail()}"
                )
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2.0)
            try:
                conn.request("GET", path)
                conn.getresponse().read()
                return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name} did not answer HTTP on {self.url}{path} within {timeout:.0f} s;"
                    f" log tail:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the server printed (for failure messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        """Whether the server process is still alive."""
        return self.process.poll() is None

    def stop(self, *, keep_log: bool = False) -> None:
        """Terminate the process group (SIGTERM, then SIGKILL after 5 s); idempotent."""
        if not self._stopped:
            self._stopped = True
            for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                if self.process.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=wait_s)
            # Children that outlived the leader (none expected) still get the group kill.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if not keep_log:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalServer({self.name!r}, url={self.url!r}, pid={self.process.pid})"


def _server_env() -> dict[str, str]:
    """Environment for server processes: ours minus proxy settings."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _PROXY_VARS}
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the file before a crash
    return env


def start_moto_server(timeout: float = START_TIMEOUT_S) -> LocalServer:
    """Start ``python -m moto.server`` on 127.0.0.1 and wait until it answers.

    One moto server holds Kinesis, Firehose, S3, STS and IAM at once. It keeps state for
    its whole life, so tests should use fresh stream/bucket names (see
    ``readback.unique_name``) rather than restart it.
    """
    return LocalServer.launch(
        "moto",
        lambda port: [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        env=_server_env(),
        ready_path="/moto-api/",
        timeout=timeout,
    )


def ensure_kinesalite_installed(node_dir: Path = NODE_DIR) -> None:
    """Run ``npm ci`` in ``tests/node`` unless kinesalite is already installed there.

    A file lock keeps parallel test processes (e.g. pytest-xdist) from running npm at once.
    """
    marker = node_dir / "node_modules" / "kinesalite" / "package.json"
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"npm is not installed, so kinesalite cannot be set up: install Node.js and npm,"
            f" then run `{' '.join(NPM_CI_COMMAND)}` in {node_dir}"
        )
    digest = hashlib.sha256(str(node_dir).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"target-kinesis-npm-{digest}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists():
                return
            result = subprocess.run(
                [npm, *NPM_CI_COMMAND[1:]],
                cwd=node_dir,
                env=_server_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0 or not marker.exists():
                output = (result.stdout + result.stderr).strip().splitlines()[-30:]
                raise RuntimeError(
                    f"`{' '.join(NPM_CI_COMMAND)}` in {node_dir} failed"
                    f" (exit {result.returncode}):\n" + "\n".join(output)
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_kinesalite(timeout: float = START_TIMEOUT_S) -> LocalServer:
    """Start kinesalite (in memory, streams ACTIVE at once) on 127.0.0.1.

    Installs it first if needed. It speaks only the Kinesis API (no Firehose, S3 or STS),
    validates requests like AWS and, unlike moto, keeps every record under concurrent writers.
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed, so kinesalite cannot run: install Node.js (and npm)")
    ensure_kinesalite_installed()
    script = NODE_DIR / "kinesalite-server.js"
    return LocalServer.launch(
        "kinesalite",
        lambda port: [node, str(script), str(port)],
        cwd=NODE_DIR,
        env=_server_env(),
        ready_path="/",
        timeout=timeout,
    )


def aws_env(url: str, base: Mapping[str, str] | None = None, *, set_endpoint: bool = True) -> dict[str, str]:
    """The full environment for a subprocess (e.g. the target's CLI) that talks to ``url``.

    Starts from ``base`` (default ``os.environ``) and removes proxy variables (they would
    route loopback traffic away) and any AWS profile, credential or endpoint settings of the
    machine (so a developer's ~/.aws cannot leak in), then sets dummy credentials, region
    us-east-1 and ``AWS_ENDPOINT_URL=url``. Instance-metadata lookups are disabled: with no
    credentials botocore would otherwise try 169.254.169.254, which is off limits here.

    ``AWS_ENDPOINT_URL`` sends every botocore client of the subprocess (STS included) to
    ``url`` unless it passes its own endpoint_url; a test of the target's own endpoint
    setting should pass ``set_endpoint=False``, or the variable would hide a target that
    ignores the setting.
    """
    source = os.environ if base is None else base
    env = {
        k: v
        for k, v in source.items()
        if k.upper() not in _PROXY_VARS and not (k.startswith("AWS_") and k != "AWS_CA_BUNDLE")
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    if set_endpoint:
        env["AWS_ENDPOINT_URL"] = url
    return env


def boto_client(service: str, url: str, config: Config | None = None, **kwargs: Any) -> Any:
    """A botocore client for ``service`` at ``url`` with dummy credentials in us-east-1.

    Built from a fresh ``boto3.session.Session`` (sessions are not thread-safe; clients
    are). ``config`` is merged over short time-outs and standard retries; pass
    ``Config(retries={"total_max_attempts": 1})`` to see a fault exactly as it came.
    """
    base = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "total_max_attempts": 3},
        # An explicit (empty) mapping stops botocore from taking proxies from the environment.
        proxies={},
    )
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    return session.client(
        service,
        endpoint_url=url,
        config=base.merge(config) if config is not None else base,
        **kwargs,
    )
